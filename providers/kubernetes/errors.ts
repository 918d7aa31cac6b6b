import { ApiException } from '@kubernetes/client-node';
import { PermanentProviderError } from '../provider.ts';

/** What the API server said, from an ApiException (client-node keeps the raw body text) or anything else. */
export interface KubeErrorInfo {
  code?: number;
  reason?: string;
  message: string;
}

interface StatusBody {
  kind?: string;
  reason?: string;
  message?: string;
  code?: number;
}

function parseBody(body: unknown): StatusBody | undefined {
  if (body && typeof body === 'object') return body as StatusBody;
  if (typeof body !== 'string' || body.length === 0) return undefined;
  try {
    const parsed: unknown = JSON.parse(body);
    return parsed && typeof parsed === 'object' ? (parsed as StatusBody) : undefined;
  } catch {
    return { message: body.trim() };
  }
}

export function kubeError(err: unknown): KubeErrorInfo {
  if (err instanceof ApiException) {
    const body = parseBody(err.body);
    return {
      code: err.code,
      reason: body?.reason,
      message: body?.message || `HTTP ${err.code}`,
    };
  }
  return { message: err instanceof Error ? err.message : String(err) };
}

export function statusCode(err: unknown): number | undefined {
  return err instanceof ApiException ? err.code : undefined;
}

export function isNotFound(err: unknown): boolean {
  return statusCode(err) === 404;
}

export function isConflict(err: unknown): boolean {
  return statusCode(err) === 409;
}

/** 404 → undefined; anything else is rethrown. */
export async function ignoreNotFound<T>(promise: Promise<T>): Promise<T | undefined> {
  try {
    return await promise;
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/**
 * The provider's error rule: the API server refusing the request itself (400 BadRequest, 422 Invalid, and 403
 * Forbidden: RBAC refusing the tenant's identity, or Pod Security refusing a pod) cannot be fixed by a retry → PermanentProviderError('invalid_spec') with the server's message. Everything else (5xx,
 * connection errors, 409 races, 404 of a namespace being created) is rethrown as it is, so the activity retries.
 */
export function translateError(err: unknown, what: string): never {
  const code = statusCode(err);
  if (code === 400 || code === 422 || code === 403) {
    throw new PermanentProviderError(
      `kubernetes rejected ${what}: ${kubeError(err).message}`,
      'invalid_spec',
    );
  }
  throw err;
}

export function errorMessage(err: unknown): string {
  return kubeError(err).message;
}
