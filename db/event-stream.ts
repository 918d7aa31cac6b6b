import type { Orm } from './database.ts';

/** A place in the event stream: after the event at (txid, position). txid is a PostgreSQL xid8, as text. */
export interface StreamCursor {
  txid: string;
  position: string;
}

/** The start of the stream: before every event. */
export const STREAM_START: StreamCursor = { txid: '0', position: '0' };

/** One lifecycle event of the stream, with its place in it. */
export interface StreamEvent {
  id: string;
  tenant_id: string;
  instance_id: string;
  seq: number;
  type: string;
  payload: Record<string, unknown> | null;
  occurred_at: Date;
  cursor: StreamCursor;
}

/** Whose events: one tenant's, or (the operator's) every tenant's. */
export type StreamScope = { tenant_id: string } | { all_tenants: true };

export interface StreamFilter {
  instance_id?: string;
  /** Only these types; absent: every type. */
  types?: readonly string[];
}

interface Row {
  id: string;
  tenant_id: string;
  instance_id: string;
  seq: number;
  type: string;
  payload: Record<string, unknown> | null;
  occurred_at: Date;
  txid: string;
  position: string;
}

/**
 * The lifecycle event outbox read as one stream, oldest first, in (txid, position) order. Only events whose
 * writing transaction is older than every transaction still in flight are served: such rows can no longer
 * appear or vanish, and every row committed later sorts after them, so reading on from a cursor never skips
 * or repeats an event. A cursor whose own transaction is not yet that old serves nothing until it is.
 */
export class EventStream {
  constructor(private readonly orm: Orm) {}

  private connection() {
    return this.orm.em.fork().getConnection();
  }

  /** Up to `limit` events after `after` in the scope and filter. */
  async page(
    scope: StreamScope,
    after: StreamCursor,
    filter: StreamFilter,
    limit: number,
  ): Promise<StreamEvent[]> {
    const where = [
      '("txid", "position") > (?::xid8, ?::bigint)',
      `?::xid8 < pg_snapshot_xmin(pg_current_snapshot())`,
      `"txid" < pg_snapshot_xmin(pg_current_snapshot())`,
    ];
    const params: unknown[] = [after.txid, after.position, after.txid];
    if ('tenant_id' in scope) {
      where.push('"tenant_id" = ?');
      params.push(scope.tenant_id);
    }
    if (filter.instance_id !== undefined) {
      where.push('"instance_id" = ?');
      params.push(filter.instance_id);
    }
    if (filter.types !== undefined) {
      // MikroORM inlines an array parameter as a list of literals.
      where.push('"type" = any(array[?]::text[])');
      params.push(filter.types);
    }
    params.push(limit);
    const rows = await this.connection().execute<Row[]>(
      `select "id", "tenant_id", "instance_id", "seq", "type", "payload", "occurred_at",
              "txid"::text as "txid", "position"::text as "position"
         from "instance_events"
        where ${where.join(' and ')}
        order by "txid", "position"
        limit ?`,
      params,
    );
    return rows.map(({ txid, position, ...event }) => ({ ...event, cursor: { txid, position } }));
  }

  /** The place of an event of the scope, to read on after it; undefined when the scope has no such event. */
  async cursorOf(scope: StreamScope, eventId: string): Promise<StreamCursor | undefined> {
    const tenant = 'tenant_id' in scope ? ' and "tenant_id" = ?' : '';
    const [row] = await this.connection().execute<StreamCursor[]>(
      `select "txid"::text as "txid", "position"::text as "position" from "instance_events" where "id" = ?${tenant}`,
      'tenant_id' in scope ? [eventId, scope.tenant_id] : [eventId],
    );
    return row;
  }

  /** One event by id, in any tenant (a webhook delivery's). */
  async event(eventId: string): Promise<StreamEvent | undefined> {
    const [row] = await this.connection().execute<Row[]>(
      `select "id", "tenant_id", "instance_id", "seq", "type", "payload", "occurred_at",
              "txid"::text as "txid", "position"::text as "position"
         from "instance_events" where "id" = ?`,
      [eventId],
    );
    if (!row) return undefined;
    const { txid, position, ...event } = row;
    return { ...event, cursor: { txid, position } };
  }

  /**
   * A cursor after every event committed so far: what a subscriber that wants only new events starts from.
   * Events still in flight sort after it and are read later.
   */
  async head(): Promise<StreamCursor> {
    const [row] = await this.connection().execute<StreamCursor[]>(
      `select "txid"::text as "txid", "position"::text as "position" from "instance_events"
        where "txid" < pg_snapshot_xmin(pg_current_snapshot())
        order by "txid" desc, "position" desc limit 1`,
    );
    return row ?? STREAM_START;
  }
}
