import type { Orm } from './database.ts';

/** A response as stored with its Idempotency-Key and replayed to repeats. */
export interface StoredResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

const BUSY_POLL_MS = 100;

export interface IdempotencyScope {
  tenantId: string;
  key: string;
  method: string;
  path: string;
  fingerprint: string;
  /** The resource the first request will create (create reserves the instance id with its key). */
  resourceId?: string;
}

export type Claim =
  /** This request does the work; `resumed` when it takes over from a request that died midway. */
  | { outcome: 'owner'; resourceId: string | undefined; resumed: boolean }
  | { outcome: 'replay'; response: StoredResponse }
  | { outcome: 'mismatch' }
  | { outcome: 'busy' };

interface KeyRow {
  fingerprint: string;
  status: number | null;
  headers: Record<string, string> | null;
  body: string | null;
  resource_id: string | null;
  abandoned: boolean;
}

/**
 * Idempotency keys in PostgreSQL, per tenant, kept `ttlMs`. The first request with a key claims it (a row
 * with a null status and a lock); its response is stored when it finishes and replayed to every repeat with
 * the same fingerprint. A claim whose request died (lock expired) is taken over by the next repeat.
 */
export class IdempotencyStore {
  constructor(
    private readonly orm: Orm,
    private readonly options: {
      ttlMs: number;
      lockMs: number;
      /** How long a repeat waits for the first request with its key to finish before it gets a 409. */
      busyWaitMs?: number;
    },
  ) {}

  get busyWaitMs(): number {
    return this.options.busyWaitMs ?? 30_000;
  }

  private execute<T>(sql: string, params: unknown[]): Promise<T[]> {
    return this.orm.em.fork().getConnection().execute<T[]>(sql, params);
  }

  async claim(scope: IdempotencyScope): Promise<Claim> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const inserted = await this.execute<{ resource_id: string | null }>(
        `insert into idempotency_keys
           (tenant_id, key, fingerprint, method, path, resource_id, locked_until, expires_at)
         values (?, ?, ?, ?, ?, ?, now() + ? * interval '1 millisecond', now() + ? * interval '1 millisecond')
         on conflict (tenant_id, key) do update set
           fingerprint = excluded.fingerprint, method = excluded.method, path = excluded.path,
           resource_id = excluded.resource_id, status = null, headers = null, body = null,
           locked_until = excluded.locked_until, created_at = now(), expires_at = excluded.expires_at
         where idempotency_keys.expires_at < now()
         returning resource_id`,
        [
          scope.tenantId,
          scope.key,
          scope.fingerprint,
          scope.method,
          scope.path,
          scope.resourceId ?? null,
          this.options.lockMs,
          this.options.ttlMs,
        ],
      );
      if (inserted.length > 0) return { outcome: 'owner', resourceId: scope.resourceId, resumed: false };

      const [row] = await this.execute<KeyRow>(
        `select fingerprint, status, headers, body, resource_id, locked_until < now() as abandoned
           from idempotency_keys where tenant_id = ? and key = ?`,
        [scope.tenantId, scope.key],
      );
      if (!row) continue; // purged between the two statements
      if (row.fingerprint !== scope.fingerprint) return { outcome: 'mismatch' };
      if (row.status !== null) {
        return {
          outcome: 'replay',
          response: { status: row.status, headers: row.headers ?? {}, body: row.body ?? '' },
        };
      }
      if (!row.abandoned) return { outcome: 'busy' };
      const resumed = await this.execute<{ resource_id: string | null }>(
        `update idempotency_keys set locked_until = now() + ? * interval '1 millisecond'
          where tenant_id = ? and key = ? and status is null and locked_until < now()
          returning resource_id`,
        [this.options.lockMs, scope.tenantId, scope.key],
      );
      if (resumed[0])
        return { outcome: 'owner', resourceId: resumed[0].resource_id ?? undefined, resumed: true };
    }
    return { outcome: 'busy' };
  }

  /** The stored answer of a completed request with this key and fingerprint, if any (no claim is made). */
  async completed(scope: IdempotencyScope): Promise<StoredResponse | undefined> {
    const [row] = await this.execute<KeyRow>(
      `select fingerprint, status, headers, body, resource_id, false as abandoned
         from idempotency_keys
        where tenant_id = ? and key = ? and fingerprint = ? and status is not null and expires_at > now()`,
      [scope.tenantId, scope.key, scope.fingerprint],
    );
    return row && row.status !== null
      ? { status: row.status, headers: row.headers ?? {}, body: row.body ?? '' }
      : undefined;
  }

  /** Claims, waiting up to `waitMs` while another request holds the key. */
  async claimWaiting(scope: IdempotencyScope, waitMs: number, signal?: AbortSignal): Promise<Claim> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const claim = await this.claim(scope);
      if (claim.outcome !== 'busy' || Date.now() >= deadline || signal?.aborted) return claim;
      await new Promise((r) => setTimeout(r, BUSY_POLL_MS));
    }
  }

  async complete(scope: IdempotencyScope, response: StoredResponse): Promise<void> {
    await this.execute(
      `update idempotency_keys set status = ?, headers = ?::jsonb, body = ?
        where tenant_id = ? and key = ? and fingerprint = ?`,
      [
        response.status,
        JSON.stringify(response.headers),
        response.body,
        scope.tenantId,
        scope.key,
        scope.fingerprint,
      ],
    );
  }

  /** Gives the key back after a failure worth retrying (5xx, 429): the next request does the work. */
  async release(scope: IdempotencyScope): Promise<void> {
    await this.execute(
      'delete from idempotency_keys where tenant_id = ? and key = ? and fingerprint = ? and status is null',
      [scope.tenantId, scope.key, scope.fingerprint],
    );
  }

  /**
   * Keeps the key bound to its request (fingerprint and reserved resource id) but lets the next repeat take it
   * over at once, as if the request had died: used when the work may have happened.
   */
  async releaseInDoubt(scope: IdempotencyScope): Promise<void> {
    await this.execute(
      `update idempotency_keys set locked_until = now()
        where tenant_id = ? and key = ? and fingerprint = ? and status is null`,
      [scope.tenantId, scope.key, scope.fingerprint],
    );
  }

  async purgeExpired(): Promise<number> {
    const rows = await this.execute<{ key: string }>(
      'delete from idempotency_keys where expires_at < now() returning key',
      [],
    );
    return rows.length;
  }
}
