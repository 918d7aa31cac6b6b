import { createInterface } from 'node:readline';
import { PassThrough } from 'node:stream';
import { type KubeConfig, type LogOptions as KubeLogOptions, Log } from '@kubernetes/client-node';
import type { LogLine } from '../provider.ts';

const TIMESTAMP = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2}))\s?(.*)$/;

/** A line of `timestamps=true` output: `<RFC 3339 time> <text>`. Kubernetes merges stdout and stderr. */
export function parseLogLine(raw: string): LogLine {
  const line = raw.replace(/\r$/, '');
  const match = TIMESTAMP.exec(line);
  if (match) return { ts: match[1] ?? '', stream: 'stdout', line: match[2] ?? '' };
  return { ts: new Date().toISOString(), stream: 'stdout', line };
}

/**
 * The lines of one container's log (GET …/pods/{pod}/log with timestamps=true), streamed through client-node's
 * Log. Ends when the server ends the response (the container stops, or at once without `follow`), when the
 * connection to the API server breaks or closes, when `signal` aborts (also while the request is still being
 * made), or when the consumer stops iterating.
 */
export async function* streamPodLog(
  kc: KubeConfig,
  target: { namespace: string; pod: string; container: string },
  options: KubeLogOptions,
  signal?: AbortSignal,
): AsyncGenerator<LogLine> {
  signal?.throwIfAborted();
  const sink = new PassThrough();
  // client-node pipes the response body into the sink, and a pipe does not pass on an error: a dropped connection
  // would leave the sink open forever. The body is the stream that pipes into it ('pipe' event).
  let body: NodeJS.ReadableStream | undefined;
  const end = () => {
    body?.unpipe(sink);
    if (!sink.writableEnded) sink.end();
  };
  sink.once('pipe', (source: NodeJS.ReadableStream) => {
    body = source;
    source.on('error', end);
    source.once('close', end);
  });
  // Nothing written after the end reaches the reader; a late write must not become an uncaught error.
  sink.on('error', () => {});
  const controller = await new Log(kc).log(target.namespace, target.pod, target.container, sink, {
    ...options,
    timestamps: true,
  });
  const stop = () => {
    controller.abort();
    end();
  };
  // Aborted while the request was being made: an abort listener added now would never fire.
  if (signal?.aborted) {
    stop();
    return;
  }
  signal?.addEventListener('abort', stop, { once: true });
  const lines = createInterface({ input: sink, crlfDelay: Number.POSITIVE_INFINITY });
  try {
    for await (const raw of lines) {
      if (raw.length === 0) continue;
      yield parseLogLine(raw);
    }
  } finally {
    signal?.removeEventListener('abort', stop);
    lines.close();
    stop();
  }
}
