/**
 * The flooding tenant, as a process of its own (so its load falls on the API, not on the event loop that times
 * the other tenants' requests): `node --import tsx scripts/chaos/flood.ts <url> <per second> <ms>` with the
 * tenant's token in CHAOS_FLOOD_TOKEN. Prints one JSON line: the answer of each request.
 */
import { performance } from 'node:perf_hooks';

const [url, perSecondArg, msArg] = process.argv.slice(2);
const perSecond = Number(perSecondArg);
const ms = Number(msArg);
const token = process.env.CHAOS_FLOOD_TOKEN ?? '';
const answers: { at: number; ms: number; status?: number; retryAfter?: string; error?: string }[] = [];
const start = performance.now();
const pending: Promise<void>[] = [];
let sent = 0;

async function one(): Promise<void> {
  const at = performance.now() - start;
  try {
    const res = await fetch(`${url}/v1/instances?limit=5`, {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(30_000),
    });
    await res.arrayBuffer();
    const retryAfter = res.headers.get('retry-after') ?? undefined;
    answers.push({
      at,
      ms: performance.now() - start - at,
      status: res.status,
      ...(retryAfter ? { retryAfter } : {}),
    });
  } catch (err) {
    answers.push({ at, ms: performance.now() - start - at, error: (err as Error).name });
  }
}

while (performance.now() - start < ms) {
  const due = Math.floor(((performance.now() - start) / 1000) * perSecond);
  while (sent < due) {
    sent += 1;
    pending.push(one());
  }
  await new Promise((r) => setTimeout(r, 5));
}
await Promise.all(pending);
process.stdout.write(`${JSON.stringify(answers)}\n`);
