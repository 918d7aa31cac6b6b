import type { WebhookSecretCipher } from '../webhooks/secret-cipher.ts';
import type { Orm } from './database.ts';
import type { StreamCursor, StreamEvent } from './event-stream.ts';

/** What reads of a webhook show: never its secret. */
export interface WebhookSummary {
  id: string;
  tenant_id: string;
  url: string;
  /** Empty: every event type. */
  event_types: string[];
  enabled: boolean;
  created_at: Date;
  updated_at: Date;
}

/** What the delivery workflow needs to send one event: the secret signs it. */
export interface WebhookTarget extends WebhookSummary {
  secret: string;
  cursor: StreamCursor;
}

export type DeliveryStatus = 'pending' | 'retrying' | 'delivered' | 'failed';

export interface WebhookDelivery {
  event_id: string;
  instance_id: string;
  event_type: string;
  status: DeliveryStatus;
  attempts: number;
  last_response_code: number | null;
  last_error: string | null;
  created_at: Date;
  last_attempt_at: Date | null;
  delivered_at: Date | null;
}

/** One attempt's outcome, as the delivery activity records it. */
export type AttemptOutcome =
  | { kind: 'delivered'; response_code: number }
  | { kind: 'refused'; response_code: number | null; error: string };

const SUMMARY_COLUMNS = `"id", "tenant_id", "url", "event_types", "enabled", "created_at", "updated_at"`;

/**
 * Webhooks and their deliveries. Every tenant-facing read and write is scoped to a tenant; only `target` (the
 * delivery workflow's) returns the secret, which is stored sealed by the cipher (webhooks/secret-cipher.ts).
 */
export class WebhookStore {
  constructor(
    private readonly orm: Orm,
    private readonly cipher: WebhookSecretCipher,
  ) {}

  private connection() {
    return this.orm.em.fork().getConnection();
  }

  async create(webhook: WebhookSummary & { secret: string; cursor: StreamCursor }): Promise<void> {
    await this.connection().execute(
      `insert into "webhooks" ("id", "tenant_id", "url", "event_types", "enabled", "secret", "cursor_txid",
                               "cursor_position", "created_at", "updated_at")
       values (?, ?, ?, array[?]::text[], ?, ?, ?::xid8, ?::bigint, ?, ?)`,
      [
        webhook.id,
        webhook.tenant_id,
        webhook.url,
        webhook.event_types,
        webhook.enabled,
        this.cipher.seal(webhook.secret),
        webhook.cursor.txid,
        webhook.cursor.position,
        webhook.created_at,
        webhook.updated_at,
      ],
    );
  }

  async get(tenantId: string, id: string): Promise<WebhookSummary | undefined> {
    const [row] = await this.connection().execute<WebhookSummary[]>(
      `select ${SUMMARY_COLUMNS} from "webhooks" where "tenant_id" = ? and "id" = ?`,
      [tenantId, id],
    );
    return row;
  }

  async list(tenantId: string): Promise<WebhookSummary[]> {
    return this.connection().execute<WebhookSummary[]>(
      `select ${SUMMARY_COLUMNS} from "webhooks" where "tenant_id" = ? order by "created_at", "id"`,
      [tenantId],
    );
  }

  /** The changed webhook; undefined when the tenant has no such webhook. */
  async update(
    tenantId: string,
    id: string,
    change: Partial<Pick<WebhookSummary, 'url' | 'event_types' | 'enabled'>>,
  ): Promise<WebhookSummary | undefined> {
    // MikroORM inlines an array parameter as a list of literals: the types go in an array constructor.
    const types = change.event_types === undefined ? '"event_types"' : 'array[?]::text[]';
    const [row] = await this.connection().execute<WebhookSummary[]>(
      `update "webhooks" set
         "url" = coalesce(?, "url"),
         "event_types" = ${types},
         "enabled" = coalesce(?, "enabled"),
         "updated_at" = ?
       where "tenant_id" = ? and "id" = ?
       returning ${SUMMARY_COLUMNS}`,
      [
        change.url ?? null,
        ...(change.event_types === undefined ? [] : [change.event_types]),
        change.enabled ?? null,
        new Date(),
        tenantId,
        id,
      ],
    );
    return row;
  }

  /** True when the tenant had the webhook; its deliveries go with it. */
  async delete(tenantId: string, id: string): Promise<boolean> {
    const rows = await this.connection().execute<{ id: string }[]>(
      'delete from "webhooks" where "tenant_id" = ? and "id" = ? returning "id"',
      [tenantId, id],
    );
    return rows.length > 0;
  }

  /** Replaces the secret; false when the tenant has no such webhook. */
  async rotateSecret(tenantId: string, id: string, secret: string): Promise<WebhookSummary | undefined> {
    const [row] = await this.connection().execute<WebhookSummary[]>(
      `update "webhooks" set "secret" = ?, "updated_at" = ? where "tenant_id" = ? and "id" = ?
       returning ${SUMMARY_COLUMNS}`,
      [this.cipher.seal(secret), new Date(), tenantId, id],
    );
    return row;
  }

  /** The webhook with its secret and cursor, in any tenant (the delivery workflow's). */
  async target(id: string): Promise<WebhookTarget | undefined> {
    const [row] = await this.connection().execute<
      (WebhookSummary & { secret: string; cursor_txid: string; cursor_position: string })[]
    >(
      `select ${SUMMARY_COLUMNS}, "secret", "cursor_txid"::text as "cursor_txid",
              "cursor_position"::text as "cursor_position"
         from "webhooks" where "id" = ?`,
      [id],
    );
    if (!row) return undefined;
    const { cursor_txid, cursor_position, secret, ...target } = row;
    return {
      ...target,
      secret: this.cipher.open(secret),
      cursor: { txid: cursor_txid, position: cursor_position },
    };
  }

  /** Queues the events as pending deliveries (once: a delivery already queued is left as it is). */
  async queue(webhookId: string, events: readonly StreamEvent[]): Promise<void> {
    if (events.length === 0) return;
    const now = new Date();
    const values = events.map(() => `(?, ?, ?, ?, 'pending', 0, ?, ?::xid8, ?::bigint)`).join(', ');
    await this.connection().execute(
      `insert into "webhook_deliveries" ("webhook_id", "event_id", "instance_id", "event_type", "status",
                                         "attempts", "created_at", "txid", "position")
       values ${values}
       on conflict ("webhook_id", "event_id") do nothing`,
      events.flatMap((e) => [webhookId, e.id, e.instance_id, e.type, now, e.cursor.txid, e.cursor.position]),
    );
  }

  /** The delivery's status; undefined when it is not queued (or the webhook is gone). */
  async deliveryStatus(webhookId: string, eventId: string): Promise<DeliveryStatus | undefined> {
    const [row] = await this.connection().execute<{ status: DeliveryStatus }[]>(
      'select "status" from "webhook_deliveries" where "webhook_id" = ? and "event_id" = ?',
      [webhookId, eventId],
    );
    return row?.status;
  }

  /** Counts an attempt and what it got. */
  async recordAttempt(webhookId: string, eventId: string, outcome: AttemptOutcome): Promise<void> {
    const now = new Date();
    const delivered = outcome.kind === 'delivered';
    await this.connection().execute(
      `update "webhook_deliveries" set
         "attempts" = "attempts" + 1,
         "status" = ?,
         "last_response_code" = ?,
         "last_error" = ?,
         "last_attempt_at" = ?,
         "delivered_at" = ?
       where "webhook_id" = ? and "event_id" = ? and "status" <> 'delivered'`,
      [
        delivered ? 'delivered' : 'retrying',
        outcome.response_code,
        delivered ? null : outcome.error,
        now,
        delivered ? now : null,
        webhookId,
        eventId,
      ],
    );
  }

  /** Gives the delivery up: its retries ran out or the webhook's address is refused. */
  async markFailed(webhookId: string, eventId: string, error: string): Promise<void> {
    await this.connection().execute(
      `update "webhook_deliveries" set "status" = 'failed', "last_error" = coalesce(?, "last_error")
        where "webhook_id" = ? and "event_id" = ? and "status" <> 'delivered'`,
      [error, webhookId, eventId],
    );
  }

  /** Moves the webhook's cursor past a batch it has sent, if no one moved it meanwhile. */
  async advance(webhookId: string, from: StreamCursor, to: StreamCursor): Promise<void> {
    await this.connection().execute(
      `update "webhooks" set "cursor_txid" = ?::xid8, "cursor_position" = ?::bigint
        where "id" = ? and "cursor_txid" = ?::xid8 and "cursor_position" = ?::bigint`,
      [to.txid, to.position, webhookId, from.txid, from.position],
    );
  }

  /** The webhook's deliveries, newest first. */
  async deliveries(webhookId: string, limit: number): Promise<WebhookDelivery[]> {
    return this.connection().execute<WebhookDelivery[]>(
      `select "event_id", "instance_id", "event_type", "status", "attempts", "last_response_code",
              "last_error", "created_at", "last_attempt_at", "delivered_at"
         from "webhook_deliveries" where "webhook_id" = ?
        order by "txid" desc, "position" desc limit ?`,
      [webhookId, limit],
    );
  }
}
