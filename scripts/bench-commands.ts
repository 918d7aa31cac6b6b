/**
 * Benchmarks: what the whole stack adds to what Temporal and the provider cost.
 *
 *   A. a lifecycle command through the whole stack (HTTP → API → Temporal update → workflow → activity → Docker)
 *      against a bare Temporal update round trip (a tiny workflow of scripts/bench-workflow.ts, its own queue);
 *   B. a provision through the whole stack against the raw dockerode calls it makes, with
 *      DockerProvider.provision alone as the middle figure.
 *
 * One process, one real Temporal dev server, a fresh PostgreSQL database and the Docker engine (as
 * scripts/record-histories.ts). It prints figures and ratios; it asserts no timing and exits non-zero only on
 * real errors. Everything it creates on the engine is removed (by instance id, or by its own bench label).
 *
 *   scripts/node --import tsx scripts/bench.ts      (after `npm run setup`; scripts/bench.ts dispatches here)
 */
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { newInstanceId } from '../domain/ids.ts';
import type { ServiceSpec } from '../domain/instance.ts';
import { buildContainerConfig } from '../providers/docker/container-config.ts';
import { dockerClient } from '../providers/docker/docker-client.ts';
import { DEFAULT_HOST_LIMITS } from '../providers/docker/host-limits.ts';
import { ephemeralSpecHashKey } from '../providers/docker/spec-hash.ts';
import { httpdService, removeInstances } from '../test/support/docker.ts';
import { apiClient, type HttpResponse } from '../test/support/http.ts';
import { type Stack, startStack } from '../test/support/stack.ts';
import { ERRORS_ONLY_LOGGER } from '../worker/workflow-bundle.ts';
import {
  type Figures,
  figures,
  figuresTable,
  type MemoryMark,
  measure,
  memoryMark,
  memoryTable,
  type Ratio,
  ratioTable,
  type Sample,
} from './bench-stats.ts';
import type { benchEchoWorkflow } from './bench-workflow.ts';
import { finishSignal, pingUpdate } from './bench-workflow.ts';
import { startTestEnvironment, type TestEnvironment } from './test-environment.ts';

/** Timed iterations and untimed warm-ups per measurement: modest, so the run takes a few minutes on 2 cores. */
const PLAN = {
  updates: { warmup: 10, iterations: 50 },
  patches: { warmup: 3, iterations: 30 },
  stopStart: { warmup: 3, iterations: 20 },
  raw: { warmup: 2, iterations: 10 },
  provider: { warmup: 2, iterations: 10 },
  provisions: { warmup: 2, iterations: 10 },
} as const;

const BENCH_LABEL = 'ctrlplane.bench';
const runId = randomUUID().slice(0, 8);
const started = performance.now();

// Ctrl-C / SIGTERM ends the current iteration and goes through the clean-up below instead of leaving things.
const interrupted = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => interrupted.abort(new Error(`interrupted by ${signal}`)));
}

const memory: { phase: string; before: MemoryMark; after: MemoryMark }[] = [];
async function phase<T>(name: string, fn: () => Promise<T>): Promise<T> {
  interrupted.signal.throwIfAborted();
  const before = memoryMark(name);
  const t0 = performance.now();
  process.stdout.write(`bench: ${name} …`);
  try {
    return await fn();
  } finally {
    memory.push({ phase: name, before, after: memoryMark(name) });
    process.stdout.write(` ${((performance.now() - t0) / 1000).toFixed(1)}s\n`);
  }
}

function expectStatus(res: HttpResponse, status: number, what: string): void {
  if (res.status !== status) {
    throw new Error(`${what}: expected HTTP ${status}, got ${res.status} ${JSON.stringify(res.body)}`);
  }
}

function expectState(res: HttpResponse, state: string, what: string): void {
  if (res.body?.state !== state) {
    throw new Error(`${what}: expected state ${state}, got ${JSON.stringify(res.body?.state)}`);
  }
}

/** The service spec the API stores for httpdService (with the schema's default resources). */
function benchService(content: string): ServiceSpec {
  return { ...httpdService(content), resources: { cpu_millis: 0, memory_mb: 0, replicas: 1 } };
}

/**
 * Temporal's Rust core logs through this Runtime; installed before the dev server starts (which would install a
 * default one at INFO), at WARN, without the expected warning about the bench worker having no activities.
 */
/**
 * The raw dockerode calls of a single-service provision, with the provider's container config: a bridge network
 * `<name>-net` and a started container `<name>-web`, labelled for the leftover sweep.
 */
async function startRawContainer(docker: ReturnType<typeof dockerClient>, name: string) {
  const labels = { [BENCH_LABEL]: runId };
  const plan = buildContainerConfig({
    instanceId: name,
    service: benchService('raw'),
    containerName: `${name}-web`,
    networkName: `${name}-net`,
    labels,
    limits: DEFAULT_HOST_LIMITS,
    specHashKey: ephemeralSpecHashKey(),
  });
  await docker.createNetwork({ Name: `${name}-net`, Driver: 'bridge', CheckDuplicate: true, Labels: labels });
  const container = await docker.createContainer(plan.config);
  await container.start();
  return container;
}

function installRuntime(): void {
  const print = new DefaultLogger('WARN');
  Runtime.install({
    logger: new DefaultLogger('WARN', (entry) => {
      if (!/No activities registered/.test(entry.message)) print.log(entry.level, entry.message, entry.meta);
    }),
  });
}

// --- baseline A: a bare Temporal update round trip ------------------------------------------------------------

/** scripts/bench-workflow.ts alone, bundled apart from the instance workflows. */
async function bundleBenchWorkflow(): Promise<string> {
  const bundle = await bundleWorkflowCode({
    workflowsPath: fileURLToPath(new URL('./bench-workflow.ts', import.meta.url)),
    logger: ERRORS_ONLY_LOGGER,
  });
  return bundle.code;
}

async function bareUpdateRoundTrip(stack: Stack, code: string): Promise<Sample> {
  const taskQueue = `bench-${runId}`;
  const connection = await NativeConnection.connect({ address: stack.config.TEMPORAL_ADDRESS });
  try {
    const worker = await Worker.create({
      connection,
      namespace: stack.config.TEMPORAL_NAMESPACE,
      taskQueue,
      workflowBundle: { code },
    });
    const running = worker.run();
    try {
      const handle = await stack.client.workflow.start<typeof benchEchoWorkflow>('benchEchoWorkflow', {
        taskQueue,
        workflowId: `bench-echo-${runId}`,
      });
      const sample = await measure(
        'A0 bare Temporal update round trip',
        { ...PLAN.updates, signal: interrupted.signal },
        async (i) => {
          const answer = await handle.executeUpdate(pingUpdate, { args: [i] });
          if (answer !== i) throw new Error(`ping ${i} answered ${answer}`);
        },
      );
      await handle.signal(finishSignal);
      await handle.result();
      return sample;
    } finally {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
    }
  } finally {
    await connection.close();
  }
}

// --- main ------------------------------------------------------------------------------------------------------

const startupBefore = memoryMark('start-up');
let environment: TestEnvironment | undefined;
let stack: Stack | undefined;
const stackInstanceIds: string[] = [];
const providerInstanceIds: string[] = [];
let failed = false;

try {
  installRuntime();
  console.log('bench: starting the Temporal dev server, a PostgreSQL database, the API and the worker');
  environment = await startTestEnvironment();
  Object.assign(process.env, environment.env, { LOG_LEVEL: 'warn' });
  stack = await startStack();
  const s = stack;
  const benchWorkflowCode = await bundleBenchWorkflow();
  memory.push({
    phase: 'start-up (environment, stack, bundles)',
    before: startupBefore,
    after: memoryMark(''),
  });
  console.log(`bench: stack ready in ${((performance.now() - started) / 1000).toFixed(1)}s`);

  const docker = dockerClient(s.config.DOCKER_HOST);
  const provider = s.providers.get('docker');
  const tenant = `ten_bench_${runId}`;
  const api = apiClient(s.api.url, await s.token(tenant));

  const updates = await phase(`baseline A: ${PLAN.updates.iterations} bare update round trips`, () =>
    bareUpdateRoundTrip(s, benchWorkflowCode),
  );

  // One Docker instance for the lifecycle commands.
  const lifecycle = await api('POST', '/v1/instances?wait=30s', {
    name: `bench-lifecycle-${runId}`,
    services: [httpdService('bench')],
  });
  expectStatus(lifecycle, 201, 'create the lifecycle instance');
  const id: string = lifecycle.body.id;
  stackInstanceIds.push(id);
  expectState(lifecycle, 'running', 'create the lifecycle instance');

  const patches = await phase(`measured A: ${PLAN.patches.iterations} PATCH ?wait=true (labels)`, () =>
    measure(
      'A2 PATCH /v1/instances/:id?wait=true (update, no provider call)',
      { ...PLAN.patches, signal: interrupted.signal },
      async (i) => {
        const res = await api('PATCH', `/v1/instances/${id}?wait=true`, { labels: { bench: `run-${i}` } });
        expectStatus(res, 200, `PATCH ${i}`);
        if (res.body?.labels?.bench !== `run-${i}`) throw new Error(`PATCH ${i}: labels not applied`);
      },
    ),
  );

  const stops: number[] = [];
  const starts: number[] = [];
  await phase(`measured A: ${PLAN.stopStart.iterations} stop/start pairs ?wait=true`, () =>
    measure('stop/start pair', { ...PLAN.stopStart, signal: interrupted.signal }, async (i) => {
      const t0 = performance.now();
      const stopped = await api('POST', `/v1/instances/${id}/stop?wait=true`);
      const t1 = performance.now();
      expectStatus(stopped, 200, `stop ${i}`);
      expectState(stopped, 'stopped', `stop ${i}`);
      const t2 = performance.now();
      const running = await api('POST', `/v1/instances/${id}/start?wait=true`);
      const t3 = performance.now();
      expectStatus(running, 200, `start ${i}`);
      expectState(running, 'running', `start ${i}`);
      if (i >= 0) {
        stops.push(t1 - t0);
        starts.push(t3 - t2);
      }
    }),
  );

  // The lifecycle instance is done with: delete it (untimed) so its workflow ends.
  expectStatus(await api('DELETE', `/v1/instances/${id}?wait=30s`), 204, 'delete the lifecycle instance');

  // Context for A1: the Docker part of stop and start alone, on a container of the same config.
  const rawStops: number[] = [];
  const rawStarts: number[] = [];
  await phase(`context A: ${PLAN.stopStart.iterations} raw dockerode stop/start pairs`, async () => {
    const name = `ctrlplane-bench-${runId}-stopstart`;
    const container = await startRawContainer(docker, name);
    try {
      await measure('raw stop/start pair', { ...PLAN.stopStart, signal: interrupted.signal }, async (i) => {
        const t0 = performance.now();
        await container.stop({ t: s.config.CTRLPLANE_DOCKER_STOP_TIMEOUT });
        const t1 = performance.now();
        await container.start();
        const t2 = performance.now();
        if (i >= 0) {
          rawStops.push(t1 - t0);
          rawStarts.push(t2 - t1);
        }
      });
    } finally {
      await container.remove({ force: true, v: true });
      await docker.getNetwork(`${name}-net`).remove();
    }
  });

  // Baseline B: the raw dockerode calls of a single-service provision, with the provider's container config.
  const rawTag = (i: number) => `ctrlplane-bench-${runId}-${i < 0 ? `w${-i}` : i}`;
  const raw = await phase(`baseline B: ${PLAN.raw.iterations} raw dockerode sequences`, () =>
    measure(
      'B0 raw dockerode: network + container create, start, inspect',
      { ...PLAN.raw, signal: interrupted.signal },
      async (i) => {
        const container = await startRawContainer(docker, rawTag(i));
        const info = await container.inspect();
        if (!info.State.Running) throw new Error(`raw ${i}: container not running`);
      },
      async (i) => {
        const name = rawTag(i);
        await docker.getContainer(`${name}-web`).remove({ force: true, v: true });
        await docker.getNetwork(`${name}-net`).remove();
      },
    ),
  );

  // The middle figure: DockerProvider.provision alone (its own checks and adoption logic, no Temporal, no API).
  let providerId = '';
  const direct = await phase(`middle B: ${PLAN.provider.iterations} DockerProvider.provision calls`, () =>
    measure(
      'B1 DockerProvider.provision (no API, no Temporal)',
      { ...PLAN.provider, signal: interrupted.signal },
      async () => {
        providerId = newInstanceId();
        providerInstanceIds.push(providerId);
        const result = await provider.provision({
          instance_id: providerId,
          tenant_id: tenant,
          name: 'bench-provider',
          kind: 'deployment',
          services: [benchService('provider')],
        });
        if (!result.service_refs?.web) throw new Error('provision returned no container');
      },
      () => provider.deprovision(providerId),
    ),
  );

  let provisionedId = '';
  const provisions = await phase(
    `measured B: ${PLAN.provisions.iterations} provisions through the stack`,
    () =>
      measure(
        'B2 POST /v1/instances?wait=30s until running',
        { ...PLAN.provisions, signal: interrupted.signal },
        async (i) => {
          const res = await api('POST', '/v1/instances?wait=30s', {
            name: `bench-provision-${runId}-${i < 0 ? `w${-i}` : i}`,
            services: [httpdService('provision')],
          });
          expectStatus(res, 201, `provision ${i}`);
          provisionedId = res.body.id;
          stackInstanceIds.push(provisionedId);
          expectState(res, 'running', `provision ${i}`);
        },
        async () => {
          expectStatus(await api('DELETE', `/v1/instances/${provisionedId}?wait=30s`), 204, 'delete');
        },
      ),
  );

  // --- report --------------------------------------------------------------------------------------------------
  const baselineA = figures(updates);
  const stopFigures = figures({ label: 'A1 POST /:id/stop?wait=true (Docker stop)', ms: stops });
  const startFigures = figures({ label: 'A1 POST /:id/start?wait=true (Docker start)', ms: starts });
  const bothFigures = figures({
    label: 'A1 stop and start, alternating (all of them)',
    ms: [...stops, ...starts],
  });
  const rawStopFigures = figures({ label: 'A1r raw dockerode container stop (context)', ms: rawStops });
  const rawStartFigures = figures({ label: 'A1r raw dockerode container start (context)', ms: rawStarts });
  const patchFigures = figures(patches);
  const baselineB = figures(raw);
  const directFigures = figures(direct);
  const provisionFigures = figures(provisions);
  const ratios: Ratio[] = [
    { label: 'stop (whole stack) / bare update', measured: stopFigures, baseline: baselineA },
    { label: 'start (whole stack) / bare update', measured: startFigures, baseline: baselineA },
    { label: 'stop+start (whole stack) / bare update', measured: bothFigures, baseline: baselineA },
    { label: 'PATCH update (whole stack) / bare update', measured: patchFigures, baseline: baselineA },
    { label: 'stop (whole stack) / raw docker stop', measured: stopFigures, baseline: rawStopFigures },
    { label: 'start (whole stack) / raw docker start', measured: startFigures, baseline: rawStartFigures },
    { label: 'provision (whole stack) / raw dockerode', measured: provisionFigures, baseline: baselineB },
    { label: 'DockerProvider.provision / raw dockerode', measured: directFigures, baseline: baselineB },
    {
      label: 'provision (whole stack) / DockerProvider',
      measured: provisionFigures,
      baseline: directFigures,
    },
  ];
  const dockerVersion = await docker.version();
  const cpus = os.cpus();
  const rows: Figures[] = [
    baselineA,
    stopFigures,
    startFigures,
    bothFigures,
    rawStopFigures,
    rawStartFigures,
    patchFigures,
    baselineB,
    directFigures,
    provisionFigures,
  ];

  console.log('');
  console.log(
    `machine: ${cpus.length} CPUs (${cpus[0]?.model.trim() ?? 'unknown'}), ` +
      `${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB, ${os.platform()} ${os.release()}; ` +
      `node ${process.version}; docker engine ${dockerVersion.Version}`,
  );
  console.log('');
  console.log('figures (sequential, one at a time; warm-ups not counted):');
  console.log(figuresTable(rows));
  console.log('');
  console.log('ratios (measured ÷ baseline, same process, same run):');
  console.log(ratioTable(ratios));
  console.log('');
  console.log('memory of this process (API, worker and bench share it; no forced GC between phases):');
  memory.push({ phase: 'whole run', before: startupBefore, after: memoryMark('end') });
  console.log(memoryTable(memory));
  console.log('');
} catch (err) {
  failed = true;
  console.error('');
  console.error(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
} finally {
  process.stdout.write('bench: cleaning up …');
  const cleanup: [string, () => Promise<unknown>][] = [
    ['stop the stack', async () => stack?.close()],
    ['remove the instances', () => removeInstances([...stackInstanceIds, ...providerInstanceIds])],
    ['remove the raw containers and networks', () => removeRawLeftovers()],
    ['stop Temporal and drop the database', async () => environment?.teardown()],
    [
      'remove the workflow bundle',
      async () => {
        const bundle = environment?.env.CTRLPLANE_WORKFLOW_BUNDLE;
        if (bundle) rmSync(bundle, { force: true });
      },
    ],
  ];
  for (const [what, step] of cleanup) {
    try {
      await step();
    } catch (err) {
      failed = true;
      console.error(`\nbench: could not ${what}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  process.stdout.write(` done; total ${((performance.now() - started) / 1000).toFixed(1)}s\n`);
}
if (failed) process.exitCode = 1;

/** Containers and networks of the raw baseline that an error left behind (by this run's bench label). */
async function removeRawLeftovers(): Promise<void> {
  const docker = dockerClient(process.env.DOCKER_HOST);
  const filters = { label: [`${BENCH_LABEL}=${runId}`] };
  for (const c of await docker.listContainers({ all: true, filters })) {
    await docker.getContainer(c.Id).remove({ force: true, v: true });
  }
  for (const n of await docker.listNetworks({ filters })) {
    await docker.getNetwork(n.Id).remove();
  }
}
