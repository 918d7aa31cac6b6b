import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseIpv4Cidr } from '../config/network-pool.ts';
import { docker, removeTenantLeftovers } from './support/docker.ts';
import {
  createFleet,
  deleteFleet,
  reachFleet,
  removeTenantObjects,
  tenantLeftovers,
} from './support/fleet.ts';
import { apiClient } from './support/http.ts';
import { type Stack, startStack, uniqueTenant } from './support/stack.ts';

const FLEET = 40;

// Real Temporal, PostgreSQL and Docker, the default pool. 40 instances is more than the engine's default
// address pools hold as separate networks (about 30): each instance network has its own subnet of the
// operator's pool instead. The same run with 300 is scripts/fleet-demo.ts (`npm run fleet`).
describe(`a fleet of ${FLEET} instances on one Docker host`, () => {
  const tenant = uniqueTenant('fleet');
  let stack: Stack;
  let api: ReturnType<typeof apiClient>;

  before(async () => {
    await removeTenantLeftovers('ten_fleet_');
    stack = await startStack({ env: { CTRLPLANE_RATE_LIMIT_PER_MINUTE: '0' } });
    api = apiClient(stack.api.url, await stack.token(tenant));
  });

  after(async () => {
    await stack?.close();
    await removeTenantObjects(tenant);
  });

  it('creates them concurrently, each reachable on its endpoint, on distinct pool subnets; deleting them leaves nothing', async () => {
    const { ids } = await createFleet(api, FLEET, 'fleet', { timeoutMs: 300_000 });
    assert.equal(ids.length, FLEET);

    const networks = await docker.listNetworks({ filters: { label: [`ctrlplane.tenant=${tenant}`] } });
    assert.equal(networks.length, FLEET, 'one network per instance');
    const subnets = networks.map((n) => n.IPAM?.Config?.[0]?.Subnet ?? '');
    assert.equal(new Set(subnets).size, FLEET, 'no two share a subnet');
    const pool = parseIpv4Cidr(stack.config.CTRLPLANE_DOCKER_NETWORK_POOL);
    assert.ok(pool);
    for (const subnet of subnets) {
      const block = parseIpv4Cidr(subnet);
      assert.ok(block && block.base >= pool.base && block.base < pool.base + 2 ** (32 - pool.prefix), subnet);
    }

    await reachFleet(api, ids);

    await deleteFleet(api, ids, { timeoutMs: 300_000 });
    assert.deepEqual(await tenantLeftovers(tenant), { containers: 0, networks: 0, volumes: 0 });
  });
});
