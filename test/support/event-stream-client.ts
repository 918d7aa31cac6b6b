/** A client of GET /v1/events that reads NDJSON or SSE the way an integrator would. */

export interface StreamedEvent {
  id: string;
  type: string;
  tenant_id: string;
  instance_id: string;
  seq: number;
  occurred_at: string;
  payload: Record<string, unknown> | null;
}

/** Reads a whole (non-following) NDJSON answer. */
export async function readNdjson(
  baseUrl: string,
  token: string,
  query: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; contentType: string; events: StreamedEvent[]; body: string }> {
  const res = await fetch(`${baseUrl}/v1/events${query}`, {
    headers: { authorization: `Bearer ${token}`, ...headers },
  });
  const body = await res.text();
  const ok = res.status === 200;
  return {
    status: res.status,
    contentType: res.headers.get('content-type') ?? '',
    events: ok
      ? body
          .split('\n')
          .filter((l) => l !== '')
          .map((l) => JSON.parse(l) as StreamedEvent)
      : [],
    body,
  };
}

export interface SseEvent {
  id?: string;
  data: StreamedEvent;
}

/** An open SSE stream: `take(n)` resolves once n more events came; `ended` once the server closed it. */
export function openSse(baseUrl: string, token: string, query: string, headers: Record<string, string> = {}) {
  const abort = new AbortController();
  const received: SseEvent[] = [];
  const waiters: { count: number; resolve: () => void }[] = [];
  let status = 0;
  const started = fetch(`${baseUrl}/v1/events${query}`, {
    headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream', ...headers },
    signal: abort.signal,
  });
  const ended = (async () => {
    const res = await started;
    status = res.status;
    if (!res.body) return;
    const decoder = new TextDecoder();
    let pending = '';
    for await (const chunk of res.body) {
      pending += decoder.decode(chunk, { stream: true });
      let end = pending.indexOf('\n\n');
      while (end >= 0) {
        const block = pending.slice(0, end);
        pending = pending.slice(end + 2);
        const fields = new Map<string, string>();
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) continue;
          const colon = line.indexOf(':');
          if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1).trimStart());
        }
        const data = fields.get('data');
        if (data !== undefined) {
          received.push({ ...(fields.has('id') ? { id: fields.get('id') } : {}), data: JSON.parse(data) });
          for (const w of [...waiters]) {
            if (received.length >= w.count) {
              waiters.splice(waiters.indexOf(w), 1);
              w.resolve();
            }
          }
        }
        end = pending.indexOf('\n\n');
      }
    }
  })();
  return {
    received,
    get status() {
      return status;
    },
    /** Resolves when `count` events in all have arrived. */
    until(count: number): Promise<SseEvent[]> {
      if (received.length >= count) return Promise.resolve(received.slice(0, count));
      return new Promise((resolve, reject) => {
        waiters.push({ count, resolve: () => resolve(received.slice(0, count)) });
        ended.then(
          () => reject(new Error(`the stream ended after ${received.length} of ${count} events`)),
          reject,
        );
      });
    },
    ended,
    close() {
      abort.abort();
      return ended.catch(() => {});
    },
  };
}
