import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { commandMessages, instanceWorkflowId } from '../workflows/messages.ts';
import {
  containersOf,
  docker,
  httpdService,
  networkExists,
  removeInstances,
  removeTenantLeftovers,
} from './support/docker.ts';
import { conclusionsByRequest, eventsOf } from './support/events.ts';
import { apiClient, eventually } from './support/http.ts';
import { type Stack, startStack, uniqueTenant } from './support/stack.ts';
import { spawnWorker, type WorkerProcess } from './support/worker-process.ts';

// Real Temporal, PostgreSQL and Docker; the worker is a real separate process that is SIGKILLed.
describe('a worker killed in the middle of a provider call', () => {
  let stack: Stack;
  let api: ReturnType<typeof apiClient>;
  const tenant = uniqueTenant('crash');
  const created: string[] = [];
  const workers: WorkerProcess[] = [];

  before(async () => {
    await removeTenantLeftovers('ten_crash_');
    stack = await startStack({ worker: false });
    api = apiClient(stack.api.url, await stack.token(tenant));
  });

  after(async () => {
    for (const w of workers) await w.kill();
    await stack?.close();
    await removeInstances(created);
  });

  const releasesOf = (instanceId: string) =>
    stack.orm.em
      .fork()
      .getConnection()
      .execute<{ number: number; description: string; status: string }[]>(
        'select number, description, status from releases where instance_id = ? order by number',
        [instanceId],
      );

  function worker(pauseAfter?: string): WorkerProcess {
    const w = spawnWorker({
      CTRLPLANE_TASK_QUEUE: stack.config.CTRLPLANE_TASK_QUEUE,
      CTRLPLANE_DOCKER_STOP_TIMEOUT: '2',
      LOG_LEVEL: 'info', // for its 'worker polling' line
      ...(pauseAfter ? { CTRLPLANE_TEST_PAUSE_AFTER: pauseAfter } : {}),
    });
    workers.push(w);
    return w;
  }

  it('ends running with exactly one container after a SIGKILL during provision', async () => {
    const doomed = worker('provision');
    const res = await api('POST', '/v1/instances', {
      name: 'survivor',
      services: [httpdService('survivor')],
    });
    assert.equal(res.status, 201);
    const id = res.body.id;
    created.push(id);

    await doomed.waitForLine(new RegExp(`PAUSED provision ${id}`));
    assert.equal((await containersOf(id)).length, 1, 'the killed attempt had already created the container');
    await doomed.kill('SIGKILL');
    assert.equal((await api('GET', `/v1/instances/${id}`)).body.state, 'provisioning');

    worker();
    // The activity's heartbeat times out (15 s), the retry runs on the new worker and adopts the container.
    await eventually(
      'running after the restart',
      async () => (await api('GET', `/v1/instances/${id}`)).body.state === 'running',
      90_000,
    );
    const containers = await containersOf(id);
    assert.equal(
      containers.length,
      1,
      `exactly one container, found ${containers.map((c) => c.Names).join(',')}`,
    );
    assert.equal(containers[0]?.State, 'running');

    const events = await stack.orm.em
      .fork()
      .getConnection()
      .execute<{ type: string }[]>('select type from instance_events where instance_id = ? order by seq', [
        id,
      ]);
    assert.deepEqual(
      events.map((e) => e.type),
      ['instance.provisioning', 'instance.starting', 'instance.created'],
      'each transition recorded once',
    );
    assert.deepEqual(
      await releasesOf(id),
      [{ number: 1, description: 'create', status: 'deployed' }],
      'one release, deployed, despite the killed attempt',
    );
  });

  it('completes stop, start, scale, restart and delete exactly once when the worker dies inside each provider call', async () => {
    for (const w of workers) await w.kill('SIGTERM');
    let current = worker();
    const res = await api('POST', '/v1/instances?wait=60s', {
      name: 'phoenix',
      services: [httpdService('phoenix')],
    });
    assert.equal(res.body.state, 'running');
    const id = res.body.id;
    created.push(id);
    const [container] = await containersOf(id);
    assert.ok(container);
    const requestIds: string[] = [];

    /** Sends a command with the next worker set to hang inside `call`, kills it there, and lets a new one finish. */
    async function crashDuring(call: string, send: (requestId: string) => Promise<void>, settled: string) {
      await current.kill('SIGTERM');
      const doomed = worker(call);
      await doomed.waitForLine(/worker polling/);
      const requestId = `${call}-${randomUUID()}`;
      requestIds.push(requestId);
      await send(requestId);
      await doomed.waitForLine(new RegExp(`PAUSED ${call} ${id}`));
      await doomed.kill('SIGKILL');
      current = worker();
      await eventually(
        `${settled} after the crash in ${call}`,
        async () => (await api('GET', `/v1/instances/${id}`)).body.state === settled,
        90_000,
      );
    }

    const handle = stack.client.workflow.getHandle(instanceWorkflowId(id));
    const viaApi =
      (path: string, method = 'POST') =>
      async (requestId: string) => {
        // As the API's 503 says: retry with the same key. Under load a fresh worker (and the workflow's sticky
        // queue on the one just stopped) can take longer than the accept deadline to take the update.
        let r = await api(method, path, undefined, { 'Idempotency-Key': requestId });
        for (let retry = 0; r.status === 503 && retry < 5; retry++) {
          r = await api(method, path, undefined, { 'Idempotency-Key': requestId });
        }
        assert.equal(r.status, 202, JSON.stringify(r.body));
      };
    await crashDuring('stop', viaApi(`/v1/instances/${id}/stop`), 'stopped');
    assert.equal((await docker.getContainer(container.Id).inspect()).State.Running, false);

    await crashDuring('start', viaApi(`/v1/instances/${id}/start`), 'running');
    assert.equal((await docker.getContainer(container.Id).inspect()).State.Running, true);

    await crashDuring(
      'scale',
      async (request_id) => {
        await handle.startUpdate(commandMessages.scale.update, {
          args: [{ request_id, memory_mb: 96 }],
          updateId: request_id,
          waitForStage: 'ACCEPTED',
        });
      },
      'running',
    );
    await eventually(
      'the scale to be recorded',
      async () => (await eventsOf(stack.orm, id)).some((e) => e.type === 'instance.scaled'),
      90_000,
    );
    assert.equal((await docker.getContainer(container.Id).inspect()).HostConfig.Memory, 96 * 1024 * 1024);

    const startedBefore = (await docker.getContainer(container.Id).inspect()).State.StartedAt;
    await crashDuring('restart', viaApi(`/v1/instances/${id}/restart`), 'running');
    await eventually(
      'the restart to conclude',
      async () => (await eventsOf(stack.orm, id)).some((e) => e.type === 'instance.restarted'),
      90_000,
    );
    assert.notEqual((await docker.getContainer(container.Id).inspect()).State.StartedAt, startedBefore);

    await crashDuring('deprovision', viaApi(`/v1/instances/${id}`, 'DELETE'), 'destroyed');
    assert.deepEqual(await containersOf(id), []);
    assert.equal(await networkExists(`cp-${id}-net`), false);

    const events = await eventsOf(stack.orm, id);
    const conclusions = conclusionsByRequest(events);
    for (const requestId of requestIds) {
      const concluded = [...conclusions.entries()]
        .filter(([key]) => key.endsWith(requestId))
        .flatMap(([, e]) => e);
      assert.equal(concluded.length, 1, `${requestId} concluded exactly once`);
      assert.equal(concluded[0]?.payload.conclusion, 'succeeded');
    }
    assert.deepEqual(
      events.map((e) => e.type),
      [
        'instance.provisioning',
        'instance.starting',
        'instance.created',
        'instance.stopping',
        'instance.stopped',
        'instance.starting',
        'instance.started',
        'instance.scaled',
        'instance.stopping',
        'instance.stopped',
        'instance.starting',
        'instance.restarted',
        'instance.destroying',
        'instance.deleted',
      ],
    );
    // The scale's release was made once although the worker died inside the scale's provider call.
    assert.deepEqual(await releasesOf(id), [
      { number: 1, description: 'create', status: 'deployed' },
      { number: 2, description: 'scale', status: 'deployed' },
    ]);
  });
});
