import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ServiceSpec } from '../domain/instance.ts';
import { DockerProvider } from '../providers/docker/docker-provider.ts';
import { PermanentProviderError } from '../providers/provider.ts';
import {
  docker,
  exec,
  fetchText,
  IMAGE,
  projectContainers,
  projectVolumes,
  publicUrl,
  service,
  TEST_ALLOWED_IMAGES,
  TestInstances,
} from './support/docker-fixtures.ts';

/** A three-service instance on the real engine: init → shared volume → main httpd, plus an idle sidecar. */
const provider = new DockerProvider({ docker, allowedImages: TEST_ALLOWED_IMAGES, stopTimeoutSeconds: 2 });
const instances = new TestInstances('ten_dockerproject');
const MIB = 1024 * 1024;

before(async () => {
  await docker.getImage(IMAGE).inspect();
  await instances.cleanup();
});
after(() => instances.cleanup());

function threeServices(webMemoryMb = 64): ServiceSpec[] {
  const seed = service('seed', 'cp /config/page.html /data/index.html && echo seeded', {
    role: 'init',
    volumes: [{ name: 'content', mount_path: '/data' }],
    config_files: [
      { name: 'page', path: '/config/page.html', format: 'text', content: 'hello from the init\n' },
    ],
  } as Partial<ServiceSpec>);
  const web = service('web', 'exec httpd -f -p 80 -h /www', {
    resources: { cpu_millis: 250, memory_mb: webMemoryMb, replicas: 1 },
    ports: [{ container: 80 }],
    env: { GREETING: 'hi there' },
    volumes: [{ name: 'content', mount_path: '/www' }],
    config_files: [
      { name: 'settings.json', path: '/etc/app/', format: 'json', content: { mode: 'test', level: 2 } },
      { name: 'app.env', path: '/etc/app/app.env', format: 'env', content: { A: '1', B: 'two' } },
    ],
  } as Partial<ServiceSpec>);
  const idle = service('idle', 'echo sidecar up; exec sleep 3600', {
    role: 'sidecar',
    depends_on: ['web'],
    resources: { cpu_millis: 0, memory_mb: 32, replicas: 1 },
    volumes: [{ name: 'content', mount_path: '/shared' }],
  });
  return [idle, web, seed];
}

describe('a three-service instance with a shared volume', () => {
  const id = instances.newId();
  const volume = `cp-${id}-content`;
  let url = '';
  let webId = '';

  it('provisions: the main endpoint serves the file the init wrote into the shared volume', async () => {
    const result = await provider.provision(instances.request(id, threeServices()));
    assert.deepEqual(Object.keys(result.service_refs ?? {}), ['web', 'idle']);
    webId = result.service_refs?.web ?? '';
    url = publicUrl(result.endpoints, 'web');
    assert.equal(await fetchText(`${url}/index.html`), 'hello from the init\n');

    const volumes = await projectVolumes(id);
    assert.deepEqual(
      volumes.map((v) => v.Name),
      [volume],
      'one volume, shared by the three services',
    );
    const labels = volumes[0]?.Labels ?? {};
    assert.equal(labels['ctrlplane.instance'], id);
    assert.equal(labels['ctrlplane.project'], `cp-${id}`);
    assert.equal(labels['ctrlplane.tenant'], instances.tenantId);
    assert.equal(labels['ctrlplane.volume'], 'content');
    assert.equal(labels['ctrlplane.managed'], 'true');

    for (const name of ['seed', 'web', 'idle']) {
      const info = await docker.getContainer(`cp-${id}-${name}`).inspect();
      assert.deepEqual(
        info.Mounts.map((m) => [m.Type, m.Name]),
        [['volume', volume]],
      );
    }
  });

  it('honours env, config files (rendered by format) and the limits', async () => {
    const web = `cp-${id}-web`;
    const info = await docker.getContainer(web).inspect();
    assert.ok(info.Config.Env.includes('GREETING=hi there'));
    assert.equal(info.HostConfig.Memory, 64 * MIB);
    assert.equal(info.HostConfig.MemorySwap, 64 * MIB);
    assert.equal(info.HostConfig.NanoCpus, 250_000_000);
    assert.equal(info.HostConfig.RestartPolicy?.Name, 'unless-stopped');

    const settings = await exec(web, ['cat', '/etc/app/settings.json']);
    assert.deepEqual(JSON.parse(settings.stdout), { mode: 'test', level: 2 });
    assert.equal((await exec(web, ['cat', '/etc/app/app.env'])).stdout, 'A=1\nB=two\n');
    assert.equal(
      (await exec(`cp-${id}-idle`, ['cat', '/shared/index.html'])).stdout,
      'hello from the init\n',
    );
  });

  it('reports each service and the aggregate', async () => {
    const status = await provider.status(id);
    assert.equal(status.state, 'running');
    assert.equal(status.ready, true);
    assert.equal(status.services?.seed?.state, 'stopped', 'the completed init');
    assert.equal(status.services?.web?.state, 'running');
    assert.equal(status.services?.idle?.state, 'running');
  });

  it('scales memory 64 → 128 MiB and CPU in place: same container, new limits', async () => {
    await provider.scale(id, { cpu_millis: 500, memory_mb: 128, replicas: 1 });
    const info = await docker.getContainer(`cp-${id}-web`).inspect();
    assert.equal(info.Id, webId, 'not recreated');
    assert.equal(info.HostConfig.Memory, 128 * MIB);
    assert.equal(info.HostConfig.MemorySwap, 128 * MIB);
    assert.equal(info.HostConfig.NanoCpus, 500_000_000);
    assert.equal(info.State.Running, true);
    const sidecar = await docker.getContainer(`cp-${id}-idle`).inspect();
    assert.equal(sidecar.HostConfig.Memory, 32 * MIB, 'only the main service is scaled');
    await provider.scale(id, { cpu_millis: 500, memory_mb: 128, replicas: 1 }); // again: a no-op
  });

  it('a provision after the scale adopts the scaled container; one with other limits updates it in place', async () => {
    const scaled = threeServices(128).map((s) =>
      s.name === 'web' ? { ...s, resources: { cpu_millis: 500, memory_mb: 128, replicas: 1 } } : s,
    );
    const again = await provider.provision(instances.request(id, scaled));
    assert.equal(again.service_refs?.web, webId);

    const back = await provider.provision(instances.request(id, threeServices(64)));
    assert.equal(back.service_refs?.web, webId);
    const info = await docker.getContainer(webId).inspect();
    assert.equal(info.HostConfig.Memory, 64 * MIB);
    assert.equal(info.HostConfig.NanoCpus, 250_000_000);
    assert.equal((await projectContainers(id)).length, 3);
  });

  it('refuses replicas other than 1 as an invalid request; memory_mb 0 is the default, never no limit', async () => {
    await assert.rejects(
      provider.scale(id, { cpu_millis: 250, memory_mb: 64, replicas: 3 }),
      (err: unknown) => {
        assert.ok(err instanceof PermanentProviderError);
        assert.equal(err.code, 'invalid_request');
        assert.match(err.message, /replicas must be 1/);
        return true;
      },
    );
    await provider.scale(id, { cpu_millis: 250, memory_mb: 0, replicas: 1 });
    const defaulted = await docker.getContainer(webId).inspect();
    assert.equal(defaulted.Id, webId, 'updated in place');
    assert.equal(defaulted.HostConfig.Memory, 512 * MIB, 'the operator default (512 MiB), not unlimited');
    await provider.scale(id, { cpu_millis: 250, memory_mb: 64, replicas: 1 });
    await assert.rejects(
      provider.scale(instances.newId(), { cpu_millis: 250, memory_mb: 64, replicas: 1 }),
      (err: unknown) => err instanceof PermanentProviderError && /no main container/.test(err.message),
    );
    const info = await docker.getContainer(webId).inspect();
    assert.equal(info.HostConfig.Memory, 64 * MIB, 'unchanged by the refused scales');
  });

  it('sums resource usage across the running containers', async () => {
    const usage = await provider.resources(id);
    assert.equal(usage.memory_limit_mb, 64 + 32, 'web 64 MiB + idle 32 MiB (the init is not running)');
    assert.ok(usage.memory_used_mb > 0, JSON.stringify(usage));
    assert.ok(usage.memory_used_mb < 96);
    assert.ok(usage.cpu_percent >= 0);
    assert.ok(usage.network_in_mb >= 0 && usage.network_out_mb >= 0);
    assert.deepEqual(await provider.resources(instances.newId()), {
      cpu_percent: 0,
      memory_used_mb: 0,
      memory_limit_mb: 0,
      network_in_mb: 0,
      network_out_mb: 0,
    });
  });

  it('restarts the main and the sidecar, not the init', async () => {
    const startedAt = async (name: string) =>
      (await docker.getContainer(`cp-${id}-${name}`).inspect()).State.StartedAt;
    const before = {
      seed: await startedAt('seed'),
      web: await startedAt('web'),
      idle: await startedAt('idle'),
    };
    await provider.restart(id);
    assert.equal(await startedAt('seed'), before.seed);
    assert.notEqual(await startedAt('web'), before.web);
    assert.notEqual(await startedAt('idle'), before.idle);
    // A randomly published host port is assigned anew when the container starts again.
    url = publicUrl((await provider.status(id)).endpoints, 'web');
    assert.equal(await fetchText(`${url}/index.html`), 'hello from the init\n');
  });

  it('stop/start keeps the volume content', async () => {
    const written = await exec(`cp-${id}-idle`, ['/bin/sh', '-c', 'echo kept > /shared/extra.txt']);
    assert.equal(written.code, 0);
    await provider.stop(id);
    assert.equal((await provider.status(id)).state, 'stopped');
    const usage = await provider.resources(id);
    assert.equal(usage.memory_limit_mb, 0, 'nothing runs: zero usage');
    await provider.start(id);
    const status = await provider.status(id);
    assert.equal(status.state, 'running');
    const fresh = publicUrl(status.endpoints, 'web');
    assert.equal(await fetchText(`${fresh}/extra.txt`), 'kept\n');
    assert.equal(await fetchText(`${fresh}/index.html`), 'hello from the init\n');
  });

  it('deprovision removes the containers, the network and the volumes', async () => {
    await provider.deprovision(id);
    assert.equal((await projectContainers(id)).length, 0);
    assert.equal((await projectVolumes(id)).length, 0);
    await assert.rejects(
      docker.getVolume(volume).inspect(),
      (err: { statusCode?: number }) => err.statusCode === 404,
    );
    await assert.rejects(
      docker.getNetwork(`cp-${id}-net`).inspect(),
      (err: { statusCode?: number }) => err.statusCode === 404,
    );
    await provider.deprovision(id);
    assert.equal((await provider.status(id)).state, 'destroyed');
  });
});

describe('spec validation', () => {
  it('rejects bad config files, volumes and replicas before creating anything', async () => {
    const id = instances.newId();
    const bad: Array<[string, Partial<ServiceSpec> & Record<string, unknown>]> = [
      ['relative config path', { config_files: [{ name: 'x', path: 'etc/x', content: 'x' }] }],
      ['config path with ..', { config_files: [{ name: 'x', path: '/etc/../x', content: 'x' }] }],
      [
        'unknown format',
        { config_files: [{ name: 'x', path: '/x', format: 'toml' as never, content: 'x' }] },
      ],
      ['relative mount path', { volumes: [{ name: 'data', mount_path: 'data' }] }],
      ['bad volume name', { volumes: [{ name: '-x', mount_path: '/data' }] }],
      ['replicas', { resources: { cpu_millis: 0, memory_mb: 0, replicas: 2 } }],
      ['memory below 6 MiB', { resources: { cpu_millis: 0, memory_mb: 4, replicas: 1 } }],
      ['health check interval', { health_check: { port: 80, interval: 5 } }],
    ];
    for (const [what, extra] of bad) {
      await assert.rejects(
        provider.provision(instances.request(id, [service('web', 'true', extra as Partial<ServiceSpec>)])),
        (err: unknown) => err instanceof PermanentProviderError && err.code === 'invalid_spec',
        what,
      );
    }
    assert.equal((await projectContainers(id)).length, 0);
    assert.equal((await projectVolumes(id)).length, 0);
  });
});
