import type { Request, Response } from 'express';
import { TypeID } from 'typeid-js';
import type { Logger } from '../../config/logger.ts';
import type { EventStream, StreamCursor, StreamScope } from '../../db/event-stream.ts';
import { STREAM_START } from '../../db/event-stream.ts';
import { CtrlplaneError } from '../../domain/errors.ts';
import { eventMessage } from '../../domain/event-message.ts';
import { callerOf } from '../auth.ts';
import { routeLabel } from '../metrics.ts';
import { OPERATOR_ROLE, requireRole } from '../roles.ts';
import { type EventStreamQuery, eventIdSchema, eventStreamQuerySchema } from '../schemas/events.ts';
import { parseInput } from '../validate.ts';
import { pause, requestSignal } from './route-context.ts';

export interface EventRoutesDeps {
  stream: EventStream;
  logger: Logger;
  ssePingMs: number;
  /** Aborted when the API shuts down: open streams end, and their clients reconnect with the last id. */
  shutdown: AbortSignal;
}

const PAGE = 500;
/** How often a following stream looks for new events. */
const FOLLOW_POLL_MS = 500;

/** GET /v1/events: the caller's tenant's lifecycle events as NDJSON, or SSE (Accept: text/event-stream). */
export function eventStreamRoute(deps: EventRoutesDeps) {
  return [
    routeLabel('/v1/events'),
    async (req: Request, res: Response) => {
      const query = parseInput(eventStreamQuerySchema, req.query, 'query');
      const scope = scopeOf(req, query);
      const after = await startCursor(deps.stream, scope, req, query);
      const sse = req.accepts(['application/x-ndjson', 'text/event-stream']) === 'text/event-stream';
      const signal = requestSignal(res, deps.shutdown);
      const filter = {
        ...(query.instance ? { instance_id: query.instance } : {}),
        ...(query.type ? { types: query.type } : {}),
      };

      res.status(200);
      res.setHeader(
        'Content-Type',
        sse ? 'text/event-stream; charset=utf-8' : 'application/x-ndjson; charset=utf-8',
      );
      res.setHeader('Cache-Control', 'no-store');
      res.setHeader('X-Accel-Buffering', 'no');
      res.flushHeaders();
      if (sse) res.write('retry: 3000\n\n');
      const ping =
        sse && query.follow ? setInterval(() => res.write(': ping\n\n'), deps.ssePingMs) : undefined;
      const write = (text: string) => writeWithBackpressure(res, text, signal);
      try {
        let cursor = after;
        while (!signal.aborted) {
          const events = await deps.stream.page(scope, cursor, filter, PAGE);
          for (const event of events) {
            const data = JSON.stringify(eventMessage(event));
            await write(sse ? `id: ${event.id}\ndata: ${data}\n\n` : `${data}\n`);
            cursor = event.cursor;
          }
          if (events.length === PAGE) continue;
          if (!query.follow) break;
          await pause(FOLLOW_POLL_MS, signal);
        }
      } catch (err) {
        // The headers are sent: the stream ends, and the client resumes after the last id it got.
        if (!signal.aborted) deps.logger.warn({ err }, 'event stream failed');
      } finally {
        if (ping) clearInterval(ping);
        res.end();
      }
    },
  ] as const;
}

function scopeOf(req: Request, query: EventStreamQuery): StreamScope {
  if (query.all_tenants) {
    requireRole(req, OPERATOR_ROLE);
    if (query.tenant_id !== undefined) {
      throw new CtrlplaneError('invalid_request', 'tenant_id: not with all_tenants', [
        { field: 'tenant_id', message: 'not with all_tenants' },
      ]);
    }
    return { all_tenants: true };
  }
  // Another tenant's stream is the operator's; a tenant never names a tenant, it is the token's.
  if (query.tenant_id !== undefined) requireRole(req, OPERATOR_ROLE);
  return { tenant_id: query.tenant_id ?? callerOf(req).tenant_id };
}

/** After `Last-Event-ID` (a reconnecting EventSource) or `?after=`; else the start of the stream. */
async function startCursor(
  stream: EventStream,
  scope: StreamScope,
  req: Request,
  query: EventStreamQuery,
): Promise<StreamCursor> {
  const header = req.headers['last-event-id'];
  const field = header !== undefined ? 'Last-Event-ID' : 'after';
  const raw = header !== undefined ? String(header) : query.after;
  if (raw === undefined) return STREAM_START;
  if (!eventIdSchema.safeParse(raw).success || !isEventId(raw)) {
    throw new CtrlplaneError('invalid_request', `${field}: must be an evt_ TypeID`, [
      { field, message: 'must be an evt_ TypeID' },
    ]);
  }
  const cursor = await stream.cursorOf(scope, raw);
  if (!cursor) {
    throw new CtrlplaneError('invalid_request', `${field}: no such event in this stream`, [
      { field, message: 'no such event in this stream' },
    ]);
  }
  return cursor;
}

function isEventId(value: string): boolean {
  try {
    return TypeID.fromString(value).getType() === 'evt';
  } catch {
    return false;
  }
}

async function writeWithBackpressure(res: Response, text: string, signal: AbortSignal): Promise<void> {
  if (res.write(text)) return;
  await new Promise<void>((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
    signal.addEventListener('abort', done, { once: true });
  });
}
