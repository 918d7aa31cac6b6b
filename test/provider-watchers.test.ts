import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@temporalio/client';
import { instanceWorkflowId } from '../workflows/messages.ts';
import { providerWatchWorkflowId } from '../workflows/provider-watch-messages.ts';
import {
  containersOf,
  docker,
  httpdService,
  removeInstances,
  removeTenantLeftovers,
} from './support/docker.ts';
import { eventsOf } from './support/events.ts';
import { apiClient, eventually } from './support/http.ts';
import { type Stack, startStack, uniqueTenant } from './support/stack.ts';
import { spawnWorker, type WorkerProcess } from './support/worker-process.ts';

/** The workflow's history events, as the Temporal UI lists them. */
async function historyOf(client: Client, workflowId: string) {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  return history.events ?? [];
}

const SIGNALED = 'workflowExecutionSignaledEventAttributes';
const TIMER_STARTED = 'timerStartedEventAttributes';

// Real Temporal, PostgreSQL and Docker; the worker is a separate process, SIGKILLed in the second test. The
// watcher follows the engine's real `/events`; nothing runs a periodic drift check here.
describe('the Docker provider watcher', () => {
  let stack: Stack;
  let api: ReturnType<typeof apiClient>;
  const tenant = uniqueTenant('watch');
  const created: string[] = [];
  const workers: WorkerProcess[] = [];

  function worker(): WorkerProcess {
    const w = spawnWorker({
      CTRLPLANE_TASK_QUEUE: stack.config.CTRLPLANE_TASK_QUEUE,
      CTRLPLANE_DOCKER_STOP_TIMEOUT: '2',
      CTRLPLANE_PROVIDER_WATCH: 'true',
      LOG_LEVEL: 'info', // for its 'worker polling' line
    });
    workers.push(w);
    return w;
  }

  async function runningInstance(name: string): Promise<string> {
    const res = await api('POST', '/v1/instances?wait=60s', { name, services: [httpdService(name)] });
    assert.equal(res.body.state, 'running', JSON.stringify(res.body));
    created.push(res.body.id);
    return res.body.id;
  }

  const stateOf = async (id: string) => (await api('GET', `/v1/instances/${id}`)).body.state as string;

  before(async () => {
    await removeTenantLeftovers('ten_watch_');
    stack = await startStack({ worker: false });
    api = apiClient(stack.api.url, await stack.token(tenant));
    await worker().waitForLine(/worker polling/);
  });

  after(async () => {
    for (const w of workers) await w.kill();
    await stack.client.workflow
      .getHandle(providerWatchWorkflowId(stack.config.CTRLPLANE_TASK_QUEUE, 'docker'))
      .terminate('test over')
      .catch(() => {});
    await stack?.close();
    await removeInstances(created);
  });

  it('an idle, healthy instance adds no history event, and has no timer', async (t) => {
    const id = await runningInstance('idler');
    const workflowId = instanceWorkflowId(id);
    // Settled: the history no longer grows once the create has concluded.
    let before = 0;
    await eventually(
      'the history to settle',
      async () => {
        const length = (await historyOf(stack.client, workflowId)).length;
        const settled = length === before;
        before = length;
        return settled;
      },
      30_000,
      1_000,
    );
    await new Promise((resolve) => setTimeout(resolve, 10_000));
    const events = await historyOf(stack.client, workflowId);
    t.diagnostic(
      `history events of an idle instance: ${before} after its create, ${events.length} after 10 s idle`,
    );
    assert.equal(events.length, before, 'no history event while idle');
    assert.equal(events.filter((e) => e[TIMER_STARTED]).length, 0, 'no drift timer is ever started');
  });

  it('notices a container killed by hand within seconds, and tells only that instance', async (t) => {
    const killed = await runningInstance('killed');
    const bystander = await runningInstance('bystander');
    const [container] = await containersOf(killed);
    assert.ok(container);

    const start = performance.now();
    await docker.getContainer(container.Id).kill();
    const failed = await eventually(
      'failed after the kill',
      async () => {
        const r = await api('GET', `/v1/instances/${killed}`);
        return r.body.state === 'failed' ? r.body : undefined;
      },
      30_000,
      20,
    );
    t.diagnostic(`docker kill → read model failed: ${Math.round(performance.now() - start)} ms`);
    assert.match(failed.error, /^drift: the provider reports the instance (stopped|failed)/);

    const signals = (await historyOf(stack.client, instanceWorkflowId(bystander))).filter((e) => e[SIGNALED]);
    assert.deepEqual(signals, [], 'the other instance was not signalled');
    assert.equal(await stateOf(bystander), 'running');
  });

  it('a watcher whose worker was SIGKILLed resumes on the next worker and catches a change made meanwhile', async () => {
    const id = await runningInstance('gap');
    const watcherId = providerWatchWorkflowId(stack.config.CTRLPLANE_TASK_QUEUE, 'docker');
    const watcher = await stack.client.workflow.getHandle(watcherId).describe();
    assert.equal(watcher.status.name, 'RUNNING');

    for (const w of workers) await w.kill('SIGKILL');
    const [container] = await containersOf(id);
    assert.ok(container);
    await docker.getContainer(container.Id).kill();

    await worker().waitForLine(/worker polling/);
    // The watch activity's heartbeat times out (20 s); its retry resyncs on the new worker.
    await eventually('failed once a worker is back', async () => (await stateOf(id)) === 'failed', 90_000);
    const after = await stack.client.workflow.getHandle(watcherId).describe();
    assert.equal(
      after.runId,
      watcher.runId,
      'the same watcher went on: the new worker started none of its own',
    );
    const drift = (await eventsOf(stack.orm, id)).filter((e) => e.type === 'instance.drift');
    assert.deepEqual(
      drift.map((e) => e.payload.to),
      ['failed'],
    );
  });
});
