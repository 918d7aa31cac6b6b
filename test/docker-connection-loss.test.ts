import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DockerConnectionClosed, dockerClient } from '../providers/docker/docker-client.ts';
import { DockerProvider } from '../providers/docker/docker-provider.ts';
import { PermanentProviderError } from '../providers/provider.ts';
import {
  docker,
  IMAGE,
  service,
  sleep,
  TEST_ALLOWED_IMAGES,
  TestInstances,
  waitFor,
} from './support/docker-fixtures.ts';
import { DockerSocketProxy } from './support/docker-socket-proxy.ts';

/**
 * The real engine, reached through a unix-socket proxy that the test cuts while the engine is still answering a
 * call: the connection closes after the response began and before its body ended. Such a call must fail (and so
 * be retried by the activity), never stay pending: a pending call with its socket gone keeps nothing alive, so
 * a test was cancelled with "Promise resolution is still pending but the event loop has already resolved" and an
 * activity waited for its heartbeat timeout.
 */
const instances = new TestInstances('ten_dockerconnloss');
const proxy = new DockerSocketProxy(`/tmp/ctrlplane-connloss-${process.pid}.sock`);

before(async () => {
  await docker.getImage(IMAGE).inspect();
  await instances.cleanup();
  await proxy.open();
});
after(async () => {
  await proxy.cut();
  await instances.cleanup();
});

describe('a connection to the engine that closes mid-answer', () => {
  it('fails a dockerode call instead of leaving it pending', async () => {
    const container = await docker.createContainer({
      Image: IMAGE,
      Cmd: ['sleep', '30'],
      // Labelled like an instance's, so the cleanup of an interrupted run finds it.
      Labels: {
        'ctrlplane.managed': 'true',
        'ctrlplane.tenant': instances.tenantId,
        'ctrlplane.instance': instances.newId(),
      },
    });
    try {
      await container.start();
      const viaProxy = dockerClient(proxy.dockerHost);
      // `wait` answers with its headers at once and with its body when the container exits.
      const waiting = viaProxy.getContainer(container.id).wait();
      await sleep(300);
      await proxy.cut();
      await assert.rejects(waiting, DockerConnectionClosed);
    } finally {
      await container.remove({ force: true });
      await proxy.open();
    }
  });

  it('fails a provision waiting for an init service with an ordinary, retryable error', async () => {
    const provider = new DockerProvider({
      docker: dockerClient(proxy.dockerHost),
      allowedImages: TEST_ALLOWED_IMAGES,
      stopTimeoutSeconds: 1,
    });
    const id = instances.newId();
    const provisioning = provider.provision(
      instances.request(id, [
        service('migrate', 'sleep 30', { role: 'init' }),
        service('web', 'exec sleep 300'),
      ]),
    );
    await waitFor('the init container to run', async () => {
      const [init] = await docker.listContainers({
        filters: { label: [`ctrlplane.instance=${id}`, 'ctrlplane.service=migrate'] },
      });
      return init?.State === 'running';
    });
    await sleep(300);
    await proxy.cut();
    await assert.rejects(provisioning, (err: unknown) => {
      assert.ok(err instanceof Error);
      assert.ok(!(err instanceof PermanentProviderError), `${err.name}: ${err.message}`);
      assert.match(err.message, /closed the connection/);
      return true;
    });
    await proxy.open();
  });
});
