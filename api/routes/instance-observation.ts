import type { Request, Response } from 'express';
import type { InstanceRecord } from '../../db/entities/instance-record.ts';
import { recordToInstance } from '../../db/instance-mapping.ts';
import { CtrlplaneError } from '../../domain/errors.ts';
import {
  type LogLine,
  type LogOptions,
  PermanentProviderError,
  type Provider,
} from '../../providers/provider.ts';
import { callerOf } from '../auth.ts';
import { etagOf } from '../etag.ts';
import { RetryableError } from '../problem.ts';
import {
  emptyBodySchema,
  eventsQuerySchema,
  type LogsQuery,
  logStreamQuerySchema,
  logsQuerySchema,
  waitForStateQuerySchema,
} from '../schemas/instance-requests.ts';
import { parseInput } from '../validate.ts';
import { DEFAULT_WAIT_MS, durationMs } from '../wait-duration.ts';
import type { RouteRegistrar } from './instances.ts';
import { type InstanceRoutesDeps, loadOwned, pause, requestSignal } from './route-context.ts';

const STATE_POLL_MS = 200;
const RESOURCES_TIMEOUT_MS = 15_000;
/** A follow stream sends its headers once the first line arrived or this long passed without one. */
const FIRST_LINE_GRACE_MS = 300;
const SSE_DEFAULT_TAIL = 100;

/** Reads about one instance: wait for a state, lifecycle events, logs (NDJSON and SSE), resource usage. */
export function observationRoutes(deps: InstanceRoutesDeps, route: RouteRegistrar): void {
  const { store } = deps;

  route('get', '/:id/wait', async (req: Request, res: Response) => {
    const query = parseInput(waitForStateQuerySchema, req.query, 'query');
    const timeoutMs = Math.min(
      query.timeout ? (durationMs(query.timeout) ?? 0) : DEFAULT_WAIT_MS,
      deps.maxWaitMs,
    );
    let row = await loadOwned(store, req);
    const signal = requestSignal(res, deps.shutdown);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (row.state === query.state) {
        res.setHeader('ETag', etagOf(row));
        res.json(recordToInstance(row));
        return;
      }
      if (row.state === 'destroyed') {
        throw new CtrlplaneError(
          'invalid_state',
          `the instance is destroyed: it will never be ${query.state}`,
        );
      }
      if (Date.now() >= deadline) {
        throw new CtrlplaneError(
          'request_timeout',
          `the instance is ${row.state}, not ${query.state}, after ${timeoutMs} ms`,
        );
      }
      if (signal.aborted) {
        if (res.destroyed) return;
        throw new RetryableError('request_timeout', 'the server is shutting down; wait again', 1);
      }
      await pause(Math.min(STATE_POLL_MS, Math.max(deadline - Date.now(), 0)), signal);
      const next = await store.get(row.tenant_id, row.id);
      if (!next) throw new CtrlplaneError('not_found', `instance ${row.id} not found`);
      row = next;
    }
  });

  route('get', '/:id/events', async (req: Request, res: Response) => {
    const query = parseInput(eventsQuerySchema, req.query, 'query');
    const row = await loadOwned(store, req);
    const page = await deps.events.list(callerOf(req).tenant_id, row.id, query);
    res.json({
      items: page.items.map((e) => ({
        id: e.id,
        type: e.type,
        seq: e.seq,
        payload: e.payload ?? null,
        occurred_at: new Date(e.occurred_at).toISOString(),
      })),
      ...(page.next_cursor ? { next_cursor: page.next_cursor } : {}),
    });
  });

  route('get', '/:id/resources', async (req: Request, res: Response) => {
    const row = await loadOwned(store, req);
    const provider = providerOf(deps, row);
    const signal = AbortSignal.any([
      requestSignal(res, deps.shutdown),
      AbortSignal.timeout(RESOURCES_TIMEOUT_MS),
    ]);
    try {
      res.json(await provider.resources(row.id, { signal }));
    } catch (err) {
      throw providerError(err, 'resources');
    }
  });

  route('get', '/:id/logs', async (req: Request, res: Response) => {
    const query = parseInput(logsQuerySchema, req.query, 'query');
    const row = await loadOwned(store, req);
    const options = logOptions(row, query, { follow: false });
    const stream = await openLogs(deps, row, options, requestSignal(res, deps.shutdown));
    res.status(200);
    res.setHeader('Content-Type', 'application/x-ndjson; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store');
    res.flushHeaders();
    await stream.pipe(
      res,
      (line) => `${JSON.stringify(line)}\n`,
      (message) => `${JSON.stringify({ ts: new Date().toISOString(), stream: 'stderr', line: message })}\n`,
    );
  });

  // A ticket instead of the token in the stream's URL: URLs end up in access logs and browser history, a
  // ticket is worth one stream of one instance for a few seconds.
  route('post', '/:id/logs/stream-ticket', async (req: Request, res: Response) => {
    if (req.body !== undefined) parseInput(emptyBodySchema, req.body, 'body');
    const row = await loadOwned(store, req);
    const caller = callerOf(req);
    const issued = await deps.streamTickets.issue({ sub: caller.sub, tenant_id: row.tenant_id }, row.id);
    res.setHeader('Cache-Control', 'no-store');
    res.status(201).json({
      ticket: issued.ticket,
      expires_at: issued.expires_at.toISOString(),
      stream_url: `/v1/instances/${row.id}/logs/stream?ticket=${issued.ticket}`,
    });
  });

  route('get', '/:id/logs/stream', async (req: Request, res: Response) => {
    const query = parseInput(logStreamQuerySchema, req.query, 'query');
    const row = await loadOwned(store, req);
    const options = logOptions(row, query, { follow: true, tail: SSE_DEFAULT_TAIL });
    const signal = requestSignal(res, deps.shutdown);
    const stream = await openLogs(deps, row, options, signal);
    res.status(200);
    res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('X-Accel-Buffering', 'no');
    res.flushHeaders();
    res.write('retry: 3000\n\n');
    const ping = setInterval(() => res.write(': ping\n\n'), deps.ssePingMs);
    try {
      await stream.pipe(
        res,
        (line) => `event: log\ndata: ${JSON.stringify(line)}\n\n`,
        (message) => `event: error\ndata: ${JSON.stringify({ message })}\n\n`,
        'event: end\ndata: {}\n\n',
      );
    } finally {
      clearInterval(ping);
    }
  });
}

function providerOf(deps: InstanceRoutesDeps, row: InstanceRecord): Provider {
  if (!deps.providers.has(row.provider_name)) {
    throw new CtrlplaneError(
      'provider_unavailable',
      `provider ${row.provider_name} of this instance is not available in this API`,
    );
  }
  return deps.providers.get(row.provider_name);
}

function providerError(err: unknown, what: string): Error {
  if (err instanceof CtrlplaneError) return err;
  if (err instanceof PermanentProviderError && err.code === 'invalid_request') {
    return new CtrlplaneError('invalid_request', err.message);
  }
  const detail = err instanceof Error ? err.message : String(err);
  return new RetryableError('provider_unavailable', `${what}: the provider did not answer: ${detail}`, 5);
}

function logOptions(
  row: InstanceRecord,
  query: LogsQuery,
  defaults: { follow: boolean; tail?: number },
): LogOptions {
  if (query.service !== undefined && row.services && !row.services.some((s) => s.name === query.service)) {
    throw new CtrlplaneError('invalid_request', `service: the instance has no service ${query.service}`, [
      { field: 'service', message: `the instance has no service ${query.service}` },
    ]);
  }
  const tail = query.tail ?? defaults.tail;
  return {
    ...(query.service ? { service_name: query.service } : {}),
    follow: query.follow ?? defaults.follow,
    ...(tail ? { tail } : {}),
    ...(query.since ? { since: sinceTime(query.since) } : {}),
  };
}

/** An RFC 3339 time as given, or a duration (`10m`) before now. */
function sinceTime(value: string): string {
  const ago = durationMs(value);
  if (ago !== undefined) return new Date(Date.now() - ago).toISOString();
  const time = new Date(value);
  if (Number.isNaN(time.getTime())) {
    throw new CtrlplaneError('invalid_request', 'since: is not a valid time', [
      { field: 'since', message: 'is not a valid time' },
    ]);
  }
  return time.toISOString();
}

interface LogStream {
  /** Writes every line to `res` (waiting on backpressure) until the logs end or `signal` aborts, then ends it. */
  pipe(
    res: Response,
    line: (l: LogLine) => string,
    failure: (message: string) => string,
    ended?: string,
  ): Promise<void>;
}

/**
 * Opens the provider's log iterable and waits briefly for its first line, so an error the provider raises
 * at once (unknown service, provider down) is still a problem+json answer rather than a broken stream.
 */
async function openLogs(
  deps: InstanceRoutesDeps,
  row: InstanceRecord,
  options: LogOptions,
  signal: AbortSignal,
): Promise<LogStream> {
  const provider = providerOf(deps, row);
  const iterator = provider.logs(row.id, options, { signal })[Symbol.asyncIterator]();
  type First =
    | { kind: 'line'; result: IteratorResult<LogLine> }
    | { kind: 'error'; err: unknown }
    | { kind: 'late' };
  const first: Promise<First> = iterator.next().then(
    (result) => ({ kind: 'line', result }),
    (err) => ({ kind: 'error', err }),
  );
  const early = await Promise.race([
    first,
    pause(options.follow ? FIRST_LINE_GRACE_MS : RESOURCES_TIMEOUT_MS, signal).then(
      (): First => ({ kind: 'late' }),
    ),
  ]);
  if (early.kind === 'error') throw providerError(early.err, 'logs');

  return {
    async pipe(res, format, failure, ended) {
      const write = async (text: string) => {
        if (res.write(text)) return;
        await new Promise<void>((resolve) => {
          const done = () => {
            res.off('drain', done);
            signal.removeEventListener('abort', done);
            resolve();
          };
          res.on('drain', done);
          signal.addEventListener('abort', done, { once: true });
        });
      };
      try {
        let next = early.kind === 'line' ? early.result : undefined;
        if (!next) {
          const settled = await first;
          if (settled.kind === 'error') throw settled.err;
          if (settled.kind === 'line') next = settled.result;
        }
        while (next && !next.done && !signal.aborted) {
          await write(format(next.value));
          next = await iterator.next();
        }
        if (ended && !signal.aborted) await write(ended);
      } catch (err) {
        if (!signal.aborted) {
          deps.logger.warn({ err, instance_id: row.id }, 'log stream failed');
          await write(
            failure(`log stream failed: ${err instanceof Error ? err.message : String(err)}`),
          ).catch(() => {});
        }
      } finally {
        await iterator.return?.().catch(() => {});
        res.end();
      }
    },
  };
}
