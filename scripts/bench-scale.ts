/**
 * The scale bench, `npm run bench -- --scale`: what orchestration alone costs, with a provider that does no
 * I/O (scripts/bench-no-io-provider.ts, registered by the bench in its API and its worker process):
 *
 *   1. sustained full lifecycles (create → running → stop → delete, each ?wait) from concurrent clients, and
 *      the latency of each command under that load;
 *   2. many live, idle instance workflows on one worker (a process of its own, scripts/bench-scale-worker.ts,
 *      with a bounded sticky cache): its RSS, and the Temporal history events per second they write idling;
 *   3. listing over many rows across many tenants, each filter and a deep cursor page, through the API and
 *      through the store, against the raw SQL of the same page.
 *
 * Its own Temporal dev server and PostgreSQL database, as scripts/bench.ts. It prints a table, writes JSON
 * under bench-results/ (or --out FILE), asserts no timing, and exits non-zero only on real errors (a command
 * that did not complete). Flags shrink the runs for a busy machine:
 *
 *   --clients 50 --lifecycles-seconds 30 --instances 10000 --idle-seconds 60 --cache 1000
 *   --list-tenants 100 --list-rows 100000 --list-iterations 200 --out FILE
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { InstanceStore } from '../db/instance-store.ts';
import { apiClient, type HttpResponse } from '../test/support/http.ts';
import { type Stack, startStack } from '../test/support/stack.ts';
import { instanceWorkflowId } from '../workflows/messages.ts';
import { NO_IO_PROVIDER, NoIoProvider } from './bench-no-io-provider.ts';
import { REPO_ROOT } from './temporal-cli.ts';
import { startTestEnvironment, type TestEnvironment } from './test-environment.ts';

const { values: flags } = parseArgs({
  args: process.argv.slice(2),
  options: {
    scale: { type: 'boolean' },
    clients: { type: 'string', default: '50' },
    'lifecycles-seconds': { type: 'string', default: '30' },
    instances: { type: 'string', default: '10000' },
    'idle-seconds': { type: 'string', default: '60' },
    cache: { type: 'string', default: '1000' },
    'list-tenants': { type: 'string', default: '100' },
    'list-rows': { type: 'string', default: '100000' },
    'list-iterations': { type: 'string', default: '200' },
    out: { type: 'string' },
  },
});
const count = (name: keyof typeof flags) => {
  const n = Number(flags[name]);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name}: not a whole number: ${flags[name]}`);
  return n;
};
const PLAN = {
  clients: Math.max(1, count('clients')),
  lifecycleSeconds: count('lifecycles-seconds'),
  instances: count('instances'),
  idleSeconds: count('idle-seconds'),
  cache: count('cache'),
  listTenants: Math.max(1, count('list-tenants')),
  listRows: count('list-rows'),
  listIterations: Math.max(1, count('list-iterations')),
};
const started = performance.now();
const interrupted = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => interrupted.abort(new Error(`interrupted by ${signal}`)));
}

// --- figures ---------------------------------------------------------------------------------------------------

interface Latency {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

function latency(ms: number[]): Latency {
  const sorted = [...ms].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length, Math.max(1, Math.ceil(p * sorted.length))) - 1];
  return {
    n: sorted.length,
    p50: at(0.5) ?? Number.NaN,
    p99: at(0.99) ?? Number.NaN,
    max: sorted.at(-1) ?? Number.NaN,
  };
}

const f2 = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : '-');

function table(head: string[], rows: (string | number)[][]): string {
  const cells = [head, ...rows.map((r) => r.map(String))];
  const widths = head.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), '-'.repeat(widths.reduce((a, b) => a + b + 2, -2)), ...cells.slice(1).map(line)].join(
    '\n',
  );
}

function expect(res: HttpResponse, status: number, what: string): void {
  if (res.status !== status) throw new Error(`${what}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
}

type Api = (method: string, path: string, body?: unknown) => Promise<HttpResponse>;

/**
 * The API as a careful user calls it: every command under an Idempotency-Key, sent again with the same key when
 * the answer is 503 (Temporal did not confirm in time) or 429 (rate limited, or the instance is busy), as the
 * answer says. The retries are counted.
 */
const retries = { count: 0 };
function userApi(stack: Stack, token: string): Api {
  const call = apiClient(stack.api.url, token);
  return async (method, path, body) => {
    const key = randomUUID();
    for (let attempt = 0; ; attempt++) {
      const res = await call(method, path, body, method === 'GET' ? {} : { 'Idempotency-Key': key });
      if (![503, 429, 409].includes(res.status) || attempt >= 8) return res;
      if (res.status === 409 && res.body?.code !== 'request_in_progress') return res;
      retries.count++;
      await new Promise((r) => setTimeout(r, 500 * 2 ** Math.min(attempt, 4)));
    }
  };
}

/** Runs `worker(i)` for i in 0..n-1 with at most `concurrency` at once. */
async function pool(n: number, concurrency: number, worker: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, n) }, async () => {
      while (next < n) {
        interrupted.signal.throwIfAborted();
        await worker(next++);
      }
    }),
  );
}

// --- CPU time by process ---------------------------------------------------------------------------------------

/** User + system CPU seconds a process has used (from /proc; clock ticks of 1/100 s). */
function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/** This process's children whose command is `name` (the Temporal dev server the environment started). */
function childPids(name: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid && comm === name) out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

interface CpuMark {
  api_and_clients: number;
  worker: number;
  temporal: number;
}

function cpuMark(worker: BenchWorker): CpuMark {
  const usage = process.cpuUsage();
  return {
    api_and_clients: (usage.user + usage.system) / 1e6,
    worker: cpuSeconds(worker.process.pid ?? -1),
    temporal: childPids('temporal').reduce((sum, pid) => sum + cpuSeconds(pid), 0),
  };
}

function cpuSince(before: CpuMark, after: CpuMark): CpuMark {
  return {
    api_and_clients: after.api_and_clients - before.api_and_clients,
    worker: after.worker - before.worker,
    temporal: after.temporal - before.temporal,
  };
}

// --- the worker process --------------------------------------------------------------------------------------

interface BenchWorker {
  process: ChildProcess;
  /** Resident set size from /proc, in MiB. */
  rssMib(): number;
  stop(): Promise<void>;
}

async function startBenchWorker(stack: Stack): Promise<BenchWorker> {
  const child = spawn(
    `${REPO_ROOT}scripts/node`,
    ['--import', 'tsx', `${REPO_ROOT}scripts/bench-scale-worker.ts`],
    {
      env: {
        ...process.env,
        CTRLPLANE_TASK_QUEUE: stack.config.CTRLPLANE_TASK_QUEUE,
        CTRLPLANE_WORKER_MAX_CACHED_WORKFLOWS: String(PLAN.cache),
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the bench worker exited (${code}) before it was ready`)));
    child.stdout?.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('ready')) resolve();
    });
  });
  return {
    process: child,
    rssMib() {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
      return kb / 1024;
    },
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

// --- 1. lifecycles ---------------------------------------------------------------------------------------------

async function lifecycles(stack: Stack, worker: BenchWorker) {
  const commands = { create: [] as number[], stop: [] as number[], delete: [] as number[] };
  const tokens = await Promise.all(
    Array.from({ length: PLAN.clients }, (_, c) => stack.token(`ten_scale_life_${c}`)),
  );
  let completed = 0;
  let failed = 0;
  const errors: string[] = [];
  const lifecycle = async (api: Api, name: string, timed: boolean) => {
    const t0 = performance.now();
    const created = await api('POST', '/v1/instances?wait=30s', {
      name,
      provider_name: NO_IO_PROVIDER,
      services: [{ name: 'web', image: 'docker.io/ctrlplane-test/none:1' }],
    });
    expect(created, 201, `create ${name}`);
    if (created.body.state !== 'running') {
      // The create's own wait ran out (a loaded machine): wait for running as a user would.
      const waited = await api('GET', `/v1/instances/${created.body.id}/wait?state=running&timeout=60s`);
      expect(waited, 200, `wait for ${name} to run`);
    }
    const t1 = performance.now();
    expect(await api('POST', `/v1/instances/${created.body.id}/stop?wait=30s`), 200, `stop ${name}`);
    const t2 = performance.now();
    expect(await api('DELETE', `/v1/instances/${created.body.id}?wait=30s`), 204, `delete ${name}`);
    const t3 = performance.now();
    if (timed) {
      commands.create.push(t1 - t0);
      commands.stop.push(t2 - t1);
      commands.delete.push(t3 - t2);
    }
  };
  // One untimed lifecycle per client first (connections, JIT, the workflow cache).
  await Promise.all(tokens.map((t, c) => lifecycle(userApi(stack, t), `warm-${c}`, false)));
  const retriesBefore = retries.count;
  const cpuBefore = cpuMark(worker);
  const t0 = performance.now();
  const deadline = t0 + PLAN.lifecycleSeconds * 1000;
  await Promise.all(
    tokens.map(async (token, c) => {
      const api = userApi(stack, token);
      for (let i = 0; performance.now() < deadline; i++) {
        interrupted.signal.throwIfAborted();
        try {
          await lifecycle(api, `life-${c}-${i}`, true);
          completed++;
        } catch (err) {
          failed++;
          if (errors.length < 5) errors.push(err instanceof Error ? err.message : String(err));
        }
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const cpu = cpuSince(cpuBefore, cpuMark(worker));
  const perLifecycleMs = (v: number) => (completed > 0 ? (v * 1000) / completed : Number.NaN);
  return {
    clients: PLAN.clients,
    cpu_seconds: cpu,
    cpu_ms_per_lifecycle: {
      api_and_clients: perLifecycleMs(cpu.api_and_clients),
      worker: perLifecycleMs(cpu.worker),
      temporal: perLifecycleMs(cpu.temporal),
    },
    seconds,
    completed,
    failed,
    errors,
    retried_requests: retries.count - retriesBefore,
    per_second: completed / seconds,
    create: latency(commands.create),
    stop: latency(commands.stop),
    delete: latency(commands.delete),
  };
}

// --- 2. idle instances -----------------------------------------------------------------------------------------

async function idleFleet(stack: Stack, worker: BenchWorker) {
  const rssBefore = worker.rssMib();
  const tenants = Math.max(1, Math.ceil(PLAN.instances / 1000));
  const tokens = await Promise.all(
    Array.from({ length: tenants }, (_, t) => stack.token(`ten_scale_idle_${t}`)),
  );
  const ids: string[] = [];
  const retriesBefore = retries.count;
  const t0 = performance.now();
  await pool(PLAN.instances, PLAN.clients, async (i) => {
    const api = userApi(stack, tokens[i % tenants]!);
    const res = await api('POST', '/v1/instances', {
      name: `idle-${i}`,
      provider_name: NO_IO_PROVIDER,
      services: [{ name: 'web', image: 'docker.io/ctrlplane-test/none:1' }],
    });
    expect(res, 201, `create idle-${i}`);
    ids.push(res.body.id);
  });
  // Every one of them running (the read model says so), then left alone.
  const connection = stack.orm.em.getConnection();
  let running = 0;
  for (;;) {
    interrupted.signal.throwIfAborted();
    const [row] = await connection.execute<{ n: string }[]>(
      `select count(*) as n from instances where tenant_id like 'ten_scale_idle_%' and state = 'running'`,
    );
    running = Number(row?.n ?? 0);
    if (running >= PLAN.instances) break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  const createSeconds = (performance.now() - t0) / 1000;
  const rssRunning = worker.rssMib();
  // History length of a sample of them, before and after the idle window; the fleet's rate extrapolated.
  const sample = ids.filter((_, i) => i % Math.max(1, Math.floor(ids.length / 1000)) === 0).slice(0, 1000);
  const lengths = async () => {
    const out = new Map<string, number>();
    await pool(sample.length, 20, async (i) => {
      const id = sample[i]!;
      const info = await stack.client.workflow.getHandle(instanceWorkflowId(id)).describe();
      out.set(id, info.historyLength);
    });
    return out;
  };
  const before = await lengths();
  const w0 = performance.now();
  const rssSamples: number[] = [];
  while (performance.now() - w0 < PLAN.idleSeconds * 1000) {
    interrupted.signal.throwIfAborted();
    rssSamples.push(worker.rssMib());
    await new Promise((r) => setTimeout(r, 1000));
  }
  const after = await lengths();
  const windowSeconds = (performance.now() - w0) / 1000;
  let events = 0;
  for (const [id, n] of after) events += n - (before.get(id) ?? n);
  const perInstancePerSecond = sample.length > 0 ? events / sample.length / windowSeconds : 0;
  return {
    instances: PLAN.instances,
    running,
    create_seconds: createSeconds,
    retried_requests: retries.count - retriesBefore,
    sticky_cache: PLAN.cache,
    worker_rss_mib: {
      before: rssBefore,
      all_running: rssRunning,
      idle_max: Math.max(rssRunning, ...rssSamples),
    },
    idle_seconds: windowSeconds,
    sampled_workflows: sample.length,
    sampled_history_events: events,
    history_events_per_second_fleet: perInstancePerSecond * PLAN.instances,
  };
}

// --- 3. listing ------------------------------------------------------------------------------------------------

const LIST_STATES = ['running', 'running', 'running', 'stopped', 'stopped', 'failed', 'destroyed'] as const;

/** Rows straight into the read model (no workflows: listing reads only the table). */
async function seedListRows(stack: Stack): Promise<void> {
  const perTenant = Math.ceil(PLAN.listRows / PLAN.listTenants);
  const states = `array[${LIST_STATES.map((s) => `'${s}'`).join(',')}]`;
  await stack.orm.em.getConnection().execute(`
    insert into instances (id, tenant_id, name, slug, provider_name, state, kind, labels, seq, created_at, updated_at)
    select 'inst_list_' || t || '_' || r, 'ten_scale_list_' || t, 'list-' || r, 'list-' || r,
           case when r % 4 = 0 then 'kubernetes' else 'docker' end,
           (${states})[1 + r % ${LIST_STATES.length}], 'deployment',
           jsonb_build_object('env', (array['prod','staging','dev'])[1 + r % 3], 'team', 'team-' || (r % 10)),
           1, now() - make_interval(secs => r * 7 + t), now()
    from generate_series(0, ${PLAN.listTenants - 1}) t, generate_series(0, ${perTenant - 1}) r`);
  await stack.orm.em.getConnection().execute('vacuum analyze instances');
}

interface ListCase {
  label: string;
  query: string;
  /** The same page's SQL, as the store would run it, without the count. */
  sql: string;
  params: (tenant: string) => unknown[];
}

async function listing(stack: Stack) {
  await seedListRows(stack);
  const perTenant = Math.ceil(PLAN.listRows / PLAN.listTenants);
  const tenants = Array.from({ length: PLAN.listTenants }, (_, t) => `ten_scale_list_${t}`);
  const tokens = new Map(await Promise.all(tenants.map(async (t) => [t, await stack.token(t)] as const)));
  const store = new InstanceStore(stack.orm);
  const connection = stack.orm.em.getConnection();
  // The cursor of the page ~90% deep into each tenant's live rows (as the API encodes it).
  const depth = Math.floor(perTenant * 0.9 * (5 / 7));
  const cursors = new Map<string, { cursor: string; created_at: string; id: string }>();
  for (const tenant of tenants) {
    const [row] = await connection.execute<{ id: string; created_at: Date }[]>(
      `select id, created_at from instances where tenant_id = ? and state <> 'destroyed'
       order by created_at desc, id desc offset ${depth} limit 1`,
      [tenant],
    );
    if (!row) continue;
    const createdAt = new Date(row.created_at).toISOString();
    cursors.set(tenant, {
      cursor: Buffer.from(JSON.stringify([createdAt, row.id])).toString('base64url'),
      created_at: createdAt,
      id: row.id,
    });
  }
  const live = `tenant_id = ? and state <> 'destroyed'`;
  const order = 'order by created_at desc, id desc limit 51';
  const cases: ListCase[] = [
    {
      label: 'no filter',
      query: '',
      sql: `select * from instances where ${live} ${order}`,
      params: (t) => [t],
    },
    {
      label: 'state=stopped',
      query: 'state=stopped',
      sql: `select * from instances where tenant_id = ? and state = 'stopped' ${order}`,
      params: (t) => [t],
    },
    {
      label: 'label=env=prod',
      query: 'label=env%3Dprod',
      sql: `select * from instances where ${live} and labels @> '{"env":"prod"}'::jsonb ${order}`,
      params: (t) => [t],
    },
    {
      label: 'provider=kubernetes',
      query: 'provider=kubernetes',
      sql: `select * from instances where ${live} and provider_name = 'kubernetes' ${order}`,
      params: (t) => [t],
    },
    {
      label: 'slug=list-42',
      query: 'slug=list-42',
      sql: `select * from instances where ${live} and slug = 'list-42' ${order}`,
      params: (t) => [t],
    },
    {
      label: `deep cursor (row ${depth})`,
      query: 'cursor=CURSOR',
      sql: `select * from instances where ${live} and (created_at, id) < (?::timestamptz, ?) ${order}`,
      params: (t) => [t, cursors.get(t)?.created_at, cursors.get(t)?.id],
    },
  ];
  const results = [];
  for (const c of cases) {
    const http: number[] = [];
    const direct: number[] = [];
    const raw: number[] = [];
    for (let i = -5; i < PLAN.listIterations; i++) {
      interrupted.signal.throwIfAborted();
      const tenant = tenants[((i % tenants.length) + tenants.length) % tenants.length]!;
      const cursor = cursors.get(tenant)?.cursor ?? '';
      const query = c.query.replace('CURSOR', cursor);
      const api = apiClient(stack.api.url, tokens.get(tenant));
      const t0 = performance.now();
      const res = await api('GET', `/v1/instances?limit=50${query ? `&${query}` : ''}`);
      const t1 = performance.now();
      expect(res, 200, `list ${c.label}`);
      const params = Object.fromEntries(new URLSearchParams(query));
      const t2 = performance.now();
      await store.list(tenant, { ...params, limit: 50 } as Parameters<InstanceStore['list']>[1]);
      const t3 = performance.now();
      await connection.execute(c.sql, c.params(tenant));
      const t4 = performance.now();
      if (i >= 0) {
        http.push(t1 - t0);
        direct.push(t3 - t2);
        raw.push(t4 - t3);
      }
    }
    results.push({ filter: c.label, api: latency(http), store: latency(direct), raw_sql: latency(raw) });
  }
  return {
    rows: PLAN.listRows,
    tenants: PLAN.listTenants,
    rows_per_tenant: perTenant,
    page: 50,
    cases: results,
  };
}

// --- main ------------------------------------------------------------------------------------------------------

let environment: TestEnvironment | undefined;
let stack: Stack | undefined;
let worker: BenchWorker | undefined;
let failed = false;
try {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  console.log(
    'bench --scale: starting the Temporal dev server, a PostgreSQL database, the API and a worker process',
  );
  environment = await startTestEnvironment();
  Object.assign(process.env, environment.env, { LOG_LEVEL: 'warn', CTRLPLANE_RATE_LIMIT_PER_MINUTE: '0' });
  stack = await startStack({ worker: false });
  stack.providers.register(NO_IO_PROVIDER, new NoIoProvider());
  worker = await startBenchWorker(stack);
  const s = stack;
  const w = worker;
  const loadBefore = os.loadavg();

  process.stdout.write(
    `bench --scale: ${PLAN.clients} clients, full lifecycles for ${PLAN.lifecycleSeconds}s …`,
  );
  const life = await lifecycles(s, w);
  process.stdout.write(` ${life.completed} done\n`);
  process.stdout.write(`bench --scale: ${PLAN.instances} idle instances, ${PLAN.idleSeconds}s idle …`);
  const idle = PLAN.instances > 0 ? await idleFleet(s, w) : undefined;
  process.stdout.write(` ${idle?.running ?? 0} running\n`);
  const loadAfterIdle = os.loadavg();
  process.stdout.write(`bench --scale: listing ${PLAN.listRows} rows over ${PLAN.listTenants} tenants …`);
  const list = PLAN.listRows > 0 ? await listing(s) : undefined;
  process.stdout.write(' done\n');

  const cpus = os.cpus();
  const machine = `${cpus.length} CPUs (${cpus[0]?.model.trim() ?? 'unknown'}), ${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB, ${os.platform()} ${os.release()}; node ${process.version}`;
  const load = { before: loadBefore, after_idle: loadAfterIdle, end: os.loadavg() };
  console.log('');
  console.log(`machine: ${machine}`);
  console.log(
    `load average (1/5/15 min): before ${load.before.map((l) => l.toFixed(2)).join(' ')}, end ${load.end.map((l) => l.toFixed(2)).join(' ')}`,
  );
  console.log('');
  console.log(
    `lifecycles: ${life.completed} completed, ${life.failed} failed in ${life.seconds.toFixed(1)}s with ${life.clients} clients: ${life.per_second.toFixed(1)}/s (${life.retried_requests} requests sent again after a 503/429)`,
  );
  console.log(
    table(
      ['command under load', 'n', 'p50 ms', 'p99 ms', 'max ms'],
      (['create', 'stop', 'delete'] as const).map((k) => [
        k,
        life[k].n,
        f2(life[k].p50),
        f2(life[k].p99),
        f2(life[k].max),
      ]),
    ),
  );
  const cpuMs = life.cpu_ms_per_lifecycle;
  console.log(
    `  CPU per lifecycle: API and clients ${f2(cpuMs.api_and_clients)} ms, worker ${f2(cpuMs.worker)} ms, ` +
      `Temporal dev server ${f2(cpuMs.temporal)} ms (PostgreSQL not counted)`,
  );
  for (const e of life.errors) console.log(`  error: ${e}`);
  console.log('');
  if (idle) {
    console.log(
      `idle fleet: ${idle.running}/${idle.instances} running (created in ${idle.create_seconds.toFixed(0)}s, ${idle.retried_requests} requests sent again), sticky cache ${idle.sticky_cache}; ` +
        `worker RSS ${idle.worker_rss_mib.before.toFixed(0)} MiB before, ${idle.worker_rss_mib.all_running.toFixed(0)} MiB all running, ` +
        `${idle.worker_rss_mib.idle_max.toFixed(0)} MiB max while idle`,
    );
    console.log(
      `  history events while idle: ${idle.sampled_history_events} in ${idle.idle_seconds.toFixed(0)}s over ${idle.sampled_workflows} sampled workflows → ` +
        `${idle.history_events_per_second_fleet.toFixed(1)} events/s for the fleet`,
    );
  }
  if (list) {
    console.log('');
    console.log(
      `listing: ${list.rows} rows, ${list.tenants} tenants of ${list.rows_per_tenant}, pages of ${list.page}`,
    );
    console.log(
      table(
        ['filter', 'api p50', 'api p99', 'store p50', 'store p99', 'raw p50', 'raw p99', 'store/raw p99'],
        list.cases.map((c) => [
          c.filter,
          f2(c.api.p50),
          f2(c.api.p99),
          f2(c.store.p50),
          f2(c.store.p99),
          f2(c.raw_sql.p50),
          f2(c.raw_sql.p99),
          (c.store.p99 / c.raw_sql.p99).toFixed(2),
        ]),
      ),
    );
  }
  const result = { at: new Date().toISOString(), machine, load, plan: PLAN, lifecycles: life, idle, list };
  const out = flags.out ?? `${REPO_ROOT}bench-results/scale-${result.at.replace(/[:.]/g, '-')}.json`;
  mkdirSync(out.slice(0, out.lastIndexOf('/')) || '.', { recursive: true });
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  console.log('');
  console.log(`bench --scale: figures written to ${out}`);
  if (life.failed > 0 || (idle && idle.running < idle.instances)) failed = true;
} catch (err) {
  failed = true;
  console.error(`\nbench --scale failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
} finally {
  process.stdout.write('bench --scale: cleaning up …');
  for (const step of [
    async () => worker?.stop(),
    async () => stack?.close(),
    async () => environment?.teardown(),
    async () => {
      const bundle = environment?.env.CTRLPLANE_WORKFLOW_BUNDLE;
      if (bundle) rmSync(bundle, { force: true });
    },
  ]) {
    try {
      await step();
    } catch (err) {
      failed = true;
      console.error(`\nbench --scale: clean-up: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  process.stdout.write(` done; total ${((performance.now() - started) / 1000).toFixed(1)}s\n`);
}
if (failed) process.exitCode = 1;
