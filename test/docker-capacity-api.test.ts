import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { networkName } from '../providers/docker/naming.ts';
import { instanceWorkflowId } from '../workflows/messages.ts';
import { docker, httpdService, removeInstances, removeTenantLeftovers } from './support/docker.ts';
import { apiClient, eventually, type HttpResponse } from './support/http.ts';
import { testNetworkPool } from './support/network-pool.ts';
import { ownDatabase } from './support/own-database.ts';
import { type Stack, startStack, uniqueTenant } from './support/stack.ts';
import { tenantRows, tenantWorkflowIds } from './support/tenant-footprint.ts';

// Real Temporal, PostgreSQL and Docker. The operator's pool is configured tiny: two subnets, so two instances.
// The file has a database of its own: the admission counts every instance provisioning on the host, and
// instances other files left provisioning (no worker) would count against this tiny pool.
describe('a Docker host that is full says so before anything is written', () => {
  const pool = testNetworkPool(2);
  const tenant = uniqueTenant('capacity');
  const created: string[] = [];
  let database: Awaited<ReturnType<typeof ownDatabase>>;
  let stack: Stack;
  let api: ReturnType<typeof apiClient>;
  let operator: ReturnType<typeof apiClient>;

  // The operator's view: it names the host, so it is not on the public /readyz.
  const dockerCapacity = async () => {
    const report = await operator('GET', '/v1/admin/capacity');
    assert.equal(report.status, 200, JSON.stringify(report.body));
    return report.body.capacity.docker;
  };
  const gauge = async (resource: string) => {
    const text: string = (await api('GET', '/metrics')).body;
    const line = text
      .split('\n')
      .find((l) => l.startsWith('ctrlplane_host_capacity_free{') && l.includes(`resource="${resource}"`));
    assert.ok(line, `a ctrlplane_host_capacity_free gauge for ${resource}`);
    assert.match(line, /provider="docker",host="unix:\/\/\/var\/run\/docker\.sock"/);
    return Number(line.split(' ').at(-1));
  };
  const create = (name: string, key?: string) =>
    api(
      'POST',
      '/v1/instances',
      { name, services: [httpdService(name)] },
      key ? { 'idempotency-key': key } : {},
    );
  const assertFull = (res: HttpResponse) => {
    assert.equal(res.status, 503, JSON.stringify(res.body));
    assert.equal(res.body.code, 'capacity_exhausted');
    assert.match(res.body.detail, /all 2 subnets of its instance network pool are in use/);
    assert.equal(res.headers.get('retry-after'), '60');
  };

  before(async () => {
    await removeTenantLeftovers('ten_capacity_');
    database = await ownDatabase('capacity');
    stack = await startStack({ env: { ...pool.env, DATABASE_URL: database.url } });
    api = apiClient(stack.api.url, await stack.token(tenant));
    operator = apiClient(stack.api.url, await stack.token(uniqueTenant('capacityops'), ['operator']));
  });

  after(async () => {
    await stack?.close();
    await removeInstances(created);
    await database?.drop();
  });

  it('reports the networks and instances the host can still take to the operator and as a Prometheus gauge', async () => {
    const capacity = await dockerCapacity();
    assert.deepEqual(capacity, {
      host: 'unix:///var/run/docker.sock',
      networks: { total: 2, used: 0, free: 2 },
      instances: { total: 1000, used: capacity.instances.used, free: 2 },
    });
    assert.equal(await gauge('networks'), 2);
    assert.equal(await gauge('instances'), 2);
  });

  it('admits exactly two of four concurrent creates; the others are 503 capacity_exhausted and write nothing', async () => {
    const answers = await Promise.all(['a', 'b', 'c', 'd'].map((n) => create(`full-${n}`, `key-${n}`)));
    const admitted = answers.filter((r) => r.status === 201);
    assert.equal(admitted.length, 2, answers.map((r) => `${r.status} ${JSON.stringify(r.body)}`).join('\n'));
    for (const res of answers.filter((r) => r.status !== 201)) assertFull(res);
    created.push(...admitted.map((r) => r.body.id));
    for (const res of admitted) {
      const settled = await api('GET', `/v1/instances/${res.body.id}/wait?state=running&timeout=60s`);
      assert.equal(settled.status, 200, JSON.stringify(settled.body));
    }
    // Only the two admitted creates left anything: rows, events, kept idempotency keys, workflows.
    const rows = await tenantRows(stack.orm, tenant);
    assert.equal(rows.instances, 2);
    assert.equal(rows.idempotency_keys, 2, 'the refused creates released their keys');
    const expected = admitted.map((r) => instanceWorkflowId(r.body.id)).sort();
    await eventually('the two workflows to be visible', async () =>
      JSON.stringify(await tenantWorkflowIds(stack.client, tenant)) === JSON.stringify(expected)
        ? true
        : undefined,
    );

    assert.deepEqual((await dockerCapacity()).networks, { total: 2, used: 2, free: 0 });
    assert.equal((await dockerCapacity()).instances.free, 0);
    assert.equal(await gauge('networks'), 0);
    assert.equal(await gauge('instances'), 0);

    // The third create, on its own, is refused the same way, and the list still has two instances.
    assertFull(await create('third'));
    assert.equal((await api('GET', '/v1/instances')).body.total, 2);
    assert.deepEqual(await tenantWorkflowIds(stack.client, tenant), expected);
  });

  it('frees a subnet on delete: the next create succeeds, on the freed subnet of the pool', async () => {
    const [first] = created;
    const freedSubnet = (await docker.getNetwork(networkName(first as string)).inspect()).IPAM?.Config?.[0]
      ?.Subnet;
    assert.equal((await api('DELETE', `/v1/instances/${first}?wait=30s`)).status, 204);
    assert.deepEqual((await dockerCapacity()).networks, { total: 2, used: 1, free: 1 });
    assert.equal(await gauge('instances'), 1);

    const next = await api('POST', '/v1/instances?wait=60s', {
      name: 'next',
      services: [httpdService('next')],
    });
    assert.equal(next.status, 201, JSON.stringify(next.body));
    created.push(next.body.id);
    assert.equal(next.body.state, 'running');
    const subnet = (await docker.getNetwork(networkName(next.body.id)).inspect()).IPAM?.Config?.[0]?.Subnet;
    assert.equal(subnet, freedSubnet);
    assertFull(await create('after-next'));

    for (const id of created.slice(1))
      assert.equal((await api('DELETE', `/v1/instances/${id}?wait=30s`)).status, 204);
    assert.deepEqual((await dockerCapacity()).networks, { total: 2, used: 0, free: 2 });
  });
});
