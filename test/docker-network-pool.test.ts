import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { loadConfig } from '../config/env.ts';
import { parseNetworkPool } from '../config/network-pool.ts';
import { DockerProvider } from '../providers/docker/docker-provider.ts';
import { networkName } from '../providers/docker/naming.ts';
import { ephemeralSpecHashKey } from '../providers/docker/spec-hash.ts';
import { SubnetPool } from '../providers/docker/subnet-pool.ts';
import { PermanentProviderError, type ProvisionRequest } from '../providers/provider.ts';
import {
  containersOf,
  docker,
  httpdService,
  removeInstances,
  TEST_ALLOWED_IMAGES,
} from './support/docker.ts';
import { testNetworkPool } from './support/network-pool.ts';

// The real Docker engine. Two DockerProvider objects on one engine stand for two workers.
describe('instance networks from the operator pool', () => {
  const pool = testNetworkPool(2);
  // Workers of one installation share the spec-hash key.
  const specHashKey = ephemeralSpecHashKey();
  const workerA = new DockerProvider({
    docker,
    allowedImages: TEST_ALLOWED_IMAGES,
    stopTimeoutSeconds: 1,
    networkPool: pool.settings,
    specHashKey,
  });
  const workerB = new DockerProvider({
    docker,
    allowedImages: TEST_ALLOWED_IMAGES,
    stopTimeoutSeconds: 1,
    networkPool: pool.settings,
    specHashKey,
  });
  const ids: string[] = [];
  const newId = () => {
    const id = `inst_pool${randomUUID().replaceAll('-', '').slice(0, 17)}`;
    ids.push(id);
    return id;
  };
  const request = (id: string): ProvisionRequest => ({
    instance_id: id,
    tenant_id: 'ten_netpool',
    name: 'pool',
    kind: 'deployment',
    services: [{ ...httpdService('pool'), resources: { cpu_millis: 0, memory_mb: 0, replicas: 1 } }],
  });
  const subnetOf = async (id: string) => {
    const info = await docker.getNetwork(networkName(id)).inspect();
    return info.IPAM?.Config?.[0]?.Subnet as string | undefined;
  };
  after(() => removeInstances(ids));

  it('gives concurrent creates from two workers distinct subnets of the pool, and refuses the one that does not fit', async () => {
    const [a, b, c] = [newId(), newId(), newId()];
    const results = await Promise.allSettled([
      workerA.provision(request(a)),
      workerB.provision(request(b)),
      workerA.provision(request(c)),
    ]);
    const fulfilled = results.filter((r) => r.status === 'fulfilled');
    const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    assert.equal(fulfilled.length, 2, 'two instances fit');
    assert.equal(rejected.length, 1, 'the third does not');
    assert.ok(rejected[0]?.reason instanceof PermanentProviderError, String(rejected[0]?.reason));
    assert.equal(rejected[0].reason.code, 'capacity_exhausted');
    assert.match(
      rejected[0].reason.message,
      new RegExp(`network pool ${pool.settings.cidr.replaceAll('.', '\\.')}`),
    );

    const placed = [a, b, c].filter((_, i) => results[i]?.status === 'fulfilled');
    const subnets = await Promise.all(placed.map(subnetOf));
    const [low, high] = [pool.settings.base, pool.settings.base + 64];
    assert.equal(new Set(subnets).size, 2, `distinct subnets: ${subnets.join(', ')}`);
    for (const subnet of subnets) {
      assert.match(subnet ?? '', /\/27$/);
      const first = subnet?.split('/')[0]?.split('.').map(Number) ?? [];
      const n = first.reduce((acc, o) => acc * 256 + o, 0);
      assert.ok(n >= low && n < high, `${subnet} lies in ${pool.settings.cidr}`);
    }
    // Isolation as before: each instance's container is on its own network only.
    for (const id of placed) {
      const [container] = await containersOf(id);
      assert.ok(container);
      assert.deepEqual(Object.keys(container.NetworkSettings?.Networks ?? {}), [networkName(id)]);
    }

    const capacity = await workerB.capacity([]);
    assert.deepEqual(capacity.networks, { total: 2, used: 2, free: 0 });
    assert.equal(capacity.instances.free, 0);

    // A delete frees its subnet: the refused instance now fits.
    const refused = [a, b, c].find((_, i) => results[i]?.status === 'rejected') as string;
    await workerA.deprovision(placed[0] as string);
    assert.deepEqual((await workerA.capacity([])).networks, { total: 2, used: 1, free: 1 });
    await workerB.provision(request(refused));
    assert.equal(await subnetOf(refused), subnets[0]);
    await Promise.all([workerA.deprovision(placed[1] as string), workerA.deprovision(refused)]);
    assert.deepEqual((await workerA.capacity([])).networks, { total: 2, used: 0, free: 2 });
  });

  it('counts admitted instances whose network does not exist yet as taken', async () => {
    const admitted = [newId(), newId()];
    const capacity = await workerA.capacity(admitted);
    assert.deepEqual(capacity.networks, { total: 2, used: 2, free: 0 });
    assert.equal(capacity.instances.free, 0);
  });

  it('adopts an instance network that already exists by name (made before the pool), and keeps it', async () => {
    const id = newId();
    // What an earlier version made: a network outside the pool (it took one of the engine's default pools;
    // here a subnet of another test range, so the test does not depend on a default pool being free).
    let outside = testNetworkPool(2).settings;
    while (outside.cidr === pool.settings.cidr) outside = testNetworkPool(2).settings;
    const legacy = await docker.createNetwork({
      Name: networkName(id),
      Driver: 'bridge',
      Labels: { 'ctrlplane.managed': 'true', 'ctrlplane.instance': id, 'ctrlplane.project': `cp-${id}` },
      IPAM: { Driver: 'default', Config: [{ Subnet: outside.cidr.replace(/\/\d+$/, '/27') }] },
    });
    const legacySubnet = await subnetOf(id);
    await workerA.provision(request(id));
    const networks = await docker.listNetworks({ filters: { name: [networkName(id)] } });
    assert.deepEqual(
      networks.map((n) => n.Id),
      [legacy.id],
      'the same network, not a second one',
    );
    assert.equal(await subnetOf(id), legacySubnet);
    const [container] = await containersOf(id);
    assert.equal(container?.State, 'running');
    const capacity = await workerA.capacity([id]);
    assert.equal(capacity.networks.used, 0, 'it uses no subnet of the pool');
    await workerA.deprovision(id);
    assert.deepEqual(await docker.listNetworks({ filters: { name: [networkName(id)] } }), []);
  });

  it('refuses a pool that is not a private IPv4 range or a subnet prefix that does not fit, naming the variable', () => {
    const bad: [Record<string, string>, RegExp][] = [
      [
        { CTRLPLANE_DOCKER_NETWORK_POOL: '10.210.0.0/33' },
        /CTRLPLANE_DOCKER_NETWORK_POOL: must be an IPv4 range/,
      ],
      [{ CTRLPLANE_DOCKER_NETWORK_POOL: '10.210.0.1/16' }, /CTRLPLANE_DOCKER_NETWORK_POOL: .*host bits zero/],
      [
        { CTRLPLANE_DOCKER_NETWORK_POOL: '8.8.0.0/16' },
        /CTRLPLANE_DOCKER_NETWORK_POOL: must lie inside a private range/,
      ],
      [{ CTRLPLANE_DOCKER_NETWORK_PREFIX: '28' }, /CTRLPLANE_DOCKER_NETWORK_PREFIX: .*at most 27/],
      [
        { CTRLPLANE_DOCKER_NETWORK_POOL: '10.210.0.0/27', CTRLPLANE_DOCKER_NETWORK_PREFIX: '27' },
        /CTRLPLANE_DOCKER_NETWORK_PREFIX: must be an integer above the pool's \/27/,
      ],
    ];
    for (const [env, message] of bad) assert.throws(() => loadConfig(env), message);
    const good = loadConfig({
      CTRLPLANE_DOCKER_NETWORK_POOL: '172.20.0.0/14',
      CTRLPLANE_DOCKER_NETWORK_PREFIX: '24',
    });
    assert.equal(good.CTRLPLANE_DOCKER_NETWORK_POOL, '172.20.0.0/14');
  });
});

describe('the subnet arithmetic of the pool', () => {
  const parsed = parseNetworkPool('10.210.0.0/16', 27);
  assert.ok('pool' in parsed);
  const pool = new SubnetPool(parsed.pool);

  it('numbers the /27s of a /16 and gives each its first address as gateway', () => {
    assert.equal(pool.size, 2048);
    assert.deepEqual(pool.subnet(0), { index: 0, subnet: '10.210.0.0/27', gateway: '10.210.0.1' });
    assert.deepEqual(pool.subnet(2047), {
      index: 2047,
      subnet: '10.210.255.224/27',
      gateway: '10.210.255.225',
    });
  });

  it('finds the pool subnets any engine network overlaps, smaller, larger or outside', () => {
    assert.deepEqual(pool.overlapping('10.210.0.16/28'), [0]);
    assert.deepEqual(pool.overlapping('10.210.1.0/24'), [8, 9, 10, 11, 12, 13, 14, 15]);
    assert.equal(pool.overlapping('10.0.0.0/8').length, 2048);
    assert.deepEqual(pool.overlapping('172.17.0.0/16'), []);
    assert.deepEqual(pool.overlapping('10.211.0.0/27'), []);
    assert.deepEqual(pool.overlapping('fd00::/64'), []);
  });

  it('picks only free subnets, and none when all are used', () => {
    const used = new Set(Array.from({ length: 2047 }, (_, i) => (i >= 1000 ? i + 1 : i)));
    assert.equal(pool.pickFree(used)?.index, 1000);
    used.add(1000);
    assert.equal(pool.pickFree(used), undefined);
  });
});
