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
 * retry it, with its Idempotency-Key), or undefined for any other error.
 */
export function databaseUnavailable(err: unknown): RetryableError | undefined {
  if (!(err instanceof DriverException)) return undefined;
  const code = err.sqlState ?? err.code ?? '';
  const known =
    err instanceof ConnectionException ||
    UNAVAILABLE_STATE.test(code) ||
    UNAVAILABLE_ERRNO.test(code) ||
    UNAVAILABLE_MESSAGE.test(err.message);
  return known
    ? new RetryableError('database_unavailable', 'the database is not reachable right now; retry shortly', 1)
    : undefined;
}
