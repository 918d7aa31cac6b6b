import { CtrlplaneError } from '../domain/errors.ts';
import type { Release, ReleaseSelector } from '../domain/release.ts';
import type { Orm } from './database.ts';
import { ReleaseRecordSchema } from './entities/release-record.ts';
import { recordToRelease } from './release-mapping.ts';

export interface ReleasePage {
  items: Release[];
  next_cursor?: string;
}

/** Reads of an instance's releases: the API's (tenant-scoped) and the rollback activity's (by instance). */
export class ReleaseStore {
  constructor(private readonly orm: Orm) {}

  /** Newest first, paged by number (the cursor is the last number seen). */
  async list(
    tenantId: string,
    instanceId: string,
    query: { cursor?: string; limit: number },
  ): Promise<ReleasePage> {
    const before = query.cursor === undefined ? undefined : decodeReleaseCursor(query.cursor);
    const rows = await this.orm.em.fork().find(
      ReleaseRecordSchema,
      {
        instance_id: instanceId,
        tenant_id: tenantId,
        ...(before !== undefined ? { number: { $lt: before } } : {}),
      },
      { orderBy: { number: 'desc' }, limit: query.limit + 1 },
    );
    const items = rows.slice(0, query.limit);
    const last = items.at(-1);
    return {
      items: items.map(recordToRelease),
      ...(rows.length > query.limit && last ? { next_cursor: encodeReleaseCursor(last.number) } : {}),
    };
  }

  /** One release of the instance, by number or id; `tenantId` absent only for the workflow's own reads. */
  async get(instanceId: string, release: ReleaseSelector, tenantId?: string): Promise<Release | undefined> {
    const row = await this.orm.em.fork().findOne(ReleaseRecordSchema, {
      instance_id: instanceId,
      ...(tenantId !== undefined ? { tenant_id: tenantId } : {}),
      ...(typeof release === 'number' ? { number: release } : { id: release }),
    });
    return row ? recordToRelease(row) : undefined;
  }
}

function encodeReleaseCursor(number: number): string {
  return Buffer.from(`release:${number}`).toString('base64url');
}

function decodeReleaseCursor(cursor: string): number {
  const match = /^release:(\d{1,10})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!match?.[1]) {
    throw new CtrlplaneError('invalid_request', 'cursor: is not a cursor this API returned', [
      { field: 'cursor', message: 'is not a cursor this API returned' },
    ]);
  }
  return Number(match[1]);
}
