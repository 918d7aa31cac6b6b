import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { containersOf, httpdService, removeInstances, removeTenantLeftovers } from './support/docker';
import { apiClient, eventually } from './support/http';
import { type Stack, startStack, uniqueTenant } from './support/stack';
import { spawnWorker, type WorkerProcess } from './support/worker-process';

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

  function worker(pauseAfter?: string): WorkerProcess {
    const w = spawnWorker({
      CTRLPLANE_TASK_QUEUE: stack.config.CTRLPLANE_TASK_QUEUE,
      CTRLPLANE_DOCKER_STOP_TIMEOUT: '2',
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
  });
});
