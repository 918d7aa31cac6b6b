import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { instanceWorkflowId } from '../workflows/messages.ts';
import {
  containersOf,
  docker,
  httpdService,
  removeInstances,
  removeTenantLeftovers,
} from './support/docker.ts';
import { DockerSocketProxy } from './support/docker-socket-proxy.ts';
import { eventsOf } from './support/events.ts';
import { apiClient, eventually } from './support/http.ts';
import { type Stack, startStack, uniqueTenant } from './support/stack.ts';
import { tenantRows, tenantWorkflowIds } from './support/tenant-footprint.ts';

// Real Temporal, PostgreSQL and Docker. The stack reaches the engine through a proxy socket the test cuts,
// which is what a dead or restarting engine looks like to it; the engine itself keeps running.
describe('the Docker engine goes away and comes back', () => {
  let stack: Stack;
  let api: ReturnType<typeof apiClient>;
  const proxy = new DockerSocketProxy(`/tmp/ctrlplane-test-docker-${process.pid}.sock`);
  const tenant = uniqueTenant('outage');
  const created: string[] = [];

  before(async () => {
    await removeTenantLeftovers('ten_outage_');
    await proxy.open();
    stack = await startStack({ env: { DOCKER_HOST: proxy.dockerHost } });
    api = apiClient(stack.api.url, await stack.token(tenant));
  });

  after(async () => {
    await proxy.open().catch(() => {});
    await stack?.close();
    await proxy.cut();
    await removeInstances(created);
  });

  it('keeps a stop waiting and retrying while the engine is away, and finishes it when it is back', async () => {
    const res = await api('POST', '/v1/instances?wait=30s', {
      name: 'patient',
      services: [httpdService('patient')],
    });
    assert.equal(res.body.state, 'running');
    const id = res.body.id;
    created.push(id);

    await proxy.cut();
    // /readyz answers from a cache of 2 s: the outage shows within that.
    const ready = await eventually('/readyz to see the engine gone', async () => {
      const res = await api('GET', '/readyz');
      return res.status === 503 ? res : undefined;
    });
    // A word per dependency, not the engine's error (the log has that).
    assert.deepEqual(ready.body, {
      status: 'not_ready',
      checks: { postgres: 'ok', temporal: 'ok', 'provider:docker': 'down' },
    });

    const stop = await api('POST', `/v1/instances/${id}/stop`);
    assert.equal(stop.status, 202);
    const handle = stack.client.workflow.getHandle(instanceWorkflowId(id));
    const retrying = await eventually('the stop activity to be retrying', async () => {
      const pending = (await handle.describe()).raw.pendingActivities ?? [];
      const stopCall = pending.find((a) => a.activityType?.name === 'stopInstance');
      return stopCall && (stopCall.attempt ?? 0) >= 2 ? stopCall : undefined;
    });
    assert.match(retrying.lastFailure?.message ?? '', /ENOENT|ECONNREFUSED|connect/);
    assert.equal(
      (await api('GET', `/v1/instances/${id}`)).body.state,
      'stopping',
      'not failed while retries remain',
    );

    await proxy.open();
    await eventually(
      'stopped once the engine is back',
      async () => (await api('GET', `/v1/instances/${id}`)).body.state === 'stopped',
      60_000,
    );
    const [container] = await containersOf(id);
    assert.equal((await docker.getContainer(container?.Id ?? '').inspect()).State.Running, false);
    await eventually('/readyz ready again', async () => (await api('GET', '/readyz')).status === 200);
    const types = (await eventsOf(stack.orm, id)).map((e) => e.type);
    assert.deepEqual(types.slice(-2), ['instance.stopping', 'instance.stopped'], 'the stop was applied once');
  });

  it('answers a create 503 provider_unavailable while the engine is away, and writes nothing', async () => {
    const refusedTenant = uniqueTenant('outage_create');
    const refused = apiClient(stack.api.url, await stack.token(refusedTenant));
    const spec = { name: 'while-away', services: [httpdService('away')] };
    await proxy.cut();
    try {
      for (const headers of [{}, { 'idempotency-key': 'create-while-away' }] as Record<string, string>[]) {
        const res = await refused('POST', '/v1/instances?wait=5s', spec, headers);
        assert.equal(res.status, 503, JSON.stringify(res.body));
        assert.equal(res.body.code, 'provider_unavailable');
        assert.match(res.body.detail, /docker/);
        assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
        assert.ok(Number(res.headers.get('retry-after')) > 0, 'Retry-After');
      }
      assert.deepEqual(await tenantRows(stack.orm, refusedTenant), {
        instances: 0,
        instance_events: 0,
        idempotency_keys: 0,
      });
    } finally {
      await proxy.open();
    }
    // Once the engine is back the same create (and key) goes through; its workflow is the tenant's only one.
    const res = await refused('POST', '/v1/instances?wait=30s', spec, {
      'idempotency-key': 'create-while-away',
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    created.push(res.body.id);
    assert.equal(res.body.state, 'running');
    const expected = [instanceWorkflowId(res.body.id)];
    await eventually('the create to be visible', async () =>
      JSON.stringify(await tenantWorkflowIds(stack.client, refusedTenant)) === JSON.stringify(expected)
        ? true
        : undefined,
    );
    assert.equal((await tenantRows(stack.orm, refusedTenant)).instances, 1);
    assert.equal((await refused('DELETE', `/v1/instances/${res.body.id}?wait=30s`)).status, 204);
  });

  it('replays a completed create for a retry with its Idempotency-Key even while the engine is away', async () => {
    const key = { 'Idempotency-Key': `create-${Date.now()}` };
    const body = { name: 'replayed', services: [httpdService('replayed')] };
    const first = await api('POST', '/v1/instances?wait=30s', body, key);
    assert.equal(first.status, 201, JSON.stringify(first.body));
    created.push(first.body.id);
    await proxy.cut();
    try {
      const retry = await api('POST', '/v1/instances?wait=30s', body, key);
      assert.equal(retry.status, 201, 'the stored answer, not a 503');
      assert.equal(retry.headers.get('idempotent-replayed'), 'true');
      assert.equal(retry.body.id, first.body.id);
      const fresh = await api(
        'POST',
        '/v1/instances',
        { ...body, name: 'not-replayed' },
        { 'Idempotency-Key': `new-${Date.now()}` },
      );
      assert.equal(fresh.status, 503, 'a new create still meets the health check');
    } finally {
      await proxy.open();
    }
  });
});
