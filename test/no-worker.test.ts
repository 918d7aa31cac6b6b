import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { containersOf, httpdService, removeInstances, removeTenantLeftovers } from './support/docker.ts';
import { eventsOf } from './support/events.ts';
import { apiClient, eventually } from './support/http.ts';
import { type Stack, startStack, uniqueTenant } from './support/stack.ts';

// Real Temporal, PostgreSQL and Docker; no worker polls the task queue until the test starts one.
describe('no worker is running', () => {
  let stack: Stack;
  let api: ReturnType<typeof apiClient>;
  const tenant = uniqueTenant('noworker');
  const created: string[] = [];

  before(async () => {
    await removeTenantLeftovers('ten_noworker_');
    stack = await startStack({ worker: false, env: { CTRLPLANE_COMMAND_ACCEPT_TIMEOUT_MS: '1500' } });
    api = apiClient(stack.api.url, await stack.token(tenant));
  });

  after(async () => {
    await stack?.close();
    await removeInstances(created);
  });

  it('answers commands 503 within the deadline instead of hanging, and loses no accepted create', async () => {
    const res = await api('POST', '/v1/instances', { name: 'orphan', services: [httpdService('orphan')] });
    assert.equal(res.status, 201, 'starting a workflow needs no worker');
    const id = res.body.id;
    created.push(id);

    const began = Date.now();
    const key = { 'Idempotency-Key': `stop-${id}` };
    const stop = await api('POST', `/v1/instances/${id}/stop`, undefined, key);
    const tookMs = Date.now() - began;
    assert.equal(stop.status, 503, JSON.stringify(stop.body));
    assert.equal(stop.body.code, 'temporal_unavailable');
    assert.match(stop.body.detail, /retry with the same Idempotency-Key/);
    assert.ok(stop.headers.get('retry-after'), 'tells the client when to retry');
    assert.ok(tookMs < 10_000, `answered in ${tookMs} ms, bounded by the accept deadline`);
    assert.equal((await api('GET', `/v1/instances/${id}`)).body.state, 'provisioning');

    // The server kept the unconfirmed stop; the client retries it with the same key once a worker is back.
    await stack.startWorker();
    // A worker that has just started may not poll within the 1.5 s accept deadline yet: the client keeps
    // retrying with the same key on 503, as the answer tells it to.
    const retried = await eventually(
      'the retried stop to be accepted once a worker polls',
      async () => {
        const res = await api('POST', `/v1/instances/${id}/stop?wait=30s`, undefined, key);
        return res.status === 503 ? undefined : res;
      },
      60_000,
      1000,
    );
    assert.ok([200, 202].includes(retried.status), JSON.stringify(retried.body));
    await eventually(
      'stopped after the provision',
      async () => (await api('GET', `/v1/instances/${id}`)).body.state === 'stopped',
    );
    assert.equal((await containersOf(id)).length, 1);
    const types = (await eventsOf(stack.orm, id)).map((e) => e.type);
    assert.deepEqual(
      types,
      [
        'instance.provisioning',
        'instance.starting',
        'instance.created',
        'instance.stopping',
        'instance.stopped',
      ],
      'the create completed and the stop, sent twice, was applied once',
    );
  });
});
