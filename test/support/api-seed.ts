import type { Orm } from '../../db/database.ts';
import { type InstanceRecord, InstanceRecordSchema } from '../../db/entities/instance-record.ts';
import { instanceToRecord } from '../../db/instance-mapping.ts';
import { newInstanceId } from '../../domain/ids.ts';
import { type Instance, slugify } from '../../domain/instance.ts';

/**
 * Read-model rows written straight into PostgreSQL, for tests whose subject is the API's reads (listing,
 * pagination, validation, auth), not a provider: no workflow and no container stands behind these rows.
 */
export function seedRecord(
  fields: Partial<Instance> & { tenant_id: string; name: string },
  seq = 1,
): InstanceRecord {
  const now = new Date().toISOString();
  const services = fields.services ?? [
    {
      name: 'web',
      image: 'ctrlplane-test/busybox:1',
      resources: { cpu_millis: 0, memory_mb: 0, replicas: 1 },
    },
  ];
  const instance: Instance = {
    id: newInstanceId(),
    created_at: now,
    updated_at: now,
    slug: slugify(fields.name),
    provider_name: 'docker',
    provider_ref: '',
    region: '',
    state: 'running',
    kind: 'deployment',
    source: { type: 'services', services },
    ...fields,
    services,
  };
  return instanceToRecord(instance, seq);
}

export async function seedRows(orm: Orm, rows: InstanceRecord[]): Promise<void> {
  for (let i = 0; i < rows.length; i += 500) {
    await orm.em.fork().insertMany(InstanceRecordSchema, rows.slice(i, i + 500));
  }
}

export async function deleteTenantRows(orm: Orm, tenantPrefix: string): Promise<void> {
  const conn = orm.em.fork().getConnection();
  await conn.execute('delete from instances where tenant_id like ?', [`${tenantPrefix}%`]);
  await conn.execute('delete from instance_events where tenant_id like ?', [`${tenantPrefix}%`]);
  await conn.execute('delete from idempotency_keys where tenant_id like ?', [`${tenantPrefix}%`]);
}

export async function countRows(orm: Orm, tenantId: string): Promise<number> {
  const [row] = await orm.em
    .fork()
    .getConnection()
    .execute<{ count: string }[]>('select count(*) from instances where tenant_id = ?', [tenantId]);
  return Number(row?.count ?? 0);
}
