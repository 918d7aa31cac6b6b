/**
 * `npm run fleet -- --instances 300`: many small instances on this machine's one Docker host at once.
 *
 * Starts a Temporal dev server and a fresh PostgreSQL database (as `npm test` does), then the API and one
 * worker as separate processes (api/main.ts, worker/main.ts, the default network pool), and through the API:
 * sends all creates at once, waits until every instance is running, fetches each one's published endpoint on
 * 127.0.0.1, sends all deletes at once, waits until every one is destroyed and checks that no container,
 * network or volume of the run's tenant is left. Prints the times, and the resident memory of the engine
 * (dockerd, containerd, and the per-container shims and port proxies), the API and the worker.
 *
 * It loads the machine: on a shared machine run it under the suite lock,
 *   flock /tmp/ctrlplane-suite.lock npm run fleet -- --instances 300
 * The 40-instance version runs in `npm test` (test/docker-fleet.test.ts).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { createWriteStream, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { issueToken } from '../api/dev-token.ts';
import { OPERATOR_ROLE } from '../api/roles.ts';
import { docker } from '../test/support/docker.ts';
import {
  createFleet,
  deleteFleet,
  reachFleet,
  removeTenantObjects,
  tenantLeftovers,
} from '../test/support/fleet.ts';
import { apiClient } from '../test/support/http.ts';
import { freePort } from './free-port.ts';
import { REPO_ROOT } from './temporal-cli.ts';
import { startTestEnvironment, type TestEnvironment } from './test-environment.ts';

const { values } = parseArgs({
  options: {
    instances: { type: 'string', default: '300' },
    'timeout-s': { type: 'string', default: '1200' },
  },
});
const count = Number(values.instances);
const timeoutMs = Number(values['timeout-s']) * 1000;
if (!Number.isInteger(count) || count < 1) throw new Error('--instances must be a positive integer');

const runId = randomUUID().slice(0, 8);
const tenant = `ten_fleet_demo_${runId}`;
const interrupted = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => interrupted.abort(new Error(`interrupted by ${signal}`)));
}

// --- memory ------------------------------------------------------------------------------------------------------

/** Resident memory of a process in MiB (VmRSS), 0 when it is gone. */
function rssMiB(pid: number): number {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** Processes by their name (`/proc/<pid>/comm`, cut at 15 characters by the kernel). */
function pidsNamed(name: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === name) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** Open file descriptors of the processes named `name`. */
function fdsOf(name: string): number {
  return pidsNamed(name).reduce((n, pid) => {
    try {
      return n + readdirSync(`/proc/${pid}/fd`).length;
    } catch {
      return n;
    }
  }, 0);
}

/** Threads on the whole machine (the kernel's pid_max bounds them): the total of /proc/loadavg's 4th field. */
function machineThreads(): number {
  return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[3]?.split('/')[1] ?? 0);
}

interface MemorySample {
  dockerdFds: number;
  containerdFds: number;
  threads: number;
  dockerd: number;
  containerd: number;
  shims: number;
  shimCount: number;
  proxies: number;
  proxyCount: number;
  api: number;
  worker: number;
}

function sampleMemory(apiPid: number, workerPid: number): MemorySample {
  const sum = (name: string) => {
    const pids = pidsNamed(name);
    return { mib: pids.reduce((n, pid) => n + rssMiB(pid), 0), count: pids.length };
  };
  const shims = sum('containerd-shim');
  const proxies = sum('docker-proxy');
  return {
    dockerdFds: fdsOf('dockerd'),
    containerdFds: fdsOf('containerd'),
    threads: machineThreads(),
    dockerd: sum('dockerd').mib,
    containerd: sum('containerd').mib,
    shims: shims.mib,
    shimCount: shims.count,
    proxies: proxies.mib,
    proxyCount: proxies.count,
    api: rssMiB(apiPid),
    worker: rssMiB(workerPid),
  };
}

function peakOf(samples: MemorySample[]): MemorySample {
  const keys = Object.keys(samples[0] ?? {}) as (keyof MemorySample)[];
  return Object.fromEntries(
    keys.map((k) => [k, Math.max(...samples.map((s) => s[k]))]),
  ) as unknown as MemorySample;
}

// --- processes ---------------------------------------------------------------------------------------------------

/** Starts `node --import tsx <entry>`, its output appended to .data/logs/fleet-<name>.log. */
function startProcess(name: string, entry: string, env: Record<string, string>): ChildProcess {
  const log = createWriteStream(`${REPO_ROOT}.data/logs/fleet-${name}.log`, { flags: 'a' });
  const child = spawn(process.execPath, ['--import', 'tsx', entry], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  return child;
}

function waitForLine(child: ChildProcess, pattern: RegExp, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${pattern} within ${timeoutMs / 1000}s`)), timeoutMs);
    child.stdout?.on('data', (chunk: Buffer) => {
      if (pattern.test(chunk.toString('utf8'))) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`exited with ${code} before printing ${pattern}`)));
  });
}

async function stopProcess(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

// --- main --------------------------------------------------------------------------------------------------------

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const mib = (n: number) => `${n.toFixed(0)} MiB`;

let environment: TestEnvironment | undefined;
let apiProcess: ChildProcess | undefined;
let workerProcess: ChildProcess | undefined;
let failed = false;
const started = performance.now();

try {
  console.log(
    `fleet: ${count} instances; starting the Temporal dev server, a database, the API and a worker`,
  );
  environment = await startTestEnvironment();
  const jwtSecret = `fleet-${randomUUID()}`;
  const port = await freePort();
  const env: Record<string, string> = {
    ...environment.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    CTRLPLANE_JWT_SECRET: jwtSecret,
    CTRLPLANE_TASK_QUEUE: `fleet-${runId}`,
    CTRLPLANE_BILLING_SCHEDULE_ID: `fleet-billing-${runId}`,
    // One tenant sends all the creates and deletes and polls: the per-tenant limit would pace the demo.
    CTRLPLANE_RATE_LIMIT_PER_MINUTE: '0',
    CTRLPLANE_DOCKER_STOP_TIMEOUT: '2',
    // The imported test image runs for the demo's tenant; the worker signs spec hashes with a key of the run.
    CTRLPLANE_DOCKER_ALLOWED_IMAGES: 'docker.io/ctrlplane-test/*',
    CTRLPLANE_SPEC_HASH_KEY: randomBytes(32).toString('hex'),
    LOG_LEVEL: 'info',
  };
  workerProcess = startProcess('worker', 'worker/main.ts', env);
  apiProcess = startProcess('api', 'api/main.ts', env);
  await Promise.all([
    waitForLine(workerProcess, /worker polling/, 120_000),
    waitForLine(apiProcess, /api listening/, 120_000),
  ]);
  const apiPid = apiProcess.pid ?? 0;
  const workerPid = workerProcess.pid ?? 0;
  const api = apiClient(
    `http://127.0.0.1:${port}`,
    await issueToken(jwtSecret, { sub: 'fleet-demo', tenant_id: tenant, roles: [] }),
  );
  // Host capacity is the operator's (GET /v1/admin/capacity), not the public /readyz.
  const operator = apiClient(
    `http://127.0.0.1:${port}`,
    await issueToken(jwtSecret, { sub: 'fleet-demo-operator', tenant_id: tenant, roles: [OPERATOR_ROLE] }),
  );
  const ready = await api('GET', '/readyz');
  if (ready.status !== 200) throw new Error(`API not ready: ${JSON.stringify(ready.body)}`);
  const capacity = await operator('GET', '/v1/admin/capacity');
  console.log(`fleet: host capacity before: ${JSON.stringify(capacity.body.capacity.docker)}`);

  const before = sampleMemory(apiPid, workerPid);
  const samples: MemorySample[] = [before];
  const sampler = setInterval(() => samples.push(sampleMemory(apiPid, workerPid)), 2_000);

  console.log(`fleet: creating ${count} instances at once`);
  const fleet = await createFleet(api, count, `fleet-${runId}`, { timeoutMs, signal: interrupted.signal });
  const atFull = sampleMemory(apiPid, workerPid);
  samples.push(atFull);
  console.log(`fleet: all ${count} running after ${seconds(fleet.runningMs)}`);
  const full = await operator('GET', '/v1/admin/capacity');
  console.log(`fleet: host capacity with all running: ${JSON.stringify(full.body.capacity.docker)}`);

  const reachMs = await reachFleet(api, fleet.ids);
  console.log(`fleet: all ${count} answered on 127.0.0.1 in ${seconds(reachMs)}`);

  console.log(`fleet: deleting ${count} instances at once`);
  const deleted = await deleteFleet(api, fleet.ids, { timeoutMs, signal: interrupted.signal });
  clearInterval(sampler);
  const leftovers = await tenantLeftovers(tenant);
  const peak = peakOf(samples);
  const dockerVersion = await docker.version();
  const cpus = os.cpus();
  const clean = leftovers.containers + leftovers.networks + leftovers.volumes === 0;

  const rows: [string, string][] = [
    ['instances', String(count)],
    ['all creates answered 201', seconds(fleet.acceptedMs)],
    ['create all until all running', seconds(fleet.runningMs)],
    ['fetch every endpoint on 127.0.0.1', seconds(reachMs)],
    ['delete all until all destroyed', seconds(deleted.ms)],
    ['requests sent again after a 503 (creates, deletes)', `${fleet.retries}, ${deleted.retries}`],
    [
      'left on the engine',
      `${leftovers.containers} containers, ${leftovers.networks} networks, ${leftovers.volumes} volumes`,
    ],
    ['dockerd + containerd RSS before', mib(before.dockerd + before.containerd)],
    ['dockerd + containerd RSS, all running', mib(atFull.dockerd + atFull.containerd)],
    ['dockerd + containerd RSS, peak', mib(peak.dockerd + peak.containerd)],
    [
      'containerd shims, all running (whole engine)',
      `${atFull.shimCount} processes, ${mib(atFull.shims)} (before: ${before.shimCount}, ${mib(before.shims)})`,
    ],
    [
      'docker-proxy, all running (whole engine)',
      `${atFull.proxyCount} processes, ${mib(atFull.proxies)} (before: ${before.proxyCount}, ${mib(before.proxies)})`,
    ],
    [
      'open files dockerd / containerd, before → all running',
      `${before.dockerdFds} / ${before.containerdFds} → ${atFull.dockerdFds} / ${atFull.containerdFds}`,
    ],
    ['threads on the machine, before → all running', `${before.threads} → ${atFull.threads}`],
    ['API RSS before / all running / peak', `${mib(before.api)} / ${mib(atFull.api)} / ${mib(peak.api)}`],
    [
      'worker RSS before / all running / peak',
      `${mib(before.worker)} / ${mib(atFull.worker)} / ${mib(peak.worker)}`,
    ],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  console.log('');
  console.log(
    `machine: ${cpus.length} CPUs, ${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB, ${os.platform()} ${os.release()}; ` +
      `node ${process.version}; docker engine ${dockerVersion.Version}`,
  );
  for (const [k, v] of rows) console.log(`  ${k.padEnd(width)}  ${v}`);
  console.log('');
  if (!clean) throw new Error(`left behind: ${JSON.stringify(leftovers)}`);
} catch (err) {
  failed = true;
  console.error(`fleet failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
} finally {
  process.stdout.write('fleet: cleaning up …');
  const steps: [string, () => Promise<unknown>][] = [
    ['stop the API', () => stopProcess(apiProcess)],
    ['stop the worker', () => stopProcess(workerProcess)],
    ['remove what is left of the tenant', () => removeTenantObjects(tenant)],
    ['stop Temporal and drop the database', async () => environment?.teardown()],
    [
      'remove the workflow bundle',
      async () => {
        const bundle = environment?.env.CTRLPLANE_WORKFLOW_BUNDLE;
        if (bundle) rmSync(bundle, { force: true });
      },
    ],
  ];
  for (const [what, step] of steps) {
    try {
      await step();
    } catch (err) {
      failed = true;
      console.error(`\nfleet: could not ${what}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  process.stdout.write(` done; total ${seconds(performance.now() - started)}\n`);
}
process.exit(failed ? 1 : 0);
