import type { IncomingMessage } from 'node:http';
import express, { type NextFunction, type Request, type Response } from 'express';
import { CtrlplaneError } from '../domain/errors.ts';

export const BODY_LIMIT_BYTES = 256 * 1024;

/** No request of this API nests deeper; deeper JSON is refused before it is parsed. */
export const MAX_JSON_DEPTH = 32;

const JSON_TYPES = ['application/json', 'application/*+json'];

export class JsonTooDeepError extends Error {
  readonly type = 'entity.too.deep';
}

export class JsonNulError extends Error {
  readonly type = 'entity.nul';
}

/** `\u0000` in a JSON string: PostgreSQL can store a NUL neither in text nor in jsonb. */
function isEscapedNul(buf: Buffer, at: number): boolean {
  return (
    buf[at + 1] === 0x75 &&
    buf[at + 2] === 0x30 &&
    buf[at + 3] === 0x30 &&
    buf[at + 4] === 0x30 &&
    buf[at + 5] === 0x30
  );
}

/**
 * The nesting depth of a JSON text, counting `[` and `{` outside strings (stops counting past `max`); -1 when
 * a string holds an escaped NUL.
 */
export function jsonDepth(buf: Buffer, max: number): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i];
    if (inString) {
      if (c === 0x5c) {
        if (isEscapedNul(buf, i)) return -1;
        i++;
      } else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      depth++;
      if (depth > deepest) {
        deepest = depth;
        if (deepest > max) return deepest;
      }
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return deepest;
}

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * JSON bodies only: a body of another media type is a 415, one over the size limit or nested too deep a
 * 400 (the error handler names the field `body`).
 */
export function jsonBody() {
  const parse = express.json({
    limit: BODY_LIMIT_BYTES,
    strict: true,
    type: JSON_TYPES,
    verify: (_req, _res, buf) => {
      const depth = jsonDepth(buf, MAX_JSON_DEPTH);
      if (depth < 0) throw new JsonNulError('NUL character');
      if (depth > MAX_JSON_DEPTH) throw new JsonTooDeepError('too deep');
    },
  });
  return (req: Request, res: Response, next: NextFunction): void => {
    // No read route takes a body: whatever a GET carries is ignored, not parsed.
    if (req.method === 'GET' || req.method === 'HEAD') {
      next();
      return;
    }
    if (hasBody(req) && !req.is(JSON_TYPES)) {
      const given = req.headers['content-type'] ?? 'none';
      next(
        new CtrlplaneError(
          'unsupported_media_type',
          `body: must be application/json, not ${given.slice(0, 100)}`,
          [{ field: 'body', message: 'must be application/json' }],
        ),
      );
      return;
    }
    parse(req, res, next);
  };
}
