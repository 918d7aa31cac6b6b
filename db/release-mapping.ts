import type { Release } from '../domain/release.ts';
import type { ReleaseRecord } from './entities/release-record.ts';

/** The row of a release, as the projection writes it under the transition `seq` that made or moved it. */
export function releaseToRecord(release: Release, seq: number): ReleaseRecord {
  return {
    id: release.id,
    instance_id: release.instance_id,
    tenant_id: release.tenant_id,
    number: release.number,
    spec: release.spec,
    status: release.status,
    error: release.error ?? null,
    description: release.description,
    request_id: release.request_id,
    actor: release.actor ?? null,
    rollback_of: release.rollback_of ?? null,
    status_seq: seq,
    created_at: new Date(release.created_at),
  };
}

export function recordToRelease(row: ReleaseRecord): Release {
  return {
    id: row.id,
    instance_id: row.instance_id,
    tenant_id: row.tenant_id,
    number: row.number,
    spec: row.spec,
    status: row.status,
    ...(row.error ? { error: row.error } : {}),
    description: row.description,
    request_id: row.request_id,
    ...(row.actor ? { actor: row.actor } : {}),
    ...(row.rollback_of !== null ? { rollback_of: row.rollback_of } : {}),
    created_at: (row.created_at instanceof Date ? row.created_at : new Date(row.created_at)).toISOString(),
  };
}
