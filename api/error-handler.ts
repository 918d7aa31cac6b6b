import type { NextFunction, Request, Response } from 'express';
import type { Logger } from '../config/logger';
import { CtrlplaneError } from '../domain/errors';
import { problem, sendProblem } from './problem';

interface BodyParserError extends Error {
  type?: string;
  status?: number;
  limit?: number;
}

/** Every error becomes problem+json; only unexpected ones are 500s, logged with their stack, never shown. */
export function errorHandler(logger: Logger) {
  return (err: unknown, req: Request, res: Response, _next: NextFunction): void => {
    const at = req.originalUrl.split('?')[0];
    if (err instanceof CtrlplaneError) {
      if (err.code === 'unauthorized') res.setHeader('WWW-Authenticate', 'Bearer');
      sendProblem(
        res,
        problem(err.code, err.message, {
          instance: at,
          ...(err.issues.length ? { errors: err.issues } : {}),
        }),
      );
      return;
    }
    const parserError = err as BodyParserError;
    if (parserError?.type === 'entity.parse.failed') {
      sendProblem(
        res,
        problem('invalid_request', 'body: is not valid JSON', {
          instance: at,
          errors: [{ field: 'body', message: 'is not valid JSON' }],
        }),
      );
      return;
    }
    if (parserError?.type === 'entity.too.large') {
      const detail = `body: is larger than the ${parserError.limit ?? ''} byte limit`;
      sendProblem(
        res,
        problem('invalid_request', detail, { instance: at, errors: [{ field: 'body', message: detail }] }),
      );
      return;
    }
    if (parserError?.type && parserError.status && parserError.status < 500) {
      sendProblem(res, problem('invalid_request', `body: ${parserError.message}`, { instance: at }));
      return;
    }
    logger.error({ err, path: at }, 'unhandled error');
    sendProblem(
      res,
      problem('internal', 'an unexpected error occurred; it has been logged', { instance: at }),
    );
  };
}
