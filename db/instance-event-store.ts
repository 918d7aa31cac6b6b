import { CtrlplaneError } from '../domain/errors.ts';
import type { Orm } from './database.ts';
import { type InstanceEventRecord, InstanceEventRecordSchema } from './entities/instance-event-record.ts';

export interface EventPage {
  items: InstanceEventRecord[];
  next_cursor?: string;
}

/** The lifecycle event outbox, read per instance (the read-model projection writes it). */
export class InstanceEventStore {
  constructor(private readonly orm: Orm) {}

  /** Lifecycle events of one instance, oldest first, paged by seq (the cursor is the last seq seen). */
  async list(
    tenantId: string,
    instanceId: string,
    query: { cursor?: string; limit: number },
  ): Promise<EventPage> {
    const after = query.cursor === undefined ? -1 : decodeEventCursor(query.cursor);
    const rows = await this.orm.em
      .fork()
      .find(
        InstanceEventRecordSchema,
        { instance_id: instanceId, tenant_id: tenantId, seq: { $gt: after } },
        { orderBy: { seq: 'asc' }, limit: query.limit + 1 },
      );
    const items = rows.slice(0, query.limit);
    const last = items.at(-1);
    return {
      items,
      ...(rows.length > query.limit && last ? { next_cursor: encodeEventCursor(last.seq) } : {}),
    };
  }
}

function encodeEventCursor(seq: number): string {
  return Buffer.from(`seq:${seq}`).toString('base64url');
}

function decodeEventCursor(cursor: string): number {
  const match = /^seq:(\d{1,10})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!match?.[1]) {
    throw new CtrlplaneError('invalid_request', 'cursor: is not a cursor this API returned', [
      { field: 'cursor', message: 'is not a cursor this API returned' },
    ]);
  }
  return Number(match[1]);
}
