import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { instanceWorkflowId } from '../workflows/messages.ts';
import {
  containersOf,
  docker,
  httpdService,
  networkExists,
  removeInstances,
  removeTenantLeftovers,
} from './support/docker.ts';
import { apiClient, eventually } from './support/http.ts';
import { type Stack, startStack, uniqueTenant } from './support/stack.ts';

// Real Temporal dev server, real PostgreSQL and the real Docker engine; nothing here is mocked.
describe('an instance lives end to end through the API, Temporal, PostgreSQL and Docker', () => {
  let stack: Stack;
  let api: ReturnType<typeof apiClient>;
  const tenant = uniqueTenant('life');
  const created: string[] = [];

  before(async () => {
    await removeTenantLeftovers('ten_life_');
    stack = await startStack();
    api = apiClient(stack.api.url, await stack.token(tenant));
  });

  after(async () => {
    await stack?.close();
    await removeInstances(created);
  });

  async function stateOf(id: string): Promise<string> {
    const res = await api('GET', `/v1/instances/${id}`);
    return res.body.state;
  }

  async function eventTypes(id: string): Promise<string[]> {
    const rows = await stack.orm.em
      .fork()
      .getConnection()
      .execute<{ type: string }[]>('select type from instance_events where instance_id = ? order by seq', [
        id,
      ]);
    return rows.map((r) => r.type);
  }

  it('creates, serves HTTP, stops, starts and deletes an instance', async () => {
    const startedAt = Date.now();
    const res = await api('POST', '/v1/instances', {
      name: 'Web One',
      services: [httpdService('hello-web-one')],
    });
    const answeredInMs = Date.now() - startedAt;
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const id: string = res.body.id;
    created.push(id);
    assert.match(id, /^inst_[0-9a-z]{26}$/);
    assert.equal(res.body.state, 'provisioning', 'the API answers before provisioning is done');
    assert.equal(res.body.slug, 'web-one');
    assert.equal(res.body.tenant_id, tenant);
    assert.equal(res.headers.get('location'), `/v1/instances/${id}`);
    assert.ok(answeredInMs < 5_000, `create answered in ${answeredInMs} ms`);

    await eventually('running', async () => (await stateOf(id)) === 'running');
    const running = (await api('GET', `/v1/instances/${id}`)).body;
    assert.equal(running.provider_ref, `docker:cp-${id}`);

    const [container, ...others] = await containersOf(id);
    assert.ok(container, 'docker ps shows the container');
    assert.equal(others.length, 0, 'exactly one container');
    assert.equal(container.State, 'running');
    assert.equal(container.Names[0], `/cp-${id}-web`);
    assert.equal(container.Labels['ctrlplane.instance'], id);
    assert.equal(container.Labels['ctrlplane.tenant'], tenant);
    assert.equal(container.Labels['ctrlplane.service'], 'web');
    assert.equal(container.Labels['ctrlplane.project'], `cp-${id}`);

    const publicEndpoint = running.endpoints.find((e: { public: boolean }) => e.public);
    assert.ok(publicEndpoint, `a public endpoint in ${JSON.stringify(running.endpoints)}`);
    // `running` means the container runs; httpd may need a moment more to listen.
    const body = await eventually('the published port to answer', async () => {
      const page = await fetch(publicEndpoint.url);
      return page.status === 200 ? (await page.text()).trim() : undefined;
    });
    assert.equal(body, 'hello-web-one');

    const stop = await api('POST', `/v1/instances/${id}/stop`);
    assert.equal(stop.status, 202, JSON.stringify(stop.body));
    await eventually('stopped', async () => (await stateOf(id)) === 'stopped');
    const stoppedContainer = await docker.getContainer(container.Id).inspect();
    assert.equal(stoppedContainer.State.Running, false);

    const start = await api('POST', `/v1/instances/${id}/start?wait=true`);
    assert.equal(start.status, 200, JSON.stringify(start.body));
    assert.equal(start.body.state, 'running');
    assert.equal((await docker.getContainer(container.Id).inspect()).State.Running, true);
    // Docker publishes a new host port on every start; the instance reports the current one.
    const restartedEndpoint = start.body.endpoints.find((e: { public: boolean }) => e.public);
    await eventually(
      'the published port to answer again',
      async () => (await fetch(restartedEndpoint.url)).status === 200,
    );
    assert.deepEqual((await api('GET', `/v1/instances/${id}`)).body.endpoints, start.body.endpoints);

    const del = await api('DELETE', `/v1/instances/${id}?wait=true`);
    assert.equal(del.status, 204, JSON.stringify(del.body));
    assert.deepEqual(await containersOf(id), []);
    assert.equal(await networkExists(`cp-${id}-net`), false);
    const gone = await api('GET', `/v1/instances/${id}`);
    assert.equal(gone.status, 200);
    assert.equal(gone.body.state, 'destroyed', 'the row stays as a tombstone');
    const again = await api('DELETE', `/v1/instances/${id}`);
    assert.equal(again.status, 202, 'deleting a destroyed instance is a success');

    assert.deepEqual(await eventTypes(id), [
      'instance.provisioning',
      'instance.starting',
      'instance.created',
      'instance.stopping',
      'instance.stopped',
      'instance.starting',
      'instance.started',
      'instance.destroying',
      'instance.deleted',
    ]);
    const result = await stack.client.workflow.getHandle(instanceWorkflowId(id)).result();
    assert.equal(result.state, 'destroyed');
  });
});
