import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { DockerProvider } from '../providers/docker/docker-provider.ts';
import { specHashKey } from '../providers/docker/spec-hash.ts';
import {
  containersOf,
  docker,
  httpdService,
  removeInstances,
  TEST_ALLOWED_IMAGES,
} from './support/docker.ts';

// The real Docker engine.
describe('a provision retried after a crash between create and start', () => {
  const provider = new DockerProvider({ docker, allowedImages: TEST_ALLOWED_IMAGES, stopTimeoutSeconds: 1 });
  const id = `inst_adopt${randomUUID().replaceAll('-', '').slice(0, 16)}`;
  after(() => removeInstances([id]));

  it('makes again a container that was created but never started, instead of adopting it', async () => {
    const request = {
      instance_id: id,
      tenant_id: 'ten_adopt',
      name: 'adopt',
      kind: 'deployment' as const,
      services: [{ ...httpdService('adopt'), resources: { cpu_millis: 0, memory_mb: 0, replicas: 1 } }],
    };
    await provider.provision(request);
    const [first] = await containersOf(id);
    assert.ok(first);
    const inspected = await docker.getContainer(first.Id).inspect();
    // What a crashed attempt leaves: the same name, labels and network, created but never started.
    await docker.getContainer(first.Id).remove({ force: true });
    const half = await docker.createContainer({
      name: inspected.Name.slice(1),
      Image: inspected.Config.Image,
      Labels: inspected.Config.Labels,
      HostConfig: { NetworkMode: inspected.HostConfig.NetworkMode },
    });
    assert.equal((await half.inspect()).State.Status, 'created');

    await provider.provision(request);
    const containers = await containersOf(id);
    assert.equal(containers.length, 1, 'one container');
    assert.notEqual(containers[0]?.Id, half.id, 'the half-made container was replaced');
    assert.equal(containers[0]?.State, 'running');
  });
});

// The real Docker engine.
describe('adoption across worker restarts, with the spec hash an HMAC under the install key', () => {
  const key = specHashKey(randomBytes(32).toString('hex'));
  const worker = () =>
    new DockerProvider({
      docker,
      allowedImages: TEST_ALLOWED_IMAGES,
      specHashKey: key,
      stopTimeoutSeconds: 1,
    });
  const id = `inst_adopt${randomUUID().replaceAll('-', '').slice(0, 16)}`;
  after(() => removeInstances([id]));
  const request = {
    instance_id: id,
    tenant_id: 'ten_adopt',
    name: 'adopt',
    kind: 'deployment' as const,
    services: [
      { ...httpdService('adopt-secret-value'), resources: { cpu_millis: 0, memory_mb: 0, replicas: 1 } },
    ],
  };

  it('a worker with the same key adopts the running container; one with another key replaces it', async () => {
    await worker().provision(request);
    const [first] = await containersOf(id);
    assert.ok(first);
    const label = first.Labels['ctrlplane.spec-hash'] ?? '';
    assert.match(label, /^[0-9a-f]{64}$/);

    await worker().provision(request);
    const [adopted] = await containersOf(id);
    assert.equal(adopted?.Id, first.Id, 'a restarted worker (same key) adopts the container');

    const otherKey = new DockerProvider({
      docker,
      allowedImages: TEST_ALLOWED_IMAGES,
      stopTimeoutSeconds: 1,
    });
    await otherKey.provision(request);
    const [replaced] = await containersOf(id);
    assert.notEqual(
      replaced?.Id,
      first.Id,
      'another key: the label does not match, the container is replaced',
    );
    assert.notEqual(replaced?.Labels['ctrlplane.spec-hash'], label);
  });
});
