import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { dockerClient } from '../providers/docker/docker-client.ts';
import { DockerProvider } from '../providers/docker/docker-provider.ts';
import { PermanentProviderError } from '../providers/provider.ts';
import {
  docker,
  exec,
  IMAGE,
  service,
  TEST_ALLOWED_IMAGES,
  TestInstances,
  waitFor,
} from './support/docker-fixtures.ts';

/** Health checks and readiness, an engine that is down, and pulls with registry credentials. */
const provider = new DockerProvider({ docker, allowedImages: TEST_ALLOWED_IMAGES, stopTimeoutSeconds: 1 });
const instances = new TestInstances('ten_dockerhealth');
const MS = 1_000_000; // Go durations are nanoseconds

before(async () => {
  await docker.getImage(IMAGE).inspect();
  await instances.cleanup();
});
after(() => instances.cleanup());

describe('health_check', () => {
  it('becomes a Docker HEALTHCHECK, and status.ready follows the container health', async () => {
    const id = instances.newId();
    await provider.provision(
      instances.request(id, [
        service('web', 'mkdir -p /www; (sleep 1.5; echo ok > /www/healthz) & exec httpd -f -p 80 -h /www', {
          health_check: { path: '/healthz', port: 80, interval: 300 * MS, timeout: 1000 * MS, retries: 1 },
        }),
        service('tcp', 'exec httpd -f -p 8080 -h /', {
          role: 'sidecar',
          health_check: { port: 8080, interval: 300 * MS, retries: 2 },
        }),
      ]),
    );

    const info = await docker.getContainer(`cp-${id}-web`).inspect();
    const healthcheck = info.Config.Healthcheck;
    assert.equal(healthcheck?.Test?.[0], 'CMD-SHELL');
    assert.match(healthcheck?.Test?.[1] ?? '', /wget -q -O \/dev\/null 'http:\/\/127\.0\.0\.1:80\/healthz'/);
    assert.equal(healthcheck?.Interval, 300 * MS);
    assert.equal(healthcheck?.Timeout, 1000 * MS);
    assert.equal(healthcheck?.Retries, 1);

    const early = await provider.status(id);
    assert.equal(early.state, 'running');
    assert.equal(early.services?.web?.state, 'running');
    assert.equal(early.services?.web?.ready, false, 'health starting: not ready');
    assert.equal(early.ready, false);

    const ready = await waitFor('the instance to be ready', async () => {
      const status = await provider.status(id);
      return status.ready ? status : undefined;
    });
    assert.equal(ready.services?.web?.ready, true);
    assert.equal(ready.services?.tcp?.ready, true, 'the TCP check (nc) passes too');

    assert.equal((await exec(`cp-${id}-web`, ['rm', '/www/healthz'])).code, 0);
    const unhealthy = await waitFor('web to turn unhealthy', async () => {
      const status = await provider.status(id);
      return status.services?.web?.ready === false ? status : undefined;
    });
    assert.equal(unhealthy.state, 'running', 'the container still runs');
    assert.equal(unhealthy.ready, false);
    assert.match(unhealthy.services?.web?.message ?? '', /health check unhealthy/);
    assert.match(unhealthy.message ?? '', /web: health check unhealthy/);
    await provider.deprovision(id);
  });
});

describe('with the engine down', () => {
  const down = new DockerProvider({ docker: dockerClient('unix:///nonexistent/docker.sock') });
  const id = 'inst_enginedown';
  const retryable = (err: unknown) => {
    assert.ok(err instanceof Error);
    assert.ok(!(err instanceof PermanentProviderError), `${err.name}: ${err.message}`);
    return true;
  };

  it('every call fails with an ordinary (retryable) error', async () => {
    await assert.rejects(down.provision(instances.request(id, [service('web', 'true')])), retryable);
    await assert.rejects(down.deprovision(id), retryable);
    await assert.rejects(down.start(id), retryable);
    await assert.rejects(down.stop(id), retryable);
    await assert.rejects(down.restart(id), retryable);
    await assert.rejects(down.scale(id, { cpu_millis: 100, memory_mb: 64, replicas: 1 }), retryable);
    await assert.rejects(down.status(id), retryable);
    await assert.rejects(down.resources(id), retryable);
    await assert.rejects(async () => {
      for await (const _ of down.logs(id, {})) {
        // nothing
      }
    }, retryable);
    assert.equal((await down.healthCheck()).healthy, false);
  });
});

describe('images and registry credentials', () => {
  const auth = { 'registry.example.com': { username: 'robot', password: 's3cret' } };

  function stubbedPull(pull: (ref: string, opts: Record<string, unknown>) => Promise<NodeJS.ReadableStream>) {
    const engine = dockerClient(process.env.DOCKER_HOST);
    (engine as unknown as { pull: typeof pull }).pull = pull;
    return new DockerProvider({
      docker: engine,
      registryAuth: auth,
      // The platform's credentials are used only for allowlisted images (see docker-images.test.ts).
      allowedImages: [...TEST_ALLOWED_IMAGES, 'registry.example.com/*'],
      stopTimeoutSeconds: 1,
    });
  }

  it('pulls an absent image with the credentials of its registry; a refused pull is permanent, naming the image', async () => {
    const calls: Array<{ ref: string; opts: Record<string, unknown> }> = [];
    const stub = stubbedPull(async (ref, opts) => {
      calls.push({ ref, opts });
      return Readable.from([
        '{"status":"Pulling from team/app"}\n',
        '{"errorDetail":{"message":"unauthorized: authentication required"},"error":"unauthorized"}\n',
      ]);
    });
    const image = 'registry.example.com/team/app:1';
    const id = instances.newId();
    await assert.rejects(
      stub.provision(instances.request(id, [service('web', 'true', { image })])),
      (err: unknown) => {
        assert.ok(err instanceof PermanentProviderError);
        assert.equal(err.code, 'image_not_found');
        assert.ok(err.message.includes(image), err.message);
        assert.match(err.message, /unauthorized/);
        return true;
      },
    );
    assert.equal(calls.length, 1);
    assert.equal(calls[0]?.ref, image);
    assert.deepEqual(calls[0]?.opts.authconfig, {
      username: 'robot',
      password: 's3cret',
      serveraddress: 'registry.example.com',
    });

    calls.length = 0;
    await assert.rejects(
      stub.provision(instances.request(id, [service('web', 'true', { image: 'nothere/app:1' })])),
    );
    assert.equal(calls[0]?.opts.authconfig, undefined, 'no credentials for Docker Hub');
    await stub.deprovision(id);
  });

  it('a pull that cannot reach the daemon stays retryable', async () => {
    const stub = stubbedPull(async () => {
      throw Object.assign(new Error('connect ECONNREFUSED /var/run/docker.sock'), { code: 'ECONNREFUSED' });
    });
    const id = instances.newId();
    await assert.rejects(
      stub.provision(instances.request(id, [service('web', 'true', { image: 'registry.example.com/x:1' })])),
      (err: unknown) => err instanceof Error && !(err instanceof PermanentProviderError),
    );
    await stub.deprovision(id);
  });

  it('reports its capabilities', () => {
    assert.deepEqual(provider.capabilities(), [
      'provision',
      'deploy',
      'scale',
      'logs',
      'volumes',
      'exec',
      'restart:service',
      'stop:signal',
      'stop:timeout',
    ]);
  });
});
