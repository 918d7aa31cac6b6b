import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type Dockerode from 'dockerode';
import type { ServiceSpec } from '../domain/instance.ts';
import { dockerClient } from '../providers/docker/docker-client.ts';
import { DockerProvider } from '../providers/docker/docker-provider.ts';
import { orderServices } from '../providers/docker/service-order.ts';
import { PermanentProviderError, type ProvisionRequest } from '../providers/provider.ts';
import { docker, fetchText, TEST_ALLOWED_IMAGES } from './support/docker-fixtures.ts';

/** Runs against the real Docker engine, with the local image built by scripts/setup.sh (nothing is pulled). */
const IMAGE = 'ctrlplane-test/busybox:1';
const provider = new DockerProvider({ docker, allowedImages: TEST_ALLOWED_IMAGES, stopTimeoutSeconds: 5 });
const instanceIds: string[] = [];

function newInstanceId(): string {
  const id = `inst_${randomBytes(6).toString('hex')}`;
  instanceIds.push(id);
  return id;
}

function httpd(name: string, content: string, extra: Partial<ServiceSpec> = {}): ServiceSpec {
  return {
    name,
    image: IMAGE,
    resources: { cpu_millis: 250, memory_mb: 64, replicas: 1 },
    command: [
      '/bin/sh',
      '-c',
      `mkdir -p /www && echo ${content} > /www/index.html && exec httpd -f -p 80 -h /www`,
    ],
    ports: [{ container: 80 }],
    ...extra,
  };
}

function request(
  instanceId: string,
  services: ServiceSpec[],
  labels?: Record<string, string>,
): ProvisionRequest {
  return {
    instance_id: instanceId,
    tenant_id: 'ten_test',
    name: 'test',
    kind: 'deployment',
    services,
    labels,
  };
}

async function projectContainers(instanceId: string): Promise<Dockerode.ContainerInfo[]> {
  return docker.listContainers({ all: true, filters: { label: [`ctrlplane.instance=${instanceId}`] } });
}

async function cleanup(): Promise<void> {
  for (const id of instanceIds) {
    const containers = await docker.listContainers({
      all: true,
      filters: { label: ['ctrlplane.managed=true', `ctrlplane.instance=${id}`] },
    });
    for (const c of containers)
      await docker
        .getContainer(c.Id)
        .remove({ force: true, v: true })
        .catch(() => {});
    const networks = await docker.listNetworks({
      filters: { label: ['ctrlplane.managed=true', `ctrlplane.instance=${id}`] },
    });
    for (const n of networks)
      await docker
        .getNetwork(n.Id)
        .remove()
        .catch(() => {});
  }
}

function publicUrl(
  endpoints: { url: string; public: boolean; service_name?: string }[],
  service: string,
): string {
  const endpoint = endpoints.find((e) => e.public && e.service_name === service);
  assert.ok(endpoint, `no public endpoint for ${service}: ${JSON.stringify(endpoints)}`);
  return endpoint.url;
}

before(async () => {
  await docker.getImage(IMAGE).inspect();
  await cleanup();
});

after(cleanup);

describe('DockerProvider (real engine)', () => {
  it('reports its info and a healthy daemon', async () => {
    assert.deepEqual(provider.info(), { name: 'docker', version: '1.0.0', region: 'local' });
    const health = await provider.healthCheck();
    assert.equal(health.healthy, true, health.message);
    assert.ok(health.latency_ms >= 0);
    assert.ok(!Number.isNaN(Date.parse(health.checked_at)));
  });

  it('reports an unreachable daemon as unhealthy without throwing', async () => {
    const broken = new DockerProvider({ docker: dockerClient('unix:///nonexistent/docker.sock') });
    const health = await broken.healthCheck();
    assert.equal(health.healthy, false);
    assert.match(health.message, /^docker daemon unreachable: /);
  });

  it('rejects a request without services or without a main service', async () => {
    const id = newInstanceId();
    await assert.rejects(provider.provision(request(id, [])), PermanentProviderError);
    await assert.rejects(
      provider.provision(request(id, [httpd('side', 'x', { role: 'sidecar' })])),
      (err: unknown) => err instanceof PermanentProviderError && /main service/.test(err.message),
    );
    assert.equal((await projectContainers(id)).length, 0);
  });

  describe('lifecycle of one instance', () => {
    const id = newInstanceId();
    let firstId = '';
    let url = '';

    it('provisions: the published port serves the content and the endpoints are reported', async () => {
      const details: string[] = [];
      const result = await provider.provision(request(id, [httpd('web', 'hello-one')], { team: 'blue' }), {
        progress: (d) => details.push(d),
      });
      assert.equal(result.provider_ref, `docker:cp-${id}`);
      assert.ok(result.service_refs?.web);
      firstId = result.service_refs.web;
      assert.ok(details.length > 0, 'progress was reported');

      assert.deepEqual(
        result.endpoints.find((e) => !e.public),
        { service_name: 'web', url: `http://cp-${id}-web:80`, port: 80, protocol: 'http', public: false },
      );
      url = publicUrl(result.endpoints, 'web');
      // Published on the operator's address (127.0.0.1 by default), on a port of its range.
      assert.match(url, /^http:\/\/127\.0\.0\.1:3\d{4}$/);
      assert.equal((await fetchText(url)).trim(), 'hello-one');
    });

    it('labels the container and the network, and puts the container on the project network', async () => {
      const info = await docker.getContainer(`cp-${id}-web`).inspect();
      const labels = info.Config.Labels;
      assert.equal(labels['ctrlplane.managed'], 'true');
      assert.equal(labels['ctrlplane.instance'], id);
      assert.equal(labels['ctrlplane.project'], `cp-${id}`);
      assert.equal(labels['ctrlplane.tenant'], 'ten_test');
      assert.equal(labels['ctrlplane.service'], 'web');
      assert.equal(labels['ctrlplane.role'], 'main');
      assert.equal(labels.team, 'blue');
      assert.match(labels['ctrlplane.spec-hash'] ?? '', /^[0-9a-f]{64}$/);
      assert.equal(info.HostConfig.RestartPolicy?.Name, 'unless-stopped');
      assert.equal(info.HostConfig.Memory, 64 * 1024 * 1024);
      assert.equal(info.HostConfig.NanoCpus, 250_000_000);
      assert.deepEqual(info.NetworkSettings.Networks[`cp-${id}-net`]?.Aliases?.includes('web'), true);

      const network = await docker.getNetwork(`cp-${id}-net`).inspect();
      assert.equal(network.Driver, 'bridge');
      assert.equal(network.Labels?.['ctrlplane.project'], `cp-${id}`);
      assert.equal(network.Labels?.['ctrlplane.managed'], 'true');
      assert.equal(network.Labels?.team, 'blue');
    });

    it('reports status running and ready', async () => {
      const status = await provider.status(id);
      assert.equal(status.state, 'running');
      assert.equal(status.ready, true);
      assert.equal(status.services?.web?.state, 'running');
      assert.equal(status.services?.web?.provider_ref, firstId);
      assert.ok(status.endpoints.some((e) => e.public && e.url === url));
    });

    it('adopts the container when provisioned again with the same spec', async () => {
      const result = await provider.provision(request(id, [httpd('web', 'hello-one')], { team: 'blue' }));
      assert.equal(result.service_refs?.web, firstId);
      assert.equal((await projectContainers(id)).length, 1);
      assert.equal(publicUrl(result.endpoints, 'web'), url);
    });

    it('recreates the container when the spec changed, still one container', async () => {
      const result = await provider.provision(request(id, [httpd('web', 'hello-two')], { team: 'blue' }));
      assert.notEqual(result.service_refs?.web, firstId);
      const containers = await projectContainers(id);
      assert.equal(containers.length, 1);
      assert.equal(containers[0]?.Id, result.service_refs?.web);
      url = publicUrl(result.endpoints, 'web');
      assert.equal((await fetchText(url)).trim(), 'hello-two');
    });

    it('stops: the container is not running and the status is stopped', async () => {
      const started = Date.now();
      await provider.stop(id);
      assert.ok(Date.now() - started < 5000, 'docker-init makes the stop quick');
      const info = await docker.getContainer(`cp-${id}-web`).inspect();
      assert.equal(info.State.Running, false);
      const status = await provider.status(id);
      assert.equal(status.state, 'stopped');
      assert.equal(status.ready, false);
      await provider.stop(id); // already stopped: still a success
    });

    it('starts again: running and serving', async () => {
      await provider.start(id);
      await provider.start(id); // already started: still a success
      const info = await docker.getContainer(`cp-${id}-web`).inspect();
      assert.equal(info.State.Running, true);
      const status = await provider.status(id);
      assert.equal(status.state, 'running');
      const fresh = publicUrl(status.endpoints, 'web');
      assert.equal((await fetchText(fresh)).trim(), 'hello-two');
    });

    it('deprovisions: containers and network are gone, a second call succeeds, status is destroyed', async () => {
      await provider.deprovision(id);
      assert.equal((await projectContainers(id)).length, 0);
      await assert.rejects(docker.getNetwork(`cp-${id}-net`).inspect(), (err: { statusCode?: number }) => {
        return err.statusCode === 404;
      });
      await provider.deprovision(id);
      assert.deepEqual(await provider.status(id), {
        state: 'destroyed',
        ready: false,
        restarts: 0,
        endpoints: [],
      });
      await provider.start(id); // nothing to start: a no-op success
      await provider.stop(id);
    });
  });

  it('runs init services first, then main and sidecars; drops containers of removed services', async () => {
    const id = newInstanceId();
    const init: ServiceSpec = {
      name: 'migrate',
      image: IMAGE,
      role: 'init',
      resources: { cpu_millis: 0, memory_mb: 0, replicas: 1 },
      command: ['/bin/sh', '-c', 'echo migrated'],
    };
    const sidecar = httpd('side', 'hello-side', { role: 'sidecar', depends_on: ['web'] });
    const result = await provider.provision(request(id, [sidecar, httpd('web', 'hello-web'), init]));
    assert.deepEqual(Object.keys(result.service_refs ?? {}), ['web', 'side']);
    assert.equal((await fetchText(publicUrl(result.endpoints, 'side'))).trim(), 'hello-side');

    const initInfo = await docker.getContainer(`cp-${id}-migrate`).inspect();
    assert.equal(initInfo.State.ExitCode, 0);
    assert.equal(initInfo.HostConfig.RestartPolicy?.Name, 'no');

    const status = await provider.status(id);
    assert.equal(status.state, 'running', 'a completed init does not count against the instance');
    assert.equal(status.ready, true);
    assert.equal(status.services?.migrate?.state, 'stopped');

    // The sidecar is dropped from the spec: its container goes, the main one is adopted.
    const again = await provider.provision(request(id, [httpd('web', 'hello-web'), init]));
    assert.equal(again.service_refs?.web, result.service_refs?.web);
    const names = (await projectContainers(id)).map((c) => c.Names[0]).sort();
    assert.deepEqual(names, [`/cp-${id}-migrate`, `/cp-${id}-web`]);

    await provider.deprovision(id);
    assert.equal((await projectContainers(id)).length, 0);
  });

  it('fails permanently when an init service exits non-zero', async () => {
    const id = newInstanceId();
    const init: ServiceSpec = {
      name: 'setup',
      image: IMAGE,
      role: 'init',
      resources: { cpu_millis: 0, memory_mb: 0, replicas: 1 },
      command: ['/bin/sh', '-c', 'echo boom-from-init >&2; exit 3'],
    };
    await assert.rejects(provider.provision(request(id, [httpd('web', 'x'), init])), (err: unknown) => {
      assert.ok(err instanceof PermanentProviderError);
      assert.match(err.message, /init service setup exited with code 3/);
      assert.match(err.message, /boom-from-init/);
      return true;
    });
    const names = (await projectContainers(id)).map((c) => c.Names[0]);
    assert.deepEqual(names, [`/cp-${id}-setup`], 'the main service is not created');
    const status = await provider.status(id);
    assert.equal(status.state, 'failed');
    await provider.deprovision(id);
  });

  it('fails permanently, naming the image, when the image is neither present nor pullable', async () => {
    const id = newInstanceId();
    const missing = 'ctrlplane-test/does-not-exist:1';
    await assert.rejects(
      provider.provision(request(id, [httpd('web', 'x', { image: missing })])),
      (err: unknown) => {
        assert.ok(err instanceof PermanentProviderError);
        assert.equal(err.code, 'image_not_found');
        assert.ok(err.message.includes(missing), err.message);
        return true;
      },
    );
    assert.equal((await projectContainers(id)).length, 0);
    await provider.deprovision(id);
  });
});

describe('service order', () => {
  it('groups init → main → sidecar and orders each group by depends_on, stably', () => {
    const svc = (name: string, role: ServiceSpec['role'], depends_on?: string[]): ServiceSpec => ({
      name,
      image: IMAGE,
      role,
      depends_on,
      resources: { cpu_millis: 0, memory_mb: 0, replicas: 1 },
    });
    const ordered = orderServices([
      svc('b', 'sidecar', ['c']),
      svc('a', 'sidecar'),
      svc('c', 'sidecar'),
      svc('m', ''),
      svc('i2', 'init', ['i1']),
      svc('i1', 'init'),
    ]);
    assert.deepEqual(
      ordered.inits.map((s) => s.name),
      ['i1', 'i2'],
    );
    assert.deepEqual(
      ordered.mains.map((s) => s.name),
      ['m'],
    );
    assert.deepEqual(
      ordered.sidecars.map((s) => s.name),
      ['a', 'c', 'b'],
    );
  });
});
