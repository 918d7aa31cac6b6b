import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { docker, httpdService } from './docker.ts';
import type { apiClient, HttpResponse } from './http.ts';

type Api = ReturnType<typeof apiClient>;

/**
 * Many small instances at once through the API (test/docker-fleet.test.ts, scripts/fleet-demo.ts): created
 * concurrently, each reached on its published endpoint (on 127.0.0.1 only), then all deleted, checking that
 * nothing of them is left on the engine.
 */

/** What one fleet instance runs: busybox httpd answering its own name, with a named volume. */
export function fleetService(name: string) {
  return { ...httpdService(name), volumes: [{ name: 'data', mount_path: '/data' }] };
}

const POLL_MS = 500;
const MAX_ATTEMPTS = 6;

/**
 * Sends a request as a careful client does: with an Idempotency-Key, and again after Retry-After while it is
 * answered 503 because a service is busy (a Temporal dev server on two cores under hundreds of commands at
 * once may not confirm one within the accept timeout). A full host (capacity_exhausted) is not retried.
 */
async function sendRetrying(
  api: Api,
  method: string,
  path: string,
  body: unknown,
  retries: { count: number },
): Promise<HttpResponse> {
  const key = { 'idempotency-key': `fleet-${randomUUID()}` };
  for (let attempt = 1; ; attempt++) {
    const res = await api(method, path, body, key);
    if (res.status !== 503 || res.body?.code === 'capacity_exhausted' || attempt >= MAX_ATTEMPTS) return res;
    retries.count++;
    await new Promise((r) => setTimeout(r, Number(res.headers.get('retry-after') ?? 1) * 1000));
  }
}

async function until(
  what: string,
  timeoutMs: number,
  check: () => Promise<boolean>,
  signal?: AbortSignal,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    signal?.throwIfAborted();
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

async function countIn(api: Api, state: string): Promise<number> {
  const res = await api('GET', `/v1/instances?state=${state}&limit=1`);
  if (res.status !== 200) throw new Error(`list ${state}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.total as number;
}

/** Runs `fn` over `items`, at most `limit` at a time. */
async function eachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

export interface FleetCreated {
  ids: string[];
  /** Requests sent again after a 503 (the same Idempotency-Key). */
  retries: number;
  /** From the first request to the last 201. */
  acceptedMs: number;
  /** From the first request until every instance is running. */
  runningMs: number;
}

/** Sends `count` creates at once and waits until all are running; any refused create or failed instance throws. */
export async function createFleet(
  api: Api,
  count: number,
  prefix: string,
  options: { timeoutMs: number; signal?: AbortSignal },
): Promise<FleetCreated> {
  const t0 = performance.now();
  let acceptedAt = 0;
  const ids: string[] = [];
  const retries = { count: 0 };
  const answers = await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const name = `${prefix}-${i}`;
      const res = await sendRetrying(
        api,
        'POST',
        '/v1/instances',
        { name, services: [fleetService(name)] },
        retries,
      );
      acceptedAt = Math.max(acceptedAt, performance.now());
      if (res.status === 201) ids.push(res.body.id);
      return res;
    }),
  );
  const refused = answers.filter((r) => r.status !== 201);
  if (refused.length > 0) {
    const first = refused[0];
    throw new Error(
      `${refused.length} of ${count} creates refused; first: ${first?.status} ${JSON.stringify(first?.body)}`,
    );
  }
  await until(
    `${count} instances running`,
    options.timeoutMs,
    async () => {
      const failed = await countIn(api, 'failed');
      if (failed > 0) {
        const list = await api('GET', '/v1/instances?state=failed&limit=1');
        throw new Error(`${failed} instances failed; one: ${JSON.stringify(list.body.items[0]?.error)}`);
      }
      return (await countIn(api, 'running')) === count;
    },
    options.signal,
  );
  return { ids, retries: retries.count, acceptedMs: acceptedAt - t0, runningMs: performance.now() - t0 };
}

/**
 * Fetches each instance's public endpoint on the loopback address (the endpoint says `localhost:<port>`; the
 * request goes to 127.0.0.1:<port>) and checks it answers with the instance's own name. Returns the time taken.
 */
export async function reachFleet(api: Api, ids: string[]): Promise<number> {
  const t0 = performance.now();
  const problems: string[] = [];
  await eachLimited(ids, 16, async (id) => {
    const res = await api('GET', `/v1/instances/${id}`);
    const endpoint = (res.body.endpoints ?? []).find((e: { public: boolean }) => e.public);
    if (!endpoint) {
      problems.push(`${id}: no public endpoint`);
      return;
    }
    const port = Number(new URL(endpoint.url).port);
    const answer = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(10_000) }).then(
      (r) => r.text(),
      (err: unknown) => `error: ${String(err)}`,
    );
    if (answer.trim() !== res.body.name)
      problems.push(`${id} on 127.0.0.1:${port} answered ${answer.trim()}`);
  });
  if (problems.length > 0) {
    throw new Error(`${problems.length} instances not reachable: ${problems.slice(0, 5).join('; ')}`);
  }
  return performance.now() - t0;
}

/** Deletes all at once and waits until every one is destroyed. Returns the time taken and the retries. */
export async function deleteFleet(
  api: Api,
  ids: string[],
  options: { timeoutMs: number; signal?: AbortSignal },
): Promise<{ ms: number; retries: number }> {
  const t0 = performance.now();
  const retries = { count: 0 };
  const answers = await Promise.all(
    ids.map((id) => sendRetrying(api, 'DELETE', `/v1/instances/${id}`, undefined, retries)),
  );
  const refused = answers.filter((r) => r.status !== 202);
  if (refused.length > 0) {
    throw new Error(`${refused.length} deletes refused; first: ${JSON.stringify(refused[0]?.body)}`);
  }
  await until(
    `${ids.length} instances destroyed`,
    options.timeoutMs,
    async () => (await countIn(api, 'destroyed')) === ids.length,
    options.signal,
  );
  return { ms: performance.now() - t0, retries: retries.count };
}

/** The tenant's containers, networks and volumes still on the engine (by the tenant label). */
export async function tenantLeftovers(
  tenantId: string,
): Promise<{ containers: number; networks: number; volumes: number }> {
  const filters = { label: [`ctrlplane.tenant=${tenantId}`] };
  const [containers, networks, volumes] = await Promise.all([
    docker.listContainers({ all: true, filters }),
    docker.listNetworks({ filters }),
    docker.listVolumes({ filters }),
  ]);
  return { containers: containers.length, networks: networks.length, volumes: volumes.Volumes?.length ?? 0 };
}

/** Removes what a failed fleet run left of the tenant on the engine. */
export async function removeTenantObjects(tenantId: string): Promise<void> {
  const filters = { label: [`ctrlplane.tenant=${tenantId}`] };
  for (const c of await docker.listContainers({ all: true, filters })) {
    await docker
      .getContainer(c.Id)
      .remove({ force: true, v: true })
      .catch(() => {});
  }
  for (const n of await docker.listNetworks({ filters })) {
    await docker
      .getNetwork(n.Id)
      .remove()
      .catch(() => {});
  }
  for (const v of (await docker.listVolumes({ filters })).Volumes ?? []) {
    await docker
      .getVolume(v.Name)
      .remove()
      .catch(() => {});
  }
}
