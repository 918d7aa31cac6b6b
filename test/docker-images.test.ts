import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { dockerClient } from '../providers/docker/docker-client.ts';
import { DockerProvider } from '../providers/docker/docker-provider.ts';
import { PermanentProviderError } from '../providers/provider.ts';
import {
  docker,
  IMAGE,
  projectContainers,
  service,
  TEST_ALLOWED_IMAGES,
  TestInstances,
} from './support/docker-fixtures.ts';
import { apiClient, eventually } from './support/http.ts';
import { type Stack, startStack, uniqueTenant } from './support/stack.ts';

/**
 * Which images a tenant may run, on the real engine. No registry can be reached from this machine, so every pull
 * really fails here: the tests show the decisions with a copy of the imported test image under a private name
 * (what another tenant's pulled image looks like on the host). Where a registry has to accept a pull, the
 * engine's pull call is replaced by a stub (said so in the test), as no real registry can run here.
 */
const instances = new TestInstances('ten_dockerimages');
const PRIVATE_REPO = `ctrlplane-private-${randomBytes(4).toString('hex')}/app`;
const PRIVATE = `${PRIVATE_REPO}:1`;

before(async () => {
  await instances.cleanup();
  await docker.getImage(IMAGE).tag({ repo: PRIVATE_REPO, tag: '1' });
});
after(async () => {
  await instances.cleanup();
  await docker
    .getImage(PRIVATE)
    .remove()
    .catch(() => {});
});

function isRefusal(pattern: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof PermanentProviderError, String(err));
    assert.equal(err.code, 'image_not_allowed');
    assert.match(err.message, pattern);
    return true;
  };
}

describe('an image already on the host, not on the allowlist', () => {
  it('is refused for a tenant without registry credentials, with a clear error; nothing is created', async () => {
    const provider = new DockerProvider({
      docker,
      allowedImages: TEST_ALLOWED_IMAGES,
      stopTimeoutSeconds: 1,
    });
    const id = instances.newId();
    await assert.rejects(
      provider.provision(instances.request(id, [service('web', 'sleep 3600', { image: PRIVATE })])),
      isRefusal(
        new RegExp(
          `image ${PRIVATE} is not on the operator's image allowlist, so it runs only if it can be pulled ` +
            'anonymously \\(tenant ten_dockerimages has no registry credentials for docker.io\\); the pull failed',
        ),
      ),
    );
    assert.deepEqual(await projectContainers(id), []);
    await provider.deprovision(id);
  });

  it('runs when the operator allowlists its repository, or its registry path', async () => {
    for (const entry of [`docker.io/${PRIVATE_REPO}`, `docker.io/${PRIVATE_REPO.split('/')[0]}/*`, PRIVATE]) {
      const provider = new DockerProvider({
        docker,
        allowedImages: [...TEST_ALLOWED_IMAGES, entry],
        stopTimeoutSeconds: 1,
      });
      const id = instances.newId();
      await provider.provision(instances.request(id, [service('web', 'sleep 3600', { image: PRIVATE })]));
      const [container] = await projectContainers(id);
      assert.equal(container?.State, 'running', entry);
      assert.equal(container?.Image, PRIVATE);
      await provider.deprovision(id);
    }
  });

  it('is refused by image id, even with the image on the host', async () => {
    const { Id } = await docker.getImage(PRIVATE).inspect();
    const provider = new DockerProvider({
      docker,
      allowedImages: [...TEST_ALLOWED_IMAGES, `docker.io/${PRIVATE_REPO}`],
      stopTimeoutSeconds: 1,
    });
    const id = instances.newId();
    await assert.rejects(
      provider.provision(instances.request(id, [service('web', 'sleep 3600', { image: Id })])),
      isRefusal(/is not an image name/),
    );
    assert.deepEqual(await projectContainers(id), []);
  });
});

describe('whose credentials a pull uses (the engine pull is a stub: no registry can be reached here)', () => {
  const platform = { 'docker.io': { username: 'platform', password: 'platform-secret' } };
  const tenantCreds = new Map([['ten_dockerimages', { username: 'tenant-robot', password: 'tenant-token' }]]);

  function withStubbedPull(allowedImages: string[], accept: (auth: unknown) => boolean) {
    const calls: Array<{ ref: string; authconfig: unknown }> = [];
    const engine = dockerClient(process.env.DOCKER_HOST);
    (engine as unknown as { pull: unknown }).pull = async (ref: string, opts: { authconfig?: unknown }) => {
      calls.push({ ref, authconfig: opts.authconfig });
      return Readable.from(
        accept(opts.authconfig)
          ? ['{"status":"Status: Image is up to date"}\n']
          : ['{"errorDetail":{"message":"pull access denied"},"error":"pull access denied"}\n'],
      );
    };
    const provider = new DockerProvider({
      docker: engine,
      registryAuth: platform,
      allowedImages,
      tenantCredentials: {
        lookup: async (tenant, registry) => (registry === 'docker.io' ? tenantCreds.get(tenant) : undefined),
      },
      stopTimeoutSeconds: 1,
    });
    return { provider, calls };
  }

  it('pulls an image outside the allowlist with the tenant’s credentials, never the platform’s, even when present', async () => {
    const { provider, calls } = withStubbedPull(TEST_ALLOWED_IMAGES, (auth) => auth !== undefined);
    const id = instances.newId();
    await provider.provision(instances.request(id, [service('web', 'sleep 3600', { image: PRIVATE })]));
    assert.deepEqual(calls, [
      {
        ref: PRIVATE,
        authconfig: {
          username: 'tenant-robot',
          password: 'tenant-token',
          serveraddress: 'https://index.docker.io/v1/',
        },
      },
    ]);
    await provider.deprovision(id);

    const other = new TestInstances('ten_dockerimages_other');
    const otherId = other.newId();
    await assert.rejects(
      provider.provision(other.request(otherId, [service('web', 'sleep 3600', { image: PRIVATE })])),
      isRefusal(
        /anonymously \(tenant ten_dockerimages_other has no registry credentials.*pull access denied/,
      ),
    );
    assert.equal(calls[1]?.authconfig, undefined, 'the platform’s credentials are not lent to the tenant');
    await other.cleanup();
  });

  it('uses the platform’s credentials only for allowlisted images, and does not pull one that is present', async () => {
    const { provider, calls } = withStubbedPull(
      [...TEST_ALLOWED_IMAGES, 'docker.io/ctrlplane-test/absent'],
      () => false,
    );
    const id = instances.newId();
    await provider.provision(instances.request(id, [service('web', 'sleep 3600')]));
    assert.equal(calls.length, 0, 'the allowlisted test image is on the host: no pull');
    await assert.rejects(
      provider.provision(
        instances.request(id, [service('web', 'sleep 3600', { image: 'ctrlplane-test/absent:1' })]),
      ),
      (err: unknown) => err instanceof PermanentProviderError && err.code === 'image_not_found',
    );
    assert.deepEqual(calls[0]?.authconfig, {
      username: 'platform',
      password: 'platform-secret',
      serveraddress: 'https://index.docker.io/v1/',
    });
    await provider.deprovision(id);
  });
});

describe('a tenant’s registry credentials through the API, used by the worker', () => {
  const tenant = uniqueTenant('dockerimages');
  let stack: Stack;
  let admin: ReturnType<typeof apiClient>;
  let member: ReturnType<typeof apiClient>;
  const created: string[] = [];

  before(async () => {
    stack = await startStack();
    admin = apiClient(stack.api.url, await stack.token(tenant, ['admin']));
    member = apiClient(stack.api.url, await stack.token(tenant));
  });
  after(async () => {
    for (const id of created) await admin('DELETE', `/v1/instances/${id}?wait=30s`).catch(() => {});
    await stack?.close();
  });

  it('stores them per tenant and never returns the password', async () => {
    const put = await admin('PUT', '/v1/registry-credentials/docker.io', {
      username: 'robot',
      password: 'tok-3f9a',
    });
    assert.equal(put.status, 201, JSON.stringify(put.body));
    assert.deepEqual(Object.keys(put.body).sort(), ['created_at', 'registry', 'updated_at', 'username']);
    const again = await admin('PUT', '/v1/registry-credentials/index.docker.io', {
      username: 'robot2',
      password: 'tok-77c1',
    });
    assert.equal(again.status, 200, 'Docker Hub under another name replaces them');
    const list = await admin('GET', '/v1/registry-credentials');
    assert.equal(list.status, 200);
    assert.equal(list.body.items.length, 1);
    assert.equal(list.body.items[0].registry, 'docker.io');
    assert.equal(list.body.items[0].username, 'robot2');
    assert.ok(!JSON.stringify(list.body).includes('tok-'), 'no password in reads');

    const otherTenant = apiClient(stack.api.url, await stack.token(uniqueTenant('dockerimages'), ['admin']));
    assert.deepEqual((await otherTenant('GET', '/v1/registry-credentials')).body.items, []);
    assert.equal((await member('GET', '/v1/registry-credentials')).status, 403);
    const bad = await admin('PUT', '/v1/registry-credentials/notaregistry', { username: 'u', password: 'p' });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.errors?.[0]?.field, 'registry');
    const empty = await admin('PUT', '/v1/registry-credentials/ghcr.io', { username: 'u' });
    assert.equal(empty.status, 400);
    assert.equal(empty.body.errors?.[0]?.field, 'password');
  });

  it('the worker pulls a non-allowlisted image with them; the instance fails with a clear error', async () => {
    const res = await admin('POST', '/v1/instances', {
      name: 'private-image',
      services: [{ name: 'web', image: PRIVATE, command: ['sleep', '3600'] }],
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    created.push(res.body.id);
    const failed = await eventually(
      'the instance to fail',
      async () => {
        const row = (await admin('GET', `/v1/instances/${res.body.id}`)).body;
        return row.state === 'failed' ? row : undefined;
      },
      60_000,
    );
    assert.match(
      failed.error,
      new RegExp(
        `image ${PRIVATE} is not on the operator's image allowlist.*with tenant ${tenant}'s registry credentials for docker\\.io`,
      ),
    );
    assert.ok(!failed.error.includes('tok-'), 'the password is not in the error');
    assert.equal(
      (await docker.listContainers({ all: true, filters: { label: [`ctrlplane.instance=${res.body.id}`] } }))
        .length,
      0,
    );
  });

  it('removes them', async () => {
    assert.equal((await admin('DELETE', '/v1/registry-credentials/docker.io')).status, 204);
    assert.equal((await admin('DELETE', '/v1/registry-credentials/docker.io')).status, 404);
    assert.deepEqual((await admin('GET', '/v1/registry-credentials')).body.items, []);
  });
});
