import { ConnectionException, DriverException } from '@mikro-orm/core';
import { RetryableError } from './problem.ts';

/**
 * SQLSTATE classes and codes that mean the database is not there right now, not that the query is wrong:
 * 08 connection exceptions, 57P01–57P03 (shutting down, crash shutdown, cannot connect now), 53300 (too many
 * connections).
 */
const UNAVAILABLE_STATE = /^(08...|57P0[123]|53300)$/;
const UNAVAILABLE_ERRNO = /^(ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|ENOTCONN)$/;
const UNAVAILABLE_MESSAGE =
  /database system is (shutting down|starting up|in recovery mode)|Connection terminated|terminating connection|timeout exceeded when trying to connect/i;

/**
 * The 503 for a request that failed because PostgreSQL was restarting or its connections were cut (a client may
 * retry it, with its Idempotency-Key), or undefined for any other error. Besides the ORM's exceptions, the pool's
 * own errors count: a refused connection while the server restarts reaches us unwrapped, as the driver's
 * DatabaseError (it has a `severity`) or a socket error raised inside the pg driver.
 */
export function databaseUnavailable(err: unknown): RetryableError | undefined {
  return isDatabaseAway(err)
    ? new RetryableError('database_unavailable', 'the database is not reachable right now; retry shortly', 1)
    : undefined;
}

function isDatabaseAway(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const { code, sqlState, severity } = err as Error & {
    code?: unknown;
    sqlState?: unknown;
    severity?: unknown;
  };
  const state = typeof sqlState === 'string' ? sqlState : typeof code === 'string' ? code : '';
  if (err instanceof DriverException) {
    return (
      err instanceof ConnectionException ||
      UNAVAILABLE_STATE.test(state) ||
      UNAVAILABLE_ERRNO.test(state) ||
      UNAVAILABLE_MESSAGE.test(err.message)
    );
  }
  if (typeof severity === 'string') return UNAVAILABLE_STATE.test(state);
  const fromDriver = /node_modules\/(pg|pg-pool)\//.test(err.stack ?? '');
  return fromDriver && (UNAVAILABLE_ERRNO.test(state) || UNAVAILABLE_MESSAGE.test(err.message));
}
