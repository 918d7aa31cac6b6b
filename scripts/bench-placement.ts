/**
 * The placement bench, `npm run bench -- --placement`: what placing a create by capacity costs as the fleet's
 * read model grows. A create naming no provider counts what every provider of the fleet holds
 * (db/fleet-usage.ts: instances and the memory their services ask for, summed over the services' JSON) and then
 * picks one (domain/placement-rules.ts); the chosen provider's count is taken again with its admission locked.
 * Measured against the plainest count the same rows allow, in the same process on the same database:
 *
 *   baseline  `count(*)` of the live instances per provider (what counting instances alone costs)
 *   usage     the fleet's usage, instances and memory (placement's query)
 *   placement the usage and the choice (what a create pays before its insert)
 *
 * Its own PostgreSQL database (dropped at the end); no Temporal, no Docker. Prints tables, asserts no timing.
 *
 *   --rows 1000,10000,50000 --providers 4 --iterations 50
 */
import { parseArgs } from 'node:util';
import { openOrm } from '../db/database.ts';
import { InstanceStore } from '../db/instance-store.ts';
import { choosePlacement } from '../domain/placement-rules.ts';
import { ownDatabase } from '../test/support/own-database.ts';
import { figures, figuresTable, measure, type Ratio, ratioTable } from './bench-stats.ts';

const { values: flags } = parseArgs({
  args: process.argv.slice(2),
  options: {
    placement: { type: 'boolean' },
    rows: { type: 'string', default: '1000,10000,50000' },
    providers: { type: 'string', default: '4' },
    iterations: { type: 'string', default: '50' },
  },
});
const sizes = (flags.rows ?? '').split(',').map(Number);
const providerCount = Number(flags.providers);
const iterations = Number(flags.iterations);
const DEFAULT_MEMORY_MB = 512;
const providers = Array.from({ length: providerCount }, (_, i) => `bench-${i}`);

const database = await ownDatabase('bench_placement');
const orm = await openOrm(database.url, { poolMax: 2 });
const store = new InstanceStore(orm);
const sql = (query: string, params: unknown[] = []) => orm.em.fork().getConnection().execute(query, params);
const rows: ReturnType<typeof figures>[] = [];
const ratios: Ratio[] = [];
try {
  let seeded = 0;
  for (const size of sizes) {
    // Each instance: a main service with memory_mb, a sidecar without (the default, twice: 2 replicas), and
    // the footprint the projection writes for them; one in ten destroyed (a tombstone placement skips).
    await sql(
      `insert into instances (id, tenant_id, name, slug, provider_name, provider_ref, region, state, kind,
                              services, placement_memory_mb, placement_unsized, seq, created_at, updated_at)
       select 'inst_bench_' || g, 'ten_bench_' || (g % 100), 'i' || g, 'i-' || g,
              'bench-' || (g % ?), '', '', case when g % 10 = 0 then 'destroyed' else 'running' end,
              'deployment',
              jsonb_build_array(
                jsonb_build_object('name', 'web', 'image', 'x', 'resources',
                                   jsonb_build_object('memory_mb', 256, 'cpu_millis', 100, 'replicas', 1)),
                jsonb_build_object('name', 'side', 'image', 'x', 'resources',
                                   jsonb_build_object('memory_mb', 0, 'cpu_millis', 0, 'replicas', 2))),
              256, 2, 1, now(), now()
         from generate_series(?::int, ?::int) g`,
      [providerCount, seeded + 1, size],
    );
    seeded = size;
    await sql('analyze instances');
    const placeholders = providers.map(() => '?').join(', ');
    const options = { warmup: 5, iterations };
    const baseline = figures(
      await measure(`${size} rows: baseline count(*)`, options, async () => {
        await sql(
          `select provider_name, count(*) from instances
            where provider_name in (${placeholders}) and state <> 'destroyed' group by provider_name`,
          providers,
        );
      }),
    );
    const usage = figures(
      await measure(`${size} rows: usage`, options, async () => {
        await store.usageOf(providers, DEFAULT_MEMORY_MB);
      }),
    );
    const limits = { instances: size, memory_mb: size * 2048 };
    const placement = figures(
      await measure(`${size} rows: placement`, options, async () => {
        const used = await store.usageOf(providers, DEFAULT_MEMORY_MB);
        const decision = choosePlacement(
          providers.map((name) => ({
            name,
            limits,
            used: used.get(name) ?? { instances: 0, memory_mb: 0 },
            labels: {},
            runsSource: true,
          })),
          { memory_mb: 256 },
        );
        if (!decision.placed) throw new Error(decision.reason);
      }),
    );
    rows.push(baseline, usage, placement);
    ratios.push(
      { label: `${size} rows: usage ÷ count(*)`, measured: usage, baseline },
      { label: `${size} rows: placement ÷ count(*)`, measured: placement, baseline },
    );
  }
  console.log(
    `\nplacement by capacity over ${providerCount} providers (own database, PostgreSQL ${
      ((await sql('show server_version')) as { server_version: string }[])[0]?.server_version
    }; ${iterations} timed runs each)\n`,
  );
  console.log(figuresTable(rows));
  console.log();
  console.log(ratioTable(ratios));
} finally {
  await orm.close(true);
  await database.drop();
}
