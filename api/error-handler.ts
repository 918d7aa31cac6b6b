import type { NextFunction, Request, Response } from 'express';
import type { Logger } from '../config/logger.ts';
import { CtrlplaneError, type FieldIssue } from '../domain/errors.ts';
import { SourceError } from '../domain/sources/errors.ts';
import { databaseUnavailable } from './database-unavailable.ts';
import { MAX_JSON_DEPTH } from './json-body.ts';
import { type Problem, problem, RetryableError, sendProblem } from './problem.ts';

interface BodyParserError extends Error {
  type?: string;
  status?: number;
  limit?: number;
}

/** The problem document of a client-side error, or undefined for an unexpected one (a 500). */
export function problemOf(err: unknown, at: string): Problem | undefined {
  if (err instanceof CtrlplaneError) {
    return problem(err.code, err.message, {
      instance: at,
      ...(err.issues.length ? { errors: err.issues } : {}),
    });
  }
  if (err instanceof SourceError) return sourceProblem(err, at);
  const parserError = err as BodyParserError;
  const bodyProblem = (detail: string) => {
    const errors: FieldIssue[] = [{ field: 'body', message: detail }];
    return problem('invalid_request', `body: ${detail}`, { instance: at, errors });
  };
  switch (parserError?.type) {
    case 'entity.parse.failed':
      return bodyProblem('is not valid JSON');
    case 'entity.too.large':
      return bodyProblem(`is larger than the ${parserError.limit ?? ''} byte limit`);
    case 'entity.too.deep':
      return bodyProblem(`nests deeper than ${MAX_JSON_DEPTH} levels`);
    case 'entity.nul':
      return bodyProblem('must not contain NUL characters (\\u0000)');
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return bodyProblem(parserError.message);
  }
  if (parserError?.type && parserError.status && parserError.status < 500) {
    return bodyProblem(parserError.message);
  }
  // Other client errors raised by Express itself (e.g. a path parameter that does not URL-decode).
  const status = (err as { status?: unknown })?.status;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const detail = err instanceof Error ? err.message : 'the request is not valid';
    return problem('invalid_request', detail, { instance: at });
  }
  return undefined;
}

/**
 * A deployment-source or variable error (all 400): the field at fault (`source.helm.chart`,
 * `variables[2].pattern`, `variable_values.tag`, `service web env FOO`) or else the variable, in `errors`.
 * The library's messages name fields and variables, never a secret value.
 */
function sourceProblem(err: SourceError, at: string): Problem {
  const field = err.field ?? (err.variable !== undefined ? `variables.${err.variable}` : 'body');
  const errors: FieldIssue[] =
    err.code === 'cycle' && err.variables?.length
      ? err.variables.map((name) => ({ field: `variables.${name}`, message: err.message }))
      : [{ field, message: err.message }];
  return problem(err.code, err.message, { instance: at, errors });
}

/** Every error becomes problem+json; only unexpected ones are 500s, logged with their stack, never shown. */
export function errorHandler(logger: Logger) {
  return (err: unknown, req: Request, res: Response, _next: NextFunction): void => {
    const at = req.originalUrl.split('?')[0] ?? '';
    if (res.headersSent) {
      // A stream (logs) failed after its first byte: all that is left is to end it.
      logger.warn({ err, path: at }, 'error after the response started');
      res.end();
      return;
    }
    const known = problemOf(err, at);
    if (known) {
      if (known.code === 'unauthorized') res.setHeader('WWW-Authenticate', 'Bearer');
      if (err instanceof RetryableError) res.setHeader('Retry-After', String(err.retryAfterSeconds));
      sendProblem(res, known);
      return;
    }
    const unavailable = databaseUnavailable(err);
    if (unavailable) {
      logger.warn({ err, path: at }, 'database unavailable');
      res.setHeader('Retry-After', String(unavailable.retryAfterSeconds));
      sendProblem(res, problem(unavailable.code, unavailable.message, { instance: at }));
      return;
    }
    logger.error({ err, path: at }, 'unhandled error');
    sendProblem(
      res,
      problem('internal', 'an unexpected error occurred; it has been logged', { instance: at }),
    );
  };
}
