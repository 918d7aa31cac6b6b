import { createHash } from 'node:crypto';
import type { Request, Response } from 'express';
import type { Logger } from '../config/logger.ts';
import type { IdempotencyScope, IdempotencyStore } from '../db/idempotency-store.ts';
import { CtrlplaneError } from '../domain/errors.ts';
import { callerOf } from './auth.ts';
import { problemOf } from './error-handler.ts';
import { isInDoubt } from './in-doubt.ts';
import { RetryableError } from './problem.ts';
import { problemReply, type Reply, type StoredResponse, sendStored, storedFormOf } from './reply.ts';

export const IDEMPOTENCY_KEY_HEADER = 'Idempotency-Key';
const KEY = /^[\x21-\x7e]{1,255}$/;

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
