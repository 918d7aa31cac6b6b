/**
 * `npm run chaos [-- --seed N] [--short]`: the chaos run at the figures (20 instances, 10 clients,
 * ≥ 300 commands, 20 worker kills, 3 API kills, 2 PostgreSQL restarts, a Temporal dev server kill, a dockerd
 * restart, a 20 s flood), on its own PostgreSQL cluster, dockerd and dev server. Needs root (it creates a
 * PostgreSQL cluster, a bridge and a Docker daemon). Prints the report; exits 1 when an invariant broke.
 */
import { parseArgs } from 'node:util';
import { removeAbandonedStacks } from './own-stack.ts';
import { FULL_RUN, formatReport, runChaos, SHORT_RUN } from './run-chaos.ts';

const { values } = parseArgs({
  options: { seed: { type: 'string' }, short: { type: 'boolean', default: false } },
});
const seed = values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 2 ** 31);
if (!Number.isInteger(seed)) throw new Error('--seed must be an integer');
// Interrupted, the run's stack is removed as a dead run's would be (the API and workers get the signal too).
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`chaos: interrupted by ${signal} (seed ${seed}); removing its stack`);
    removeAbandonedStacks(process.pid).finally(() => process.exit(130));
  });
}
try {
  const report = await runChaos({ ...(values.short ? SHORT_RUN : FULL_RUN), seed });
  console.log(formatReport(report));
  process.exit(report.ok ? 0 : 1);
} catch (err) {
  console.error(
    `chaos: run failed with seed ${seed}: ${err instanceof Error ? (err.stack ?? err.message) : err}`,
  );
  process.exit(1);
}
