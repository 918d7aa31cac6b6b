import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Orm, openOrm } from '../db/database.ts';
import { InstanceRecordSchema } from '../db/entities/instance-record.ts';
import { instanceToRecord } from '../db/instance-mapping.ts';
import { InstanceStore } from '../db/instance-store.ts';
import { PLACEMENT_FOOTPRINT_BACKFILL } from '../db/migrations/Migration20261202040000_placement.ts';
import type { Instance, ServiceSpec } from '../domain/instance.ts';
import type { InstanceState } from '../domain/instance-state.ts';
import { placementFootprint, placementMemory } from '../domain/placement-rules.ts';
import { ownDatabase } from './support/own-database.ts';

// Real PostgreSQL (a database of this file's own, migrated): what fleet capacity counts from the read model,
// for rows the projection writes and for rows the migration backfills from their services.
describe("a provider's use, as placement counts it from the read model", () => {
  let database: Awaited<ReturnType<typeof ownDatabase>>;
  let orm: Orm;
  const DEFAULT_MB = 512;

  const svc = (memory_mb: number, replicas: number): ServiceSpec => ({
    name: `s${memory_mb}x${replicas}`,
    image: 'ctrlplane-test/busybox:1',
    resources: { cpu_millis: 0, memory_mb, replicas },
  });
  const instance = (
    n: number,
    provider: string,
    services: ServiceSpec[] | null,
    state: InstanceState = 'running',
  ): Instance => ({
    id: `inst_footprint${n}`,
    created_at: '2026-12-02T00:00:00.000Z',
    updated_at: '2026-12-02T00:00:00.000Z',
    tenant_id: 'ten_footprint',
    name: `i${n}`,
    slug: `i${n}`,
    provider_name: provider,
    provider_ref: '',
    region: '',
    state,
    kind: 'deployment',
    services,
  });
  const fleet: Instance[] = [
    instance(1, 'a', [svc(256, 1), svc(0, 2)]), // 256 + 2 unsized
    instance(2, 'a', [svc(128, 3)]), // 384
    instance(3, 'a', null), // a helm source: one unsized
    instance(4, 'a', [svc(4096, 1)], 'destroyed'), // not counted
    instance(5, 'b', [svc(0, 1)]), // no memory given: one unsized
    instance(6, 'b', [svc(64, 0)], 'failed'), // replicas 0 counts as 1; failed still holds the host
  ];

  before(async () => {
    database = await ownDatabase('footprint');
    orm = await openOrm(database.url, { poolMax: 2 });
    for (const i of fleet) await orm.em.fork().insert(InstanceRecordSchema, instanceToRecord(i, 1));
  });

  after(async () => {
    await orm?.close(true);
    await database?.drop();
  });

  const expected = (provider: string) => {
    const live = fleet.filter((i) => i.provider_name === provider && i.state !== 'destroyed');
    return {
      instances: live.length,
      memory_mb: live.reduce((sum, i) => sum + placementMemory(i.services, DEFAULT_MB), 0),
    };
  };

  it('sums the footprints the projection wrote: given memory times replicas, the default for the rest', async () => {
    const usage = await new InstanceStore(orm).usageOf(['a', 'b', 'c'], DEFAULT_MB);
    assert.deepEqual(usage.get('a'), { instances: 3, memory_mb: 256 + 2 * 512 + 384 + 512 });
    assert.deepEqual(usage.get('a'), expected('a'));
    assert.deepEqual(usage.get('b'), { instances: 2, memory_mb: 512 + 64 });
    assert.deepEqual(usage.get('c'), { instances: 0, memory_mb: 0 });
  });

  it("the migration's backfill gives rows written before it the footprint the projection computes", async () => {
    const connection = orm.em.fork().getConnection();
    await connection.execute('update instances set placement_memory_mb = 0, placement_unsized = 0');
    await connection.execute(PLACEMENT_FOOTPRINT_BACKFILL);
    const rows = await connection.execute<
      { id: string; placement_memory_mb: number; placement_unsized: number }[]
    >('select id, placement_memory_mb, placement_unsized from instances order by id');
    for (const row of rows) {
      const written = fleet.find((i) => i.id === row.id);
      assert.ok(written);
      assert.deepEqual(
        { memory_mb: row.placement_memory_mb, unsized: row.placement_unsized },
        placementFootprint(written.services),
        row.id,
      );
    }
  });
});
