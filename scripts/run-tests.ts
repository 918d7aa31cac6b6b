/**
 * `npm test`: one real Temporal dev server (with its Web UI) and one fresh PostgreSQL database for the whole
 * run, the workflow code bundled once, then node's test runner over test/*.test.ts (or the files given). When
 * one of those files uses test/support/kubernetes.ts, a Kubernetes control plane too (startTestKubernetes).
 *
 * `--unit` (`npm run test:unit`): test/*.unit.test.ts only, with nothing started for them. They need no Docker,
 * PostgreSQL or Kubernetes; one that needs Temporal starts a dev server of its own (test/support/workflow-harness.ts).
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { TOOLS_BIN } from './kubernetes-cluster.ts';
import { runNodeTests, type Tally } from './node-test-run.ts';
import { REPO_ROOT } from './temporal-cli.ts';
import type { TestEnvironment } from './test-environment.ts';

const started = Date.now();
/** Per test; a test that never settles is cancelled then (node 22+ keeps its file waiting until this). */
const TEST_TIMEOUT_MS = 600_000;
const unit = process.argv.includes('--unit');
const given = process.argv.slice(2).filter((a) => a !== '--unit');
const files = given.length
  ? given
  : readdirSync(`${REPO_ROOT}test`)
      .filter((f) => f.endsWith(unit ? '.unit.test.ts' : '.test.ts'))
      .sort()
      .map((f) => `test/${f}`);

const kubernetes =
  !unit && files.some((f) => /support\/kubernetes(\.ts)?'/.test(readFileSync(resolve(REPO_ROOT, f), 'utf8')));
const environment: TestEnvironment = unit
  ? { env: {}, async teardown() {} }
  : await (await import('./test-environment.ts')).startTestEnvironment({ kubernetes });
let tearingDown: Promise<void> | undefined;
const teardown = () => {
  tearingDown ??= environment.teardown();
  return tearingDown;
};
// The Kubernetes control plane runs in its own session: an interrupted run still stops it.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void teardown().finally(() => process.exit(130));
  });
}
console.log(
  'test setup: ' +
    (unit
      ? 'unit tests, nothing started, '
      : `temporal ${environment.env.TEMPORAL_ADDRESS} (ui ${environment.env.TEMPORAL_UI_URL}), `) +
    (kubernetes ? `kubernetes ${environment.env.CTRLPLANE_TEST_KUBERNETES}, ` : '') +
    `${files.length} files, ready in ${((Date.now() - started) / 1000).toFixed(1)}s`,
);

let tally: Tally | undefined;
try {
  tally = await runNodeTests({
    files,
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      ...environment.env,
      // helm and kubectl (kustomize) as setup built them.
      PATH: `${TOOLS_BIN}:${process.env.PATH ?? ''}`,
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
      // The tests' images (made with `docker import`, never pulled) run for every test tenant, and every worker
      // of the run signs spec hashes with one key.
      CTRLPLANE_DOCKER_ALLOWED_IMAGES:
        process.env.CTRLPLANE_DOCKER_ALLOWED_IMAGES ?? 'docker.io/ctrlplane-test/*',
      CTRLPLANE_SPEC_HASH_KEY: process.env.CTRLPLANE_SPEC_HASH_KEY ?? randomBytes(32).toString('hex'),
      // A watcher sees every managed container on the engine, other files' too: the files about drift start one.
      CTRLPLANE_PROVIDER_WATCH: 'false',
    },
    workDir: `${REPO_ROOT}.data/test`,
    testTimeoutMs: TEST_TIMEOUT_MS,
    onOutput: (chunk) => process.stdout.write(chunk),
  });
} finally {
  await teardown();
}
console.log(`tests finished in ${((Date.now() - started) / 1000).toFixed(1)}s`);
if (tally.failures.length > 0) {
  console.log(`failed (${tally.failures.length}):`);
  for (const failure of tally.failures) console.log(`  - ${failure}`);
}
// The plain closing line CI reads, after the teardown output. Cancelled tests and crashed files are failures.
console.log(
  `tests: ${tally.passed} passed, ${tally.failed} failed${tally.skipped ? `, ${tally.skipped} skipped` : ''}`,
);
process.exit(tally.failed > 0 ? 1 : tally.exitCode);
