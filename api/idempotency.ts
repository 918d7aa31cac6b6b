import { createHash } from 'node:crypto';
import type { Request, Response } from 'express';
import type { Logger } from '../config/logger.ts';
import type { Orm } from '../db/database.ts';
import { CtrlplaneError } from '../domain/errors.ts';
import { callerOf } from './auth.ts';
import { problemOf } from './error-handler.ts';
import { isInDoubt } from './in-doubt.ts';
import { RetryableError } from './problem.ts';
import { problemReply, type Reply, type StoredResponse, sendStored, storedFormOf } from './reply.ts';

export const IDEMPOTENCY_KEY_HEADER = 'Idempotency-Key';
const KEY = /^[\x21-\x7e]{1,255}$/;

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
   * over at once, as if the request had died: used when the work may have happened (isInDoubt).
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

/** JSON with object keys sorted, so `{a, b}` and `{b, a}` are the same request. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

export function requestFingerprint(method: string, path: string, body: unknown): string {
  const normalised = body === undefined || body === null ? {} : body;
  return createHash('sha256')
    .update(`${method} ${path}\n${canonicalJson(normalised)}`)
    .digest('hex');
}

/** Responses a repeat gets again; a 5xx, a 429 or a 408 may go differently next time, so it is not kept. */
function storable(status: number): boolean {
  return status < 500 && status !== 429 && status !== 408;
}

export interface IdempotentOptions {
  store: IdempotencyStore;
  logger: Logger;
  /** The request body as the caller sent it (the fingerprint covers it with the method and path). */
  body: unknown;
  /** Reserved with the key: the id a create will give its instance. */
  resourceId?: string;
  signal?: AbortSignal;
}

function scopeOf(req: Request, key: string, body: unknown, resourceId?: string): IdempotencyScope {
  const path = (req.originalUrl.split('?')[0] ?? '').replace(/(.)\/+$/, '$1');
  return {
    tenantId: callerOf(req).tenant_id,
    key,
    method: req.method,
    path,
    fingerprint: requestFingerprint(req.method, path, body),
    ...(resourceId ? { resourceId } : {}),
  };
}

/**
 * Replays the stored answer of a request already completed under this Idempotency-Key and body, and says
 * whether it did. Create calls it before its checks, so a retry of a create that succeeded gets its 201
 * even if the provider is down or the datacenter is draining by now.
 */
export async function replayCompleted(
  req: Request,
  res: Response,
  store: IdempotencyStore,
  body: unknown,
): Promise<boolean> {
  const key = req.get(IDEMPOTENCY_KEY_HEADER);
  if (key === undefined || !KEY.test(key)) return false;
  const stored = await store.completed(scopeOf(req, key, body));
  if (!stored) return false;
  res.setHeader('Idempotent-Replayed', 'true');
  sendStored(res, stored);
  return true;
}

/**
 * Runs a mutating route under the request's Idempotency-Key, if it has one: a repeat with the same key and
 * body gets the stored response (status, headers, body) without the work being done again; the same key
 * with another body or route is a 422; a repeat while the first is still running waits for it.
 */
export async function runIdempotent(
  req: Request,
  res: Response,
  options: IdempotentOptions,
  work: (claim: { resourceId: string | undefined; resumed: boolean; key?: string }) => Promise<Reply>,
): Promise<void> {
  const key = req.get(IDEMPOTENCY_KEY_HEADER);
  if (key === undefined) {
    sendStored(res, storedFormOf(await work({ resourceId: options.resourceId, resumed: false })));
    return;
  }
  if (!KEY.test(key)) {
    throw new CtrlplaneError(
      'invalid_request',
      'Idempotency-Key: must be 1 to 255 visible ASCII characters',
      [{ field: IDEMPOTENCY_KEY_HEADER, message: 'must be 1 to 255 visible ASCII characters' }],
    );
  }
  const scope = scopeOf(req, key, options.body, options.resourceId);
  const claim = await options.store.claimWaiting(scope, options.store.busyWaitMs, options.signal);
  switch (claim.outcome) {
    case 'mismatch':
      throw new CtrlplaneError(
        'idempotency_key_reused',
        'Idempotency-Key: this key was used with another request; use a new key for a new request',
        [{ field: IDEMPOTENCY_KEY_HEADER, message: 'was used with another request' }],
      );
    case 'busy':
      throw new RetryableError(
        'request_in_progress',
        'a request with this Idempotency-Key is still being processed; retry later',
        1,
      );
    case 'replay':
      res.setHeader('Idempotent-Replayed', 'true');
      sendStored(res, claim.response);
      return;
  }
  let stored: StoredResponse;
  try {
    stored = storedFormOf(await work({ resourceId: claim.resourceId, resumed: claim.resumed, key }));
  } catch (err) {
    const known = problemOf(err, req.originalUrl.split('?')[0] ?? '');
    if (!known || !storable(known.status)) {
      // In doubt, the repeat resumes this request (same reserved id, same command request id) rather than
      // starting afresh: a fresh create would make a second instance if the first workflow did start.
      await (isInDoubt(err) ? options.store.releaseInDoubt(scope) : options.store.release(scope)).catch(
        (releaseErr) => options.logger.warn({ err: releaseErr }, 'idempotency key not released'),
      );
      throw err;
    }
    stored = storedFormOf(problemReply(known));
  }
  try {
    await options.store.complete(scope, stored);
  } catch (err) {
    // The work is done: answer anyway. A repeat takes the key over once its lock expires.
    options.logger.error({ err }, 'idempotent response not stored');
  }
  sendStored(res, stored);
}
