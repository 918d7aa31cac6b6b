import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  containersOf,
  docker,
  httpdService,
  removeInstances,
  removeTenantLeftovers,
  TEST_IMAGE,
} from './support/docker.ts';
import { eventsOf } from './support/events.ts';
import { apiClient, eventually } from './support/http.ts';
import { type Stack, startStack, uniqueTenant } from './support/stack.ts';

// Real Temporal, PostgreSQL and Docker. Drift comes from the Docker provider watcher (the engine's `/events`).
describe('drift and failures', () => {
  let stack: Stack;
  let api: ReturnType<typeof apiClient>;
  const tenant = uniqueTenant('drift');
  const otherTenant = uniqueTenant('driftother');
  const created: string[] = [];

  before(async () => {
    await removeTenantLeftovers('ten_drift');
    stack = await startStack({ env: { CTRLPLANE_PROVIDER_WATCH: 'true' } });
    api = apiClient(stack.api.url, await stack.token(tenant));
  });

  after(async () => {
    await stack?.close();
    await removeInstances(created);
  });

  it('records a container killed from outside as failed, and its return as running', async (t) => {
    const res = await api('POST', '/v1/instances?wait=30s', {
      name: 'drifter',
      services: [httpdService('drifter')],
    });
    assert.equal(res.body.state, 'running');
    const id = res.body.id;
    created.push(id);
    const [container] = await containersOf(id);
    assert.ok(container);

    const killedAt = performance.now();
    await docker.getContainer(container.Id).kill();
    const failed = await eventually(
      'failed after the kill',
      async () => {
        const r = await api('GET', `/v1/instances/${id}`);
        return r.body.state === 'failed' ? r.body : undefined;
      },
      30_000,
      20,
    );
    t.diagnostic(`docker kill → failed in the read model: ${Math.round(performance.now() - killedAt)} ms`);
    assert.match(failed.error, /^drift: the provider reports the instance (stopped|failed)/);

    const startedAt = performance.now();
    await docker.getContainer(container.Id).start();
    await eventually(
      'running again',
      async () => (await api('GET', `/v1/instances/${id}`)).body.state === 'running',
      30_000,
      20,
    );
    t.diagnostic(`docker start → running in the read model: ${Math.round(performance.now() - startedAt)} ms`);
    const drift = (await eventsOf(stack.orm, id)).filter((e) => e.type === 'instance.drift');
    assert.deepEqual(
      drift.map((e) => e.payload.to),
      ['failed', 'starting', 'running'],
    );
  });

  it('fails an instance whose image does not exist, with a message naming it, and finds failed instances by tenant', async () => {
    const missing = 'ctrlplane-test/does-not-exist:1';
    const bad = [];
    for (const name of ['broken-a', 'broken-b']) {
      const res = await api('POST', '/v1/instances', { name, services: [{ name: 'web', image: missing }] });
      assert.equal(res.status, 201);
      bad.push(res.body.id as string);
    }
    const good = await api('POST', '/v1/instances?wait=30s', {
      name: 'fine',
      services: [httpdService('fine')],
    });
    const elsewhere = await apiClient(stack.api.url, await stack.token(otherTenant))(
      'POST',
      '/v1/instances',
      {
        name: 'broken-elsewhere',
        services: [{ name: 'web', image: missing }],
      },
    );
    created.push(...bad, good.body.id, elsewhere.body.id);

    for (const id of bad) {
      const failed = await eventually(`${id} failed`, async () => {
        const r = await api('GET', `/v1/instances/${id}`);
        return r.body.state === 'failed' ? r.body : undefined;
      });
      assert.match(failed.error, new RegExp(`provision failed: .*${missing}`));
    }
    assert.equal(good.body.state, 'running');
    assert.equal(
      (await eventsOf(stack.orm, bad[0] ?? '')).filter((e) => e.type === 'instance.failed').length,
      1,
      'a bad image is not retried: it fails once',
    );

    const query = `CtrlplaneState="failed" AND CtrlplaneTenantId="${tenant}"`;
    const found = await eventually('the failed instances to be searchable', async () => {
      const ids: string[] = [];
      for await (const wf of stack.client.workflow.list({ query })) ids.push(wf.workflowId);
      return ids.length === 2 ? ids : undefined;
    });
    assert.deepEqual(found.sort(), bad.map((id) => `instance/${id}`).sort());

    // A failed instance can be deleted, as the table says.
    for (const id of bad) assert.equal((await api('DELETE', `/v1/instances/${id}?wait=true`)).status, 204);
  });

  it('provisions a failed instance on start once its image is there', async () => {
    const image = `ctrlplane-test/arrives-later:${Date.now()}`;
    const res = await api('POST', '/v1/instances', {
      name: 'late-image',
      services: [{ ...httpdService('late'), image }],
    });
    const id = res.body.id;
    created.push(id);
    await eventually(
      'failed for the missing image',
      async () => (await api('GET', `/v1/instances/${id}`)).body.state === 'failed',
    );
    assert.deepEqual(await containersOf(id), [], 'nothing was created');

    const [repo, tag] = image.split(':') as [string, string];
    await docker.getImage(TEST_IMAGE).tag({ repo, tag });
    try {
      const start = await api('POST', `/v1/instances/${id}/start?wait=true`);
      assert.equal(start.status, 200, JSON.stringify(start.body));
      assert.equal(start.body.state, 'running');
      const [container] = await containersOf(id);
      assert.equal(container?.State, 'running', 'start provisioned what the failed create never made');
      assert.equal((await api('DELETE', `/v1/instances/${id}?wait=true`)).status, 204);
    } finally {
      await docker
        .getImage(image)
        .remove()
        .catch(() => {});
    }
  });
});
