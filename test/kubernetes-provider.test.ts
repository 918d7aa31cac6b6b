/**
 * The Kubernetes provider, end to end through @kubernetes/client-node over HTTP.
 *
 * Where it runs: no Kubernetes cluster can run on this machine, so by default every test here talks to the FAKE API
 * server in test/support/fake-kubernetes (a loopback HTTP server that keeps objects in memory and answers like the
 * real API server; it runs no controllers and no pods). When KUBECONFIG is set, the tests of the "shared" suite run
 * against that real cluster instead (in a throw-away namespace) and the fake is not started; the tests that need the
 * fake's hooks (simulated pods, log buffers, seeded metrics, injected faults) are then simply not registered. When
 * KUBECONFIG is not set, the real-cluster variant is not registered either — nothing is reported as skipped or passed
 * that did not run.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  ApiException,
  ApisApi,
  KubeConfig,
  type KubernetesObject,
  KubernetesObjectApi,
  PatchStrategy,
  type V1ConfigMap,
  type V1Deployment,
  type V1Secret,
  type V1Service,
  type V1StatefulSet,
} from '@kubernetes/client-node';
import type { ServiceSpec } from '../domain/instance.ts';
import { kubernetesOptionsFromEnv, kubernetesProviderFromEnv } from '../providers/kubernetes/from-env.ts';
import { KubernetesProvider } from '../providers/kubernetes/index.ts';
import { streamPodLog } from '../providers/kubernetes/log-stream.ts';
import { tenantNamespace } from '../providers/kubernetes/names.ts';
import { PermanentProviderError, type ProvisionRequest } from '../providers/provider.ts';
import { FakeKubernetes } from './support/fake-kubernetes/index.ts';

const REAL_CLUSTER = !!process.env.KUBECONFIG;
const IMAGE = 'registry.k8s.io/pause:3.9';
const TENANT = 'ten_test';

interface Target {
  kc: KubeConfig;
  namespace: string;
  fake?: FakeKubernetes;
}

/** client-node returns model class instances; compare their JSON. */
function plain<T>(value: T): T {
  return value === undefined ? value : (JSON.parse(JSON.stringify(value)) as T);
}

/** The data of a Secret, base64-decoded. */
function decoded(secret: V1Secret): Record<string, string> {
  return Object.fromEntries(
    Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]),
  );
}

function newInstanceId(): string {
  return `inst_${randomBytes(6).toString('hex')}`;
}

function nameOf(instanceId: string): string {
  return instanceId.replaceAll('_', '-');
}

function web(extra: Partial<ServiceSpec> = {}): ServiceSpec {
  return {
    name: 'web',
    image: IMAGE,
    resources: { cpu_millis: 250, memory_mb: 64, replicas: 1 },
    env: { GREETING: 'hello', MODE: 'test' },
    ports: [{ container: 8080 }, { container: 9090, protocol: 'udp' }],
    ...extra,
  };
}

function request(
  instanceId: string,
  services: ServiceSpec[],
  extra: Partial<ProvisionRequest> = {},
): ProvisionRequest {
  return { instance_id: instanceId, tenant_id: TENANT, name: 'test', kind: 'deployment', services, ...extra };
}

/** A PermanentProviderError('invalid_spec') whose message matches. */
function refused(pattern: RegExp): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof PermanentProviderError, String(err));
    assert.equal(err.code, 'invalid_spec', err.message);
    assert.match(err.message, pattern);
    return true;
  };
}

/** `promise`, or a failure after `ms` (a hang is a failure, not a stuck test). */
async function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`not settled within ${ms}ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls until `check` holds (the fake is synchronous; a real cluster deletes in the background). */
async function eventually(
  check: () => Promise<boolean>,
  timeoutMs = REAL_CLUSTER ? 90_000 : 2_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, REAL_CLUSTER ? 1000 : 20));
  }
}

class ClusterView {
  readonly api: KubernetesObjectApi;
  constructor(
    kc: KubeConfig,
    readonly namespace: string,
  ) {
    this.api = KubernetesObjectApi.makeApiClient(kc);
  }

  async read<T extends KubernetesObject>(
    apiVersion: string,
    kind: string,
    name: string,
    namespace: string | undefined = this.namespace,
  ): Promise<T | undefined> {
    try {
      return (await this.api.read({ apiVersion, kind, metadata: { name, namespace } })) as T;
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) return undefined;
      throw err;
    }
  }

  async must<T extends KubernetesObject>(
    apiVersion: string,
    kind: string,
    name: string,
    namespace?: string,
  ): Promise<T> {
    const found = await this.read<T>(apiVersion, kind, name, namespace);
    assert.ok(found, `${kind} ${name} should exist`);
    return found;
  }

  /**
   * Every object of the instance of the kinds the provider writes, plus the claims that follow from them; with
   * `pods`, its pods too (on a real cluster the controllers create those).
   */
  async ofInstance(instanceId: string, namespace = this.namespace, pods = false): Promise<string[]> {
    const found: string[] = [];
    const kinds: Array<[string, string]> = [
      ['apps/v1', 'Deployment'],
      ['apps/v1', 'StatefulSet'],
      ['v1', 'Service'],
      ['v1', 'ConfigMap'],
      ['v1', 'Secret'],
      ['v1', 'PersistentVolumeClaim'],
    ];
    if (pods) kinds.push(['v1', 'Pod']);
    for (const [apiVersion, kind] of kinds) {
      const list = await this.api.list(
        apiVersion,
        kind,
        namespace,
        undefined,
        undefined,
        undefined,
        undefined,
        `ctrlplane.io/instance-id=${instanceId}`,
      );
      for (const item of list.items) found.push(`${kind}/${item.metadata?.name}`);
    }
    // The Service carries the instance labels, but look it up by name too: nothing of the instance may be left.
    if (await this.read('v1', 'Service', nameOf(instanceId), namespace))
      found.push(`Service/${nameOf(instanceId)}`);
    return [...new Set(found)].sort();
  }
}

async function realTarget(): Promise<Target> {
  const kc = new KubeConfig();
  kc.loadFromDefault();
  const namespace = `ctrlplane-test-${randomBytes(4).toString('hex')}`;
  const api = KubernetesObjectApi.makeApiClient(kc);
  await api.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
  return { kc, namespace };
}

async function fakeTarget(): Promise<Target> {
  const fake = await new FakeKubernetes().start();
  return { kc: fake.kubeConfig(), namespace: 'default', fake };
}

async function dispose(target: Target | undefined): Promise<void> {
  if (!target) return;
  if (target.fake) {
    await target.fake.stop();
    return;
  }
  const api = KubernetesObjectApi.makeApiClient(target.kc);
  await api
    .delete({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: target.namespace } })
    .catch(() => {});
}

// ------------------------------------------------------------------------------------------------------------
// Shared suite: the fake by default, the real cluster of KUBECONFIG when it is set.
// ------------------------------------------------------------------------------------------------------------

describe(`Kubernetes provider — services source (${REAL_CLUSTER ? 'real cluster from KUBECONFIG' : 'fake API server'})`, () => {
  let target: Target;
  let provider: KubernetesProvider;
  let cluster: ClusterView;
  const created: string[] = [];

  before(async () => {
    target = REAL_CLUSTER ? await realTarget() : await fakeTarget();
    provider = new KubernetesProvider({
      kubeConfig: target.kc,
      namespace: target.namespace,
      labels: { 'example.com/owner': 'platform', team: 'config' },
      helm: false,
    });
    cluster = new ClusterView(target.kc, target.namespace);
  });

  after(async () => {
    for (const id of created) await provider?.deprovision(id).catch(() => {});
    await dispose(target);
  });

  function track(id: string): string {
    created.push(id);
    return id;
  }

  it('provision creates a Deployment, a Service and one env Secret per service with env, labelled and sized', async () => {
    const id = track(newInstanceId());
    const name = nameOf(id);
    const result = await provider.provision(
      request(
        id,
        [
          web({ resources: { cpu_millis: 250, memory_mb: 64, replicas: 2 } }),
          {
            name: 'proxy',
            image: IMAGE,
            role: 'sidecar',
            resources: { cpu_millis: 100, memory_mb: 32, replicas: 1 },
          },
          {
            name: 'migrate',
            image: IMAGE,
            role: 'init',
            env: { STEP: 'migrate' },
            resources: { cpu_millis: 0, memory_mb: 0, replicas: 1 },
          },
        ],
        { labels: { team: 'caller', 'ctrlplane.io/instance-id': 'spoofed' } },
      ),
    );

    assert.equal(result.provider_ref, `k8s:${target.namespace}/${name}`);
    assert.deepEqual(result.service_refs, {
      web: `k8s:${target.namespace}/${name}/web`,
      proxy: `k8s:${target.namespace}/${name}/proxy`,
      migrate: `k8s:${target.namespace}/${name}/migrate`,
    });
    assert.deepEqual(result.endpoints, [
      {
        service_name: 'web',
        url: `http://${name}.${target.namespace}.svc.cluster.local:8080`,
        port: 8080,
        protocol: 'TCP',
        public: false,
      },
    ]);

    const expectedLabels = {
      'example.com/owner': 'platform',
      team: 'caller',
      'ctrlplane.io/instance-id': id,
      'ctrlplane.io/tenant-id': TENANT,
      'ctrlplane.io/managed-by': 'ctrlplane',
    };
    const deployment = await cluster.must<V1Deployment>('apps/v1', 'Deployment', name);
    assert.deepEqual(deployment.metadata?.labels, expectedLabels);
    assert.equal(deployment.spec?.replicas, 2);
    assert.deepEqual(deployment.spec?.selector.matchLabels, { 'ctrlplane.io/instance-id': id });
    assert.deepEqual(deployment.spec?.template.metadata?.labels, expectedLabels);
    const pod = deployment.spec?.template.spec;
    assert.deepEqual(
      pod?.containers.map((c) => c.name),
      ['web', 'proxy'],
    );
    assert.deepEqual(
      pod?.initContainers?.map((c) => c.name),
      ['migrate'],
    );
    const main = pod?.containers[0];
    assert.equal(main?.image, IMAGE);
    assert.deepEqual(main?.resources?.requests, { cpu: '250m', memory: '64Mi' });
    assert.deepEqual(main?.resources?.limits, { cpu: '250m', memory: '64Mi' });
    assert.deepEqual(
      main?.ports?.map((p) => [p.name, p.containerPort, p.protocol]),
      [
        ['port-0', 8080, 'TCP'],
        ['port-1', 9090, 'UDP'],
      ],
    );
    assert.deepEqual(plain(main?.envFrom), [{ secretRef: { name: `${name}-web-env` } }]);
    assert.deepEqual(pod?.containers[1]?.resources?.limits, { cpu: '100m', memory: '32Mi' });
    assert.equal(pod?.containers[1]?.envFrom, undefined);
    assert.deepEqual(plain(pod?.initContainers?.[0]?.envFrom), [
      { secretRef: { name: `${name}-migrate-env` } },
    ]);
    // The config hash rolls the pods on an env change; it is derived from the Secrets' versions, not their values.
    const hash = deployment.spec?.template.metadata?.annotations?.['ctrlplane.io/config-hash'] ?? '';
    assert.match(hash, /^[0-9a-f]{16}$/);

    const service = await cluster.must<V1Service>('v1', 'Service', name);
    assert.equal(service.spec?.type, 'ClusterIP');
    assert.notEqual(service.spec?.clusterIP, 'None');
    assert.deepEqual(service.spec?.selector, { 'ctrlplane.io/instance-id': id });
    assert.deepEqual(
      service.spec?.ports?.map((p) => [p.name, p.port, p.targetPort, p.protocol]),
      [
        ['web-0', 8080, 8080, 'TCP'],
        ['web-1', 9090, 9090, 'UDP'],
      ],
    );
    assert.deepEqual(service.metadata?.labels, expectedLabels);

    // Env may hold resolved secret values: it lives in Secrets, never in ConfigMaps.
    const webEnv = await cluster.must<V1Secret>('v1', 'Secret', `${name}-web-env`);
    assert.equal(webEnv.type, 'Opaque');
    assert.deepEqual(decoded(webEnv), { GREETING: 'hello', MODE: 'test' });
    assert.equal(webEnv.metadata?.labels?.['ctrlplane.io/instance-id'], id);
    assert.equal(webEnv.metadata?.labels?.['ctrlplane.io/service'], 'web');
    assert.equal(webEnv.metadata?.labels?.['ctrlplane.io/component'], 'env');
    const initEnv = await cluster.must<V1Secret>('v1', 'Secret', `${name}-migrate-env`);
    assert.deepEqual(decoded(initEnv), { STEP: 'migrate' });
    assert.equal(await cluster.read('v1', 'Secret', `${name}-proxy-env`), undefined);
    for (const svc of ['web', 'migrate', 'proxy']) {
      assert.equal(
        await cluster.read('v1', 'ConfigMap', `${name}-${svc}-env`),
        undefined,
        `no ConfigMap for ${svc}`,
      );
    }

    // An env change changes the Secret, hence the hash (the pods roll); the same env keeps both.
    await provider.provision(request(id, [web({ env: { GREETING: 'hello', MODE: 'test' } })]));
    const same = await cluster.must<V1Deployment>('apps/v1', 'Deployment', name);
    const sameHash = same.spec?.template.metadata?.annotations?.['ctrlplane.io/config-hash'];
    await provider.provision(request(id, [web({ env: { GREETING: 'hi', MODE: 'test' } })]));
    const changed = await cluster.must<V1Deployment>('apps/v1', 'Deployment', name);
    assert.notEqual(changed.spec?.template.metadata?.annotations?.['ctrlplane.io/config-hash'], sameHash);
    assert.deepEqual(decoded(await cluster.must<V1Secret>('v1', 'Secret', `${name}-web-env`)), {
      GREETING: 'hi',
      MODE: 'test',
    });
    await provider.provision(request(id, [web({ env: { GREETING: 'hi', MODE: 'test' } })]));
    const again = await cluster.must<V1Deployment>('apps/v1', 'Deployment', name);
    assert.equal(
      again.spec?.template.metadata?.annotations?.['ctrlplane.io/config-hash'],
      changed.spec?.template.metadata?.annotations?.['ctrlplane.io/config-hash'],
    );
    // The services that lost their env (or were dropped) lost their Secret.
    assert.equal(await cluster.read('v1', 'Secret', `${name}-migrate-env`), undefined);
  });

  it('stop scales to 0 and records the replica count; start restores it', async () => {
    const id = track(newInstanceId());
    const name = nameOf(id);
    await provider.provision(
      request(id, [web({ resources: { cpu_millis: 100, memory_mb: 32, replicas: 3 } })]),
    );

    await provider.stop(id);
    let deployment = await cluster.must<V1Deployment>('apps/v1', 'Deployment', name);
    assert.equal(deployment.spec?.replicas, 0);
    assert.equal(deployment.metadata?.annotations?.['ctrlplane.io/replicas-before-stop'], '3');
    if (!REAL_CLUSTER) assert.equal((await provider.status(id)).state, 'stopped');

    await provider.stop(id); // again: still 0, and the recorded count is not overwritten with 0
    deployment = await cluster.must<V1Deployment>('apps/v1', 'Deployment', name);
    assert.equal(deployment.metadata?.annotations?.['ctrlplane.io/replicas-before-stop'], '3');

    await provider.start(id);
    deployment = await cluster.must<V1Deployment>('apps/v1', 'Deployment', name);
    assert.equal(deployment.spec?.replicas, 3);
    assert.equal(deployment.metadata?.annotations?.['ctrlplane.io/replicas-before-stop'], undefined);

    await provider.start(id); // again: a no-op
    assert.equal((await cluster.must<V1Deployment>('apps/v1', 'Deployment', name)).spec?.replicas, 3);
  });

  it('scale sets requests and limits of the non-init containers and the replica count', async () => {
    const id = track(newInstanceId());
    const name = nameOf(id);
    await provider.provision(
      request(id, [
        web(),
        {
          name: 'proxy',
          image: IMAGE,
          role: 'sidecar',
          resources: { cpu_millis: 100, memory_mb: 32, replicas: 1 },
        },
        {
          name: 'migrate',
          image: IMAGE,
          role: 'init',
          resources: { cpu_millis: 50, memory_mb: 16, replicas: 1 },
        },
      ]),
    );
    await provider.scale(id, { cpu_millis: 500, memory_mb: 256, replicas: 4 });
    const deployment = await cluster.must<V1Deployment>('apps/v1', 'Deployment', name);
    assert.equal(deployment.spec?.replicas, 4);
    for (const c of deployment.spec?.template.spec?.containers ?? []) {
      assert.deepEqual(c.resources?.requests, { cpu: '500m', memory: '256Mi' }, c.name);
      assert.deepEqual(c.resources?.limits, { cpu: '500m', memory: '256Mi' }, c.name);
    }
    assert.deepEqual(deployment.spec?.template.spec?.initContainers?.[0]?.resources?.limits, {
      cpu: '50m',
      memory: '16Mi',
    });

    // Only memory: cpu stays; replicas 0 means "leave the count alone".
    await provider.scale(id, { cpu_millis: 0, memory_mb: 512, replicas: 0 });
    const again = await cluster.must<V1Deployment>('apps/v1', 'Deployment', name);
    assert.deepEqual(again.spec?.template.spec?.containers[0]?.resources?.limits, {
      cpu: '500m',
      memory: '512Mi',
    });
    assert.equal(again.spec?.replicas, 4);

    // Scaling a stopped instance changes what start restores, not the running count.
    await provider.stop(id);
    await provider.scale(id, { cpu_millis: 0, memory_mb: 0, replicas: 2 });
    const stopped = await cluster.must<V1Deployment>('apps/v1', 'Deployment', name);
    assert.equal(stopped.spec?.replicas, 0);
    await provider.start(id);
    assert.equal((await cluster.must<V1Deployment>('apps/v1', 'Deployment', name)).spec?.replicas, 2);
  });

  it('restart sets the restartedAt pod-template annotation', async () => {
    const id = track(newInstanceId());
    await provider.provision(request(id, [web()]));
    const before = Date.now();
    await provider.restart(id);
    const deployment = await cluster.must<V1Deployment>('apps/v1', 'Deployment', nameOf(id));
    const stamp = deployment.spec?.template.metadata?.annotations?.['ctrlplane.io/restartedAt'];
    assert.match(stamp ?? '', /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
    assert.ok(Date.parse(stamp ?? '') >= Math.floor(before / 1000) * 1000);
    // A re-provision keeps the annotation (ctrlplane's apply does not own it).
    await provider.provision(request(id, [web()]));
    const reapplied = await cluster.must<V1Deployment>('apps/v1', 'Deployment', nameOf(id));
    assert.equal(reapplied.spec?.template.metadata?.annotations?.['ctrlplane.io/restartedAt'], stamp);
  });

  it('deprovision leaves nothing of the instance, and a second deprovision is fine', async () => {
    const id = newInstanceId();
    await provider.provision(
      request(id, [
        web(),
        {
          name: 'migrate',
          image: IMAGE,
          role: 'init',
          env: { A: 'b' },
          resources: { cpu_millis: 0, memory_mb: 0, replicas: 1 },
        },
      ]),
    );
    assert.ok((await cluster.ofInstance(id)).length >= 4);
    target.fake?.simulatePods(target.namespace, nameOf(id), {});
    await provider.deprovision(id);
    await eventually(async () => (await cluster.ofInstance(id, target.namespace, true)).length === 0);
    await provider.deprovision(id);
    assert.deepEqual(await cluster.ofInstance(id, target.namespace, true), []);
    assert.equal((await provider.status(id)).state, 'destroyed');
  });

  it('a provision repeated after a crash converges: one set of objects, no AlreadyExists', async () => {
    const id = track(newInstanceId());
    const services = [
      web(),
      {
        name: 'worker',
        image: IMAGE,
        role: 'sidecar' as const,
        env: { Q: '1' },
        resources: { cpu_millis: 0, memory_mb: 0, replicas: 1 },
      },
    ];

    // The "crash": the activity is cancelled right after the first object is written.
    const abort = new AbortController();
    await assert.rejects(
      provider.provision(request(id, services), { signal: abort.signal, progress: () => abort.abort() }),
    );
    assert.ok((await cluster.ofInstance(id)).length >= 1, 'the crashed attempt wrote something');

    await provider.provision(request(id, services));
    await provider.provision(request(id, services));
    const name = nameOf(id);
    assert.deepEqual(await cluster.ofInstance(id), [
      `Deployment/${name}`,
      `Secret/${name}-web-env`,
      `Secret/${name}-worker-env`,
      `Service/${name}`,
    ]);
  });

  it('a provision after a partial create by a plain (non-apply) client converges', async () => {
    const id = track(newInstanceId());
    const name = nameOf(id);
    // As an older, create-based attempt would have left it: a bare Deployment and an env ConfigMap (env was kept
    // in ConfigMaps then) with stale data.
    await cluster.api.create({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: `${name}-web-env`,
        namespace: target.namespace,
        labels: { 'ctrlplane.io/instance-id': id, 'ctrlplane.io/component': 'env' },
      },
      data: { GREETING: 'stale', OLD: 'x' },
    } as V1ConfigMap);
    await cluster.api.create({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name, namespace: target.namespace },
      spec: {
        replicas: 1,
        selector: { matchLabels: { 'ctrlplane.io/instance-id': id } },
        template: {
          metadata: { labels: { 'ctrlplane.io/instance-id': id } },
          spec: { containers: [{ name: 'web', image: IMAGE }] },
        },
      },
    } as V1Deployment);

    await provider.provision(
      request(id, [web({ resources: { cpu_millis: 250, memory_mb: 64, replicas: 2 } })]),
    );
    const deployment = await cluster.must<V1Deployment>('apps/v1', 'Deployment', name);
    assert.equal(deployment.spec?.replicas, 2);
    assert.equal(deployment.metadata?.labels?.['ctrlplane.io/managed-by'], 'ctrlplane');
    assert.deepEqual(plain(deployment.spec?.template.spec?.containers[0]?.envFrom), [
      { secretRef: { name: `${name}-web-env` } },
    ]);
    const secret = await cluster.must<V1Secret>('v1', 'Secret', `${name}-web-env`);
    assert.equal(decoded(secret).GREETING, 'hello');
    // The old env ConfigMap is cleaned up.
    assert.deepEqual(await cluster.ofInstance(id), [
      `Deployment/${name}`,
      `Secret/${name}-web-env`,
      `Service/${name}`,
    ]);
  });

  it('a provision does not take over an object of another instance', async () => {
    const id = track(newInstanceId());
    const name = nameOf(id);
    const squatter = newInstanceId();
    await cluster.api.create({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name: `${name}-web-env`,
        namespace: target.namespace,
        labels: { 'ctrlplane.io/instance-id': squatter },
      },
      data: { GREETING: Buffer.from('squatted').toString('base64') },
    } as V1Secret);
    try {
      await assert.rejects(provider.provision(request(id, [web()])), (err: unknown) => {
        assert.ok(err instanceof PermanentProviderError, String(err));
        assert.equal(err.code, 'invalid_spec');
        assert.match(
          err.message,
          new RegExp(`Secret .*${name}-web-env already exists and is owned by another instance`),
        );
        return true;
      });
      assert.equal(await cluster.read('apps/v1', 'Deployment', name), undefined, 'nothing was written');
      const kept = await cluster.must<V1Secret>('v1', 'Secret', `${name}-web-env`);
      assert.equal(kept.metadata?.labels?.['ctrlplane.io/instance-id'], squatter);
      assert.deepEqual(decoded(kept), { GREETING: 'squatted' });
    } finally {
      await cluster.api
        .delete({
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: `${name}-web-env`, namespace: target.namespace },
        })
        .catch(() => {});
    }
  });

  it('a re-provision with fewer services and no ports removes what is no longer wanted', async () => {
    const id = track(newInstanceId());
    const name = nameOf(id);
    await provider.provision(
      request(id, [
        web(),
        {
          name: 'proxy',
          image: IMAGE,
          role: 'sidecar',
          env: { P: '1' },
          resources: { cpu_millis: 0, memory_mb: 0, replicas: 1 },
        },
      ]),
    );
    await provider.provision(request(id, [web({ ports: [], env: {} })]));
    const deployment = await cluster.must<V1Deployment>('apps/v1', 'Deployment', name);
    assert.deepEqual(
      deployment.spec?.template.spec?.containers.map((c) => c.name),
      ['web'],
    );
    assert.deepEqual(await cluster.ofInstance(id), [`Deployment/${name}`]);
  });

  it('stateful_set: a StatefulSet with volume claim templates and a headless Service', async () => {
    const id = track(newInstanceId());
    const name = nameOf(id);
    const result = await provider.provision(
      request(
        id,
        [
          web({
            resources: { cpu_millis: 100, memory_mb: 64, replicas: 2 },
            volumes: [
              { name: 'data', mount_path: '/data', size_mb: 1024 },
              { name: 'scratch', mount_path: '/tmp/scratch' },
            ],
          }),
          {
            name: 'backup',
            image: IMAGE,
            role: 'sidecar',
            volumes: [{ name: 'data', mount_path: '/backup' }],
            resources: { cpu_millis: 0, memory_mb: 0, replicas: 1 },
          },
        ],
        { kind: 'stateful_set' },
      ),
    );
    assert.equal(result.metadata?.kind, 'StatefulSet');
    assert.equal(await cluster.read('apps/v1', 'Deployment', name), undefined);
    const sts = await cluster.must<V1StatefulSet>('apps/v1', 'StatefulSet', name);
    assert.equal(sts.spec?.serviceName, name);
    assert.equal(sts.spec?.replicas, 2);
    assert.deepEqual(
      sts.spec?.volumeClaimTemplates?.map((t) => [
        t.metadata?.name,
        t.spec?.accessModes,
        t.spec?.resources?.requests,
      ]),
      [['data', ['ReadWriteOnce'], { storage: '1024Mi' }]],
    );
    assert.deepEqual(
      sts.spec?.template.spec?.volumes?.map((v) => v.name),
      ['scratch'],
    );
    assert.deepEqual(plain(sts.spec?.template.spec?.containers[1]?.volumeMounts), [
      { name: 'data', mountPath: '/backup' },
    ]);
    const service = await cluster.must<V1Service>('v1', 'Service', name);
    assert.equal(service.spec?.clusterIP, 'None');

    await provider.stop(id);
    assert.equal((await cluster.must<V1StatefulSet>('apps/v1', 'StatefulSet', name)).spec?.replicas, 0);
    await provider.start(id);
    assert.equal((await cluster.must<V1StatefulSet>('apps/v1', 'StatefulSet', name)).spec?.replicas, 2);
    await provider.scale(id, { cpu_millis: 200, memory_mb: 0, replicas: 3 });
    const scaled = await cluster.must<V1StatefulSet>('apps/v1', 'StatefulSet', name);
    assert.equal(scaled.spec?.replicas, 3);
    assert.equal(scaled.spec?.template.spec?.containers[0]?.resources?.limits?.cpu, '200m');

    target.fake?.simulatePods(target.namespace, name, {});
    if (target.fake)
      assert.equal(
        target.fake.list('v1', 'PersistentVolumeClaim', { namespace: target.namespace }).length >= 3,
        true,
      );
    await provider.deprovision(id);
    await eventually(async () => (await cluster.ofInstance(id, target.namespace, true)).length === 0);
  });

  it('a spec the API server refuses is a permanent invalid_spec error carrying its message', async () => {
    const id = track(newInstanceId());
    await assert.rejects(
      provider.provision(request(id, [web()], { labels: { team: 'not a valid label value!' } })),
      (err: unknown) => {
        assert.ok(err instanceof PermanentProviderError, String(err));
        assert.equal(err.code, 'invalid_spec');
        assert.match(err.message, /invalid/i);
        assert.match(err.message, /not a valid label value!/);
        return true;
      },
    );
    // Refused before anything is written: a bad service name.
    await assert.rejects(
      provider.provision(request(newInstanceId(), [web({ name: 'Web_1' })])),
      (err: unknown) => {
        assert.ok(err instanceof PermanentProviderError);
        assert.match(err.message, /service name "Web_1"/);
        return true;
      },
    );
  });

  it('start, restart and scale of an unknown instance fail clearly; stop and deprovision are no-ops', async () => {
    const id = newInstanceId();
    await provider.stop(id);
    await provider.deprovision(id);
    for (const call of [
      () => provider.start(id),
      () => provider.restart(id),
      () => provider.scale(id, { cpu_millis: 1, memory_mb: 1, replicas: 1 }),
    ]) {
      await assert.rejects(
        call(),
        (err: unknown) => err instanceof PermanentProviderError && err.code === 'invalid_request',
      );
    }
  });

  it('healthCheck reports the API server reachable', async () => {
    const health = await provider.healthCheck();
    assert.equal(health.healthy, true, health.message);
    assert.match(health.message, /reachable/);
    assert.ok(health.latency_ms >= 0);
  });
});

describe(`Kubernetes provider — manifests, Argo CD and helm sources (${REAL_CLUSTER ? 'real cluster' : 'fake API server'})`, () => {
  let target: Target;
  let provider: KubernetesProvider;
  let cluster: ClusterView;

  before(async () => {
    target = REAL_CLUSTER ? await realTarget() : await fakeTarget();
    provider = new KubernetesProvider({ kubeConfig: target.kc, namespace: target.namespace, helm: false });
    cluster = new ClusterView(target.kc, target.namespace);
  });
  after(() => dispose(target));

  const configMapDoc = (name: string, value: string) => `apiVersion: v1
kind: ConfigMap
metadata:
  name: ${name}
  labels:
    app: demo
data:
  value: "${value}"
`;
  const serviceDoc = (name: string) => `apiVersion: v1
kind: Service
metadata:
  name: ${name}
spec:
  selector:
    app: demo
  ports:
    - name: http
      port: 80
      targetPort: 8080
`;

  it('applies every document labelled, tracks them, prunes a dropped one on re-apply, and deletes all', async () => {
    const id = newInstanceId();
    const name = nameOf(id);
    const result = await provider.applyManifests({
      instance_id: id,
      tenant_id: TENANT,
      docs: [configMapDoc(`${name}-settings`, 'one'), serviceDoc(`${name}-api`)],
      labels: { team: 'manifests' },
    });
    assert.equal(result.provider_ref, `k8s:${target.namespace}/${name}`);
    assert.equal(result.metadata?.objects, '2');

    const cm = await cluster.must<V1ConfigMap>('v1', 'ConfigMap', `${name}-settings`);
    assert.deepEqual(cm.data, { value: 'one' });
    assert.equal(cm.metadata?.labels?.app, 'demo');
    assert.equal(cm.metadata?.labels?.team, 'manifests');
    assert.equal(cm.metadata?.labels?.['ctrlplane.io/instance-id'], id);
    assert.equal(cm.metadata?.labels?.['ctrlplane.io/managed-by'], 'ctrlplane');
    const svc = await cluster.must<V1Service>('v1', 'Service', `${name}-api`);
    assert.equal(svc.metadata?.labels?.['ctrlplane.io/tenant-id'], TENANT);
    const tracking = await cluster.must<V1ConfigMap>('v1', 'ConfigMap', `${name}-manifests`);
    const refs = JSON.parse(tracking.data?.refs ?? '[]') as Array<{
      kind: string;
      name: string;
      resource: string;
    }>;
    assert.deepEqual(
      refs.map((r) => [r.kind, r.resource, r.name]),
      [
        ['ConfigMap', 'configmaps', `${name}-settings`],
        ['Service', 'services', `${name}-api`],
      ],
    );
    assert.equal((await provider.manifestStatus(id)).state, 'running');

    // Re-apply without the Service and with a changed ConfigMap: the Service is pruned.
    const again = await provider.applyManifests({
      instance_id: id,
      tenant_id: TENANT,
      docs: [configMapDoc(`${name}-settings`, 'two')],
    });
    assert.equal(again.metadata?.objects, '1');
    assert.deepEqual((await cluster.must<V1ConfigMap>('v1', 'ConfigMap', `${name}-settings`)).data, {
      value: 'two',
    });
    await eventually(async () => (await cluster.read('v1', 'Service', `${name}-api`)) === undefined);
    const retracked = JSON.parse(
      (await cluster.must<V1ConfigMap>('v1', 'ConfigMap', `${name}-manifests`)).data?.refs ?? '[]',
    ) as unknown[];
    assert.equal(retracked.length, 1);

    await provider.deleteManifests(id);
    await eventually(async () => (await cluster.read('v1', 'ConfigMap', `${name}-settings`)) === undefined);
    assert.equal(await cluster.read('v1', 'ConfigMap', `${name}-manifests`), undefined);
    await provider.deleteManifests(id); // a second delete is a no-op
    const status = await provider.manifestStatus(id);
    assert.equal(status.state, 'provisioning');
    assert.equal(status.message, 'no manifests applied');
  });

  it('refuses manifests without apiVersion/kind or of a kind the cluster does not serve', async () => {
    const base = { instance_id: newInstanceId(), tenant_id: TENANT };
    await assert.rejects(
      provider.applyManifests({ ...base, docs: ['metadata:\n  name: x\n'] }),
      (err: unknown) => err instanceof PermanentProviderError && /apiVersion or kind/.test(err.message),
    );
    await assert.rejects(
      provider.applyManifests({
        ...base,
        docs: ['apiVersion: example.com/v1\nkind: Gizmo\nmetadata:\n  name: x\n'],
      }),
      (err: unknown) => err instanceof PermanentProviderError && /does not serve Gizmo/.test(err.message),
    );
  });

  it('an argocd source creates its Application in the argo namespace, labelled', async () => {
    if (REAL_CLUSTER) {
      const groups = await target.kc
        .makeApiClient(ApisApi)
        .getAPIVersions()
        .catch(() => undefined);
      if (!groups?.groups.some((g) => g.name === 'argoproj.io')) {
        // Without Argo CD the source cannot run here: the provider must say so plainly, not fail obscurely.
        await assert.rejects(
          provider.argoApply({
            instance_id: newInstanceId(),
            tenant_id: TENANT,
            app: {
              repo_url: 'https://github.com/argoproj/argocd-example-apps.git',
              dest_namespace: target.namespace,
            },
          }),
          (err: unknown) => err instanceof PermanentProviderError && err.code === 'unsupported_source',
        );
        return;
      }
    }
    const id = newInstanceId();
    const name = nameOf(id);
    const result = await provider.argoApply({
      instance_id: id,
      tenant_id: TENANT,
      labels: { team: 'gitops' },
      app: {
        repo_url: 'https://github.com/argoproj/argocd-example-apps.git',
        path: 'guestbook',
        target_revision: 'HEAD',
        dest_namespace: target.namespace,
        helm: { value_files: ['values.yaml'], parameters: { replicas: '2' } },
        sync_policy: { automated: true, self_heal: true, prune: false },
      },
    });
    assert.equal(result.provider_ref, `argocd:argocd/${name}`);
    const app = await cluster.must<KubernetesObject & { spec?: Record<string, unknown> }>(
      'argoproj.io/v1alpha1',
      'Application',
      name,
      'argocd',
    );
    assert.equal(app.metadata?.labels?.team, 'gitops');
    assert.equal(app.metadata?.labels?.['ctrlplane.io/instance-id'], id);
    assert.equal(app.metadata?.labels?.['ctrlplane.io/tenant-id'], TENANT);
    assert.equal(app.metadata?.labels?.['ctrlplane.io/managed-by'], 'ctrlplane');
    assert.deepEqual(app.spec, {
      project: 'default',
      source: {
        repoURL: 'https://github.com/argoproj/argocd-example-apps.git',
        path: 'guestbook',
        targetRevision: 'HEAD',
        helm: { valueFiles: ['values.yaml'], parameters: [{ name: 'replicas', value: '2' }] },
      },
      destination: { server: 'https://kubernetes.default.svc', namespace: target.namespace },
      syncPolicy: { automated: { selfHeal: true, prune: false } },
    });
    assert.equal((await provider.argoStatus(id)).state, 'provisioning');

    await provider.argoDelete(id);
    // Argo CD's resources finalizer holds the Application until Argo CD has removed what it deployed.
    const deleting = await cluster.read('argoproj.io/v1alpha1', 'Application', name, 'argocd');
    assert.ok(!deleting || deleting.metadata?.deletionTimestamp, 'the Application is gone or being deleted');
    if (deleting) assert.equal((await provider.argoStatus(id)).state, 'destroying');
    if (target.fake) {
      // The fake plays Argo CD's controller.
      target.fake.finalize('argoproj.io/v1alpha1', 'Application', 'argocd', name);
    } else if (deleting) {
      // On a real cluster, do not leave the test's Application behind if Argo CD's controller is slow or absent.
      const release = {
        apiVersion: 'argoproj.io/v1alpha1',
        kind: 'Application',
        metadata: { name, namespace: 'argocd', finalizers: null },
      };
      await cluster.api
        .patch(
          release as unknown as KubernetesObject,
          undefined,
          undefined,
          'ctrlplane-test',
          undefined,
          PatchStrategy.MergePatch,
        )
        .catch(() => {});
    }
    await eventually(
      async () => (await cluster.read('argoproj.io/v1alpha1', 'Application', name, 'argocd')) === undefined,
    );
    await provider.argoDelete(id);
    assert.equal((await provider.argoStatus(id)).state, 'destroyed');
  });

  it('a helm source without the helm CLI is refused as unsupported_source, and not advertised', async () => {
    assert.ok(!provider.capabilities().includes('source:helm'));
    await assert.rejects(
      provider.helmInstall({
        instance_id: newInstanceId(),
        tenant_id: TENANT,
        chart: { chart: 'nginx', repo: 'https://charts.example.com' },
      }),
      (err: unknown) => {
        assert.ok(err instanceof PermanentProviderError);
        assert.equal(err.code, 'unsupported_source');
        assert.match(err.message, /helm CLI/);
        return true;
      },
    );
    const noHelmOnPath = new KubernetesProvider({ kubeConfig: target.kc, helm: '/nonexistent/bin/helm' });
    assert.ok(!noHelmOnPath.capabilities().includes('source:helm'));
    await assert.rejects(
      noHelmOnPath.helmUninstall(newInstanceId()),
      (err: unknown) => err instanceof PermanentProviderError && err.code === 'unsupported_source',
    );
  });

  it('one namespace per tenant, created on demand', async () => {
    const tenant = `ten_${randomBytes(4).toString('hex')}`;
    const perTenant = new KubernetesProvider({
      kubeConfig: target.kc,
      namespacePerTenant: true,
      namespacePrefix: 'cp',
      helm: false,
    });
    const namespace = perTenant.namespaceFor(tenant);
    assert.match(namespace, new RegExp(`^cp-${tenant.replaceAll('_', '-')}-[0-9a-f]{10}$`));
    const id = newInstanceId();
    try {
      const result = await perTenant.provision({ ...request(id, [web()]), tenant_id: tenant });
      assert.equal(result.provider_ref, `k8s:${namespace}/${nameOf(id)}`);
      const ns = await cluster.must('v1', 'Namespace', namespace, undefined);
      assert.equal(ns.metadata?.labels?.['ctrlplane.io/tenant-id'], tenant);
      assert.ok(await cluster.read('apps/v1', 'Deployment', nameOf(id), namespace));

      // A fresh provider (another worker) finds the instance by its labels.
      const other = new KubernetesProvider({
        kubeConfig: target.kc,
        namespacePerTenant: true,
        namespacePrefix: 'cp',
        helm: false,
      });
      await other.stop(id);
      assert.equal(
        (await cluster.must<V1Deployment>('apps/v1', 'Deployment', nameOf(id), namespace)).spec?.replicas,
        0,
      );
      await other.deprovision(id);
      await eventually(async () => (await cluster.ofInstance(id, namespace, true)).length === 0);
    } finally {
      await cluster.api
        .delete({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } })
        .catch(() => {});
    }
  });
});

// ------------------------------------------------------------------------------------------------------------
// Fake-only: what needs the fake's hooks (pods played by the test, log buffers, metrics, injected faults).
// Registered only when KUBECONFIG is not set.
// ------------------------------------------------------------------------------------------------------------

if (!REAL_CLUSTER) {
  describe('Kubernetes provider — status, logs, resources and errors (fake API server, simulated pods)', () => {
    let fake: FakeKubernetes;
    let provider: KubernetesProvider;

    before(async () => {
      fake = await new FakeKubernetes().start();
      provider = new KubernetesProvider({ kubeConfig: fake.kubeConfig(), helm: false });
    });
    after(() => fake.stop());

    async function provisioned(replicas = 2, services: ServiceSpec[] = []): Promise<string> {
      const id = newInstanceId();
      await provider.provision(
        request(id, [
          web({ resources: { cpu_millis: 250, memory_mb: 64, replicas } }),
          {
            name: 'proxy',
            image: IMAGE,
            role: 'sidecar',
            resources: { cpu_millis: 100, memory_mb: 32, replicas: 1 },
          },
          ...services,
        ]),
      );
      return id;
    }

    it('status follows the pods: none yet → provisioning, some ready → starting, all ready → running', async () => {
      const id = await provisioned(2, [
        {
          name: 'migrate',
          image: IMAGE,
          role: 'init',
          resources: { cpu_millis: 0, memory_mb: 0, replicas: 1 },
        },
      ]);
      let status = await provider.status(id);
      assert.equal(status.state, 'provisioning');
      assert.equal(status.ready, false);
      assert.equal(status.endpoints[0]?.port, 8080);

      fake.simulatePods('default', nameOf(id), { ready: 1 });
      status = await provider.status(id);
      assert.equal(status.state, 'starting');
      assert.equal(status.message, '1/2 replicas ready');

      fake.simulatePods('default', nameOf(id), {});
      status = await provider.status(id);
      assert.equal(status.state, 'running');
      assert.equal(status.ready, true);
      assert.equal(status.services?.web?.state, 'running');
      assert.equal(status.services?.proxy?.state, 'running');
      assert.equal(status.services?.migrate?.state, 'stopped'); // the init container completed
      assert.ok(status.started_at);

      await provider.stop(id);
      assert.equal((await provider.status(id)).state, 'stopping'); // pods still there: nothing runs the GC of pods
      fake.simulatePods('default', nameOf(id), { count: 0 });
      assert.equal((await provider.status(id)).state, 'stopped');
    });

    it('a crash loop fails the status and names the reason and the container', async () => {
      const id = await provisioned(1);
      fake.simulatePods('default', nameOf(id), {
        waiting: {
          container: 'web',
          reason: 'CrashLoopBackOff',
          message: 'back-off 40s restarting failed container',
        },
      });
      const status = await provider.status(id);
      assert.equal(status.state, 'failed');
      assert.match(status.message ?? '', /CrashLoopBackOff/);
      assert.match(status.message ?? '', /container web/);
      assert.equal(status.restarts, 4);
      assert.equal(status.services?.web?.state, 'failed');
      assert.equal(status.services?.proxy?.state, 'starting');
    });

    it('an image pull error fails the status and names it', async () => {
      for (const reason of ['ErrImagePull', 'ImagePullBackOff']) {
        const id = await provisioned(1);
        fake.simulatePods('default', nameOf(id), {
          waiting: { container: 'proxy', reason, message: `Back-off pulling image "${IMAGE}"` },
        });
        const status = await provider.status(id);
        assert.equal(status.state, 'failed', reason);
        assert.match(status.message ?? '', new RegExp(reason));
        assert.match(status.message ?? '', /container proxy/);
      }
    });

    it('logs of a named container with tail, and of the main one by default', async () => {
      const id = await provisioned(1);
      const [pod] = fake.simulatePods('default', nameOf(id), {});
      assert.ok(pod);
      for (let i = 1; i <= 5; i++) fake.appendLog('default', pod, 'web', `web line ${i}`);
      fake.appendLog('default', pod, 'proxy', 'proxy line 1');
      fake.appendLog('default', pod, 'proxy', 'proxy line 2');

      const lines = [];
      for await (const l of provider.logs(id, { service_name: 'proxy', tail: 1 })) lines.push(l);
      assert.equal(lines.length, 1);
      assert.equal(lines[0]?.line, 'proxy line 2');
      assert.equal(lines[0]?.stream, 'stdout');
      assert.match(lines[0]?.ts ?? '', /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z$/);

      const main = [];
      for await (const l of provider.logs(id, { tail: 3 })) main.push(l.line);
      assert.deepEqual(main, ['web line 3', 'web line 4', 'web line 5']);

      const all = [];
      for await (const l of provider.logs(id, {})) all.push(l.line);
      assert.equal(all.length, 5);

      const request = fake.requests.filter((r) => r.path.endsWith('/log')).at(0);
      assert.match(request?.query ?? '', /container=proxy/);
      assert.match(request?.query ?? '', /tailLines=1/);
      assert.match(request?.query ?? '', /timestamps=true/);

      await assert.rejects(
        (async () => {
          for await (const _ of provider.logs(id, { service_name: 'nope' })) void _;
        })(),
        (err: unknown) => err instanceof PermanentProviderError && err.code === 'invalid_request',
      );
    });

    it('logs follow new lines until the container stops, or until the signal aborts', async () => {
      const id = await provisioned(1);
      const [pod] = fake.simulatePods('default', nameOf(id), {});
      assert.ok(pod);
      fake.appendLog('default', pod, 'web', 'before');
      const seen: string[] = [];
      const reading = (async () => {
        for await (const l of provider.logs(id, { follow: true })) {
          seen.push(l.line);
          if (seen.length === 1) {
            fake.appendLog('default', pod, 'web', 'after 1');
            fake.appendLog('default', pod, 'web', 'after 2');
          }
          if (seen.length === 3) fake.endLogs('default', pod);
        }
      })();
      await reading;
      assert.deepEqual(seen, ['before', 'after 1', 'after 2']);

      const abort = new AbortController();
      const got: string[] = [];
      const stopped = (async () => {
        for await (const l of provider.logs(
          id,
          { follow: true, since: new Date(Date.now() - 60_000).toISOString() },
          { signal: abort.signal },
        )) {
          got.push(l.line);
          if (got.length === 3) abort.abort();
        }
      })();
      await stopped;
      assert.deepEqual(got, ['before', 'after 1', 'after 2']);
    });

    it('no pods: logs yield nothing and resources are zero', async () => {
      const id = await provisioned(1);
      const lines = [];
      for await (const l of provider.logs(id, {})) lines.push(l);
      assert.deepEqual(lines, []);
      assert.deepEqual(await provider.resources(id), {
        cpu_percent: 0,
        memory_used_mb: 0,
        memory_limit_mb: 0,
        network_in_mb: 0,
        network_out_mb: 0,
      });
    });

    it('resources: zero while metrics.k8s.io is absent (404), summed over pods once it answers', async () => {
      const id = await provisioned(2);
      const pods = fake.simulatePods('default', nameOf(id), {});
      const zero = await provider.resources(id);
      assert.equal(zero.cpu_percent, 0);
      assert.equal(zero.memory_used_mb, 0);
      assert.ok(fake.requests.some((r) => r.path.startsWith('/apis/metrics.k8s.io/')));

      fake.seedMetrics('default', pods[0] ?? '', {
        web: { cpu: '250m', memory: '64Mi' },
        proxy: { cpu: '50000000n', memory: '16Mi' },
      });
      fake.seedMetrics('default', pods[1] ?? '', {
        web: { cpu: '0.5', memory: '32Mi' },
        proxy: { cpu: '0', memory: '0' },
      });
      const usage = await provider.resources(id);
      assert.equal(usage.cpu_percent, 80); // 250m + 50m + 500m = 800m = 80 % of one core
      assert.equal(usage.memory_used_mb, 112);
      assert.equal(usage.memory_limit_mb, 192); // (64 + 32) Mi of limits per pod, two pods
      assert.equal(usage.network_in_mb, 0);
    });

    it('5xx answers and dropped connections are thrown as they are (retryable), and a retry converges', async () => {
      const id = newInstanceId();
      fake.failNext({
        method: 'PATCH',
        path: '/services/',
        status: 500,
        message: 'etcdserver: request timed out',
      });
      await assert.rejects(provider.provision(request(id, [web()])), (err: unknown) => {
        assert.ok(!(err instanceof PermanentProviderError));
        assert.ok(err instanceof ApiException && err.code === 500);
        return true;
      });
      fake.failNext({ method: 'PATCH', path: '/deployments/', drop: true });
      await assert.rejects(
        provider.provision(request(id, [web()])),
        (err: unknown) => !(err instanceof PermanentProviderError),
      );
      await provider.provision(request(id, [web()]));
      assert.equal(fake.labelled(`ctrlplane.io/instance-id=${id}`).length, 3);
      fake.failNext({ method: 'DELETE', status: 503 });
      await assert.rejects(
        provider.deprovision(id),
        (err: unknown) => err instanceof ApiException && err.code === 503,
      );
      await provider.deprovision(id);
      assert.equal(fake.labelled(`ctrlplane.io/instance-id=${id}`).length, 0);
    });

    it('a conflicting write in between (stale resourceVersion → 409) is retried with a fresh read', async () => {
      const id = await provisioned(3);
      fake.failNext({
        method: 'PATCH',
        path: `/deployments/${nameOf(id)}`,
        status: 409,
        reason: 'Conflict',
        message: 'the object has been modified',
      });
      await provider.stop(id);
      const deployment = fake.get('apps/v1', 'Deployment', 'default', nameOf(id));
      assert.ok(deployment);
      assert.equal((deployment.spec as { replicas?: number }).replicas, 0);
    });

    it('healthCheck never throws: an unreachable API server is reported unhealthy', async () => {
      const gone = await new FakeKubernetes().start();
      const kc = gone.kubeConfig();
      await gone.stop();
      const health = await new KubernetesProvider({ kubeConfig: kc }).healthCheck();
      assert.equal(health.healthy, false);
      assert.match(health.message, /unreachable/);
    });

    it('capabilities and info', () => {
      assert.deepEqual(provider.info(), { name: 'kubernetes', version: '0.1.0', region: 'local' });
      assert.deepEqual(provider.capabilities(), [
        'provision',
        'deploy',
        'scale',
        'logs',
        'volumes',
        'strategy:rolling',
        'source:manifests',
        'source:argocd',
      ]);
    });

    it('manifests: custom resources of an installed CRD, found through discovery; no CRD, Namespace or other namespace', async () => {
      // The operator installed the CRD; a tenant's manifests may use the (namespaced) kind.
      fake.addResource({
        group: 'example.com',
        version: 'v1',
        kind: 'Widget',
        plural: 'widgets',
        singular: 'widget',
        namespaced: true,
        subresources: [],
      });
      const id = newInstanceId();
      const name = nameOf(id);
      const widget = `apiVersion: example.com/v1
kind: Widget
metadata:
  name: ${name}-w
spec:
  size: 3
`;
      await provider.applyManifests({ instance_id: id, tenant_id: TENANT, docs: [widget, '---\n'] });
      const stored = fake.get('example.com/v1', 'Widget', 'default', `${name}-w`);
      assert.ok(stored);
      assert.equal(
        (stored.metadata as { labels?: Record<string, string> }).labels?.['ctrlplane.io/instance-id'],
        id,
      );
      assert.ok(fake.requests.some((r) => r.method === 'GET' && r.path === '/apis/example.com/v1'));

      const crd = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: { kind: Gadget, plural: gadgets, singular: gadget }
  versions:
    - name: v1
      served: true
      storage: true
      schema: { openAPIV3Schema: { type: object, x-kubernetes-preserve-unknown-fields: true } }
`;
      const otherId = newInstanceId();
      for (const [doc, kind] of [
        [crd, 'CustomResourceDefinition'],
        ['apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x-extra\n', 'Namespace'],
      ] as const) {
        await assert.rejects(
          provider.applyManifests({
            instance_id: otherId,
            tenant_id: TENANT,
            docs: [doc, 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata: {a: b}\n'],
          }),
          refused(new RegExp(`${kind} is cluster-scoped`)),
        );
      }
      assert.equal(
        fake.get('apiextensions.k8s.io/v1', 'CustomResourceDefinition', undefined, 'gadgets.example.com'),
        undefined,
      );
      assert.equal(fake.get('v1', 'Namespace', undefined, 'x-extra'), undefined);
      assert.deepEqual(fake.labelled(`ctrlplane.io/instance-id=${otherId}`), [], 'nothing written');

      await provider.deleteManifests(id);
      assert.equal(fake.get('example.com/v1', 'Widget', 'default', `${name}-w`), undefined);
    });

    it('manifests: cluster-scoped kinds are refused, by name and by discovery, before anything is written', async () => {
      // A cluster-scoped custom kind: discovery says so.
      fake.addResource({
        group: 'example.com',
        version: 'v1',
        kind: 'ClusterGizmo',
        plural: 'clustergizmos',
        singular: 'clustergizmo',
        namespaced: false,
        subresources: [],
      });
      const docs: Array<[string, string]> = [
        [
          'ClusterRoleBinding',
          `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: pwn
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin }
subjects: [{ kind: ServiceAccount, name: default, namespace: default }]
`,
        ],
        [
          'ClusterRole',
          'apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: r\nrules: []\n',
        ],
        ['Namespace', 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: kube-system\n'],
        ['PersistentVolume', 'apiVersion: v1\nkind: PersistentVolume\nmetadata:\n  name: pv\nspec: {}\n'],
        [
          'StorageClass',
          'apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: fast\nprovisioner: x\n',
        ],
        [
          'ValidatingWebhookConfiguration',
          'apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata:\n  name: w\nwebhooks: []\n',
        ],
        ['ClusterGizmo', 'apiVersion: example.com/v1\nkind: ClusterGizmo\nmetadata:\n  name: g\n'],
      ];
      for (const [kind, doc] of docs) {
        const id = newInstanceId();
        await assert.rejects(
          provider.applyManifests({
            instance_id: id,
            tenant_id: TENANT,
            docs: ['apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: first\n', doc],
          }),
          refused(new RegExp(`${kind} .*${kind} is cluster-scoped`)),
        );
        assert.deepEqual(fake.labelled(`ctrlplane.io/instance-id=${id}`), [], `nothing written for ${kind}`);
      }
      assert.equal(
        fake.get('rbac.authorization.k8s.io/v1', 'ClusterRoleBinding', undefined, 'pwn'),
        undefined,
      );
      assert.equal(fake.get('example.com/v1', 'ClusterGizmo', undefined, 'g'), undefined);
    });

    it('manifests: only the instance namespace, whatever an object or the request names', async () => {
      const id = newInstanceId();
      await assert.rejects(
        provider.applyManifests({
          instance_id: id,
          tenant_id: TENANT,
          docs: [
            'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: kube-system\ndata: {a: b}\n',
          ],
        }),
        refused(/ConfigMap c names namespace kube-system: .*only write to its instance's namespace default/),
      );
      await assert.rejects(
        provider.applyManifests({
          instance_id: id,
          tenant_id: TENANT,
          namespace: 'kube-system',
          docs: ['apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata: {a: b}\n'],
        }),
        refused(/namespace default, not in kube-system/),
      );
      assert.equal(fake.get('v1', 'ConfigMap', 'kube-system', 'c'), undefined);
      // The instance's own namespace, named explicitly, is fine.
      await provider.applyManifests({
        instance_id: id,
        tenant_id: TENANT,
        namespace: 'default',
        docs: ['apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: default\ndata: {a: b}\n'],
      });
      assert.ok(fake.get('v1', 'ConfigMap', 'default', 'c'));
      await provider.deleteManifests(id);
      assert.equal(fake.get('v1', 'ConfigMap', 'default', 'c'), undefined);
    });

    it("manifests: another instance's object, or one ctrlplane does not manage, is never taken over", async () => {
      const a = newInstanceId();
      const b = newInstanceId();
      const shared = (value: string) =>
        `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shared-${nameOf(a)}\ndata:\n  owner: "${value}"\n`;
      await provider.applyManifests({ instance_id: a, tenant_id: TENANT, docs: [shared('a')] });
      // Re-applying its own object is fine.
      await provider.applyManifests({ instance_id: a, tenant_id: TENANT, docs: [shared('a2')] });

      await assert.rejects(
        provider.applyManifests({ instance_id: b, tenant_id: 'ten_other', docs: [shared('b')] }),
        refused(/ConfigMap default\/shared-\S+ already exists and is owned by another instance/),
      );
      const kept = fake.get('v1', 'ConfigMap', 'default', `shared-${nameOf(a)}`) as {
        data?: Record<string, string>;
        metadata: { labels: Record<string, string> };
      };
      assert.deepEqual(kept.data, { owner: 'a2' });
      assert.equal(kept.metadata.labels['ctrlplane.io/instance-id'], a);
      assert.deepEqual(
        fake.labelled(`ctrlplane.io/instance-id=${b}`),
        [],
        'b wrote nothing, not even its record',
      );

      // An object nobody manages through ctrlplane (the operator's) is not adopted either.
      fake.seed({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'operator-creds', namespace: 'default' },
      });
      await assert.rejects(
        provider.applyManifests({
          instance_id: b,
          tenant_id: 'ten_other',
          docs: ['apiVersion: v1\nkind: Secret\nmetadata:\n  name: operator-creds\nstringData: {x: y}\n'],
        }),
        refused(/Secret default\/operator-creds already exists and is not managed by ctrlplane/),
      );
      assert.equal(
        (fake.get('v1', 'Secret', 'default', 'operator-creds')?.metadata as { labels?: unknown } | undefined)
          ?.labels,
        undefined,
      );

      // A recorded object that changed hands is not deleted with the instance that recorded it.
      fake.seed({
        ...(fake.get('v1', 'ConfigMap', 'default', `shared-${nameOf(a)}`) as object),
        metadata: {
          name: `shared-${nameOf(a)}`,
          namespace: 'default',
          labels: { 'ctrlplane.io/instance-id': b },
        },
      } as never);
      await provider.deleteManifests(a);
      assert.ok(fake.get('v1', 'ConfigMap', 'default', `shared-${nameOf(a)}`), 'left alone');
      assert.equal(fake.get('v1', 'ConfigMap', 'default', `${nameOf(a)}-manifests`), undefined);
    });

    it("manifests: pod templates carry the reserved labels, and nothing may select another instance's pods", async () => {
      const victim = await provisioned(1);
      const id = newInstanceId();
      const name = nameOf(id);
      const deployment = (templateLabels: string, selector = '{ app: demo }') => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${name}-app
spec:
  replicas: 1
  selector:
    matchLabels: ${selector}
  template:
    metadata:
      labels: ${templateLabels}
    spec:
      containers: [{ name: app, image: ${IMAGE} }]
`;
      const cronJob = `apiVersion: batch/v1
kind: CronJob
metadata:
  name: ${name}-cron
spec:
  schedule: "* * * * *"
  jobTemplate:
    metadata:
      labels: { ctrlplane.io/instance-id: ${victim} }
    spec:
      template:
        metadata:
          labels: { ctrlplane.io/instance-id: ${victim}, ctrlplane.io/tenant-id: ten_victim }
        spec:
          restartPolicy: Never
          containers: [{ name: job, image: ${IMAGE} }]
`;
      const service = `apiVersion: v1
kind: Service
metadata:
  name: ${name}-svc
spec:
  selector: { app: demo }
  ports: [{ port: 80 }]
`;
      // A forged instance id on the pod template: the reserved labels win, so the pods never join the victim.
      await provider.applyManifests({
        instance_id: id,
        tenant_id: TENANT,
        docs: [
          deployment(
            `{ app: demo, ctrlplane.io/instance-id: ${victim}, ctrlplane.io/tenant-id: ten_victim }`,
          ),
          cronJob,
          service,
        ],
      });
      const applied = fake.get('apps/v1', 'Deployment', 'default', `${name}-app`) as {
        spec: { template: { metadata: { labels: Record<string, string> } } };
      };
      assert.deepEqual(applied.spec.template.metadata.labels, {
        app: 'demo',
        'ctrlplane.io/instance-id': id,
        'ctrlplane.io/tenant-id': TENANT,
        'ctrlplane.io/managed-by': 'ctrlplane',
      });
      const cron = fake.get('batch/v1', 'CronJob', 'default', `${name}-cron`) as {
        spec: {
          jobTemplate: {
            metadata: { labels: Record<string, string> };
            spec: { template: { metadata: { labels: Record<string, string> } } };
          };
        };
      };
      assert.equal(cron.spec.jobTemplate.metadata.labels['ctrlplane.io/instance-id'], id);
      assert.equal(cron.spec.jobTemplate.spec.template.metadata.labels['ctrlplane.io/instance-id'], id);
      assert.equal(cron.spec.jobTemplate.spec.template.metadata.labels['ctrlplane.io/tenant-id'], TENANT);
      // A Service's selector is narrowed to the instance's own pods.
      const svc = fake.get('v1', 'Service', 'default', `${name}-svc`) as {
        spec: { selector: Record<string, string> };
      };
      assert.deepEqual(svc.spec.selector, { app: 'demo', 'ctrlplane.io/instance-id': id });
      const pods = fake.simulatePods('default', `${name}-app`, {});
      assert.ok(pods.length > 0);
      const victimService = fake.get('v1', 'Service', 'default', nameOf(victim)) as {
        spec: { selector: Record<string, string> };
      };
      assert.equal(
        fake.list('v1', 'Pod', {
          namespace: 'default',
          labelSelector: Object.entries(victimService.spec.selector)
            .map(([k, v]) => `${k}=${v}`)
            .join(','),
        }).length,
        0,
        "no pod of the manifests joins the victim's Service",
      );

      // Selecting on another instance's id is refused outright, wherever it is.
      const other = newInstanceId();
      for (const docs of [
        [deployment('{ app: demo }', `{ ctrlplane.io/instance-id: ${victim} }`)],
        [service.replace('{ app: demo }', `{ ctrlplane.io/instance-id: ${victim} }`)],
        [
          `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: deny
spec:
  podSelector:
    matchExpressions: [{ key: ctrlplane.io/instance-id, operator: Exists }]
  policyTypes: [Ingress]
`,
        ],
      ]) {
        await assert.rejects(
          provider.applyManifests({ instance_id: other, tenant_id: TENANT, docs }),
          refused(/reserved label ctrlplane\.io\/instance-id/),
        );
      }
      assert.deepEqual(fake.labelled(`ctrlplane.io/instance-id=${other}`), []);
      await provider.deleteManifests(id);
    });

    it('manifests: in a shared namespace, RBAC objects and service-account token Secrets are refused', async () => {
      const id = newInstanceId();
      for (const [doc, pattern] of [
        [
          'apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: rb\nroleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: admin }\nsubjects: []\n',
          /RBAC objects are not accepted in a namespace shared/,
        ],
        [
          'apiVersion: v1\nkind: Secret\nmetadata:\n  name: tok\n  annotations: { kubernetes.io/service-account.name: default }\ntype: kubernetes.io/service-account-token\n',
          /service-account token Secrets are not accepted/,
        ],
      ] as const) {
        await assert.rejects(
          provider.applyManifests({ instance_id: id, tenant_id: TENANT, docs: [doc] }),
          refused(pattern),
        );
      }
    });

    it('argocd: project and destination server from the configuration, destination namespace the instance one', async () => {
      const configured = new KubernetesProvider({
        kubeConfig: fake.kubeConfig(),
        helm: false,
        argoProject: 'tenants',
        argoDestServer: 'https://cluster.example:6443',
      });
      const id = newInstanceId();
      const app = { repo_url: 'https://example.com/repo.git', path: 'app' };
      await configured.argoApply({ instance_id: id, tenant_id: TENANT, app });
      const stored = fake.get('argoproj.io/v1alpha1', 'Application', 'argocd', nameOf(id)) as {
        spec: Record<string, unknown>;
      };
      assert.equal(stored.spec.project, 'tenants');
      assert.deepEqual(stored.spec.destination, {
        server: 'https://cluster.example:6443',
        namespace: 'default',
      });
      // Repeating the configured values is fine; anything else is refused, and nothing is written.
      await configured.argoApply({
        instance_id: id,
        tenant_id: TENANT,
        app: {
          ...app,
          project: 'tenants',
          dest_server: 'https://cluster.example:6443',
          dest_namespace: 'default',
        },
      });
      const other = newInstanceId();
      for (const [extra, field] of [
        [{ project: 'admin' }, 'project'],
        [{ dest_server: 'https://other-cluster:6443' }, 'dest_server'],
        [{ dest_namespace: 'kube-system' }, 'dest_namespace'],
      ] as const) {
        await assert.rejects(
          configured.argoApply({ instance_id: other, tenant_id: TENANT, app: { ...app, ...extra } }),
          refused(new RegExp(`${field} is .*\\(set by the provider\\)`)),
        );
      }
      assert.equal(fake.get('argoproj.io/v1alpha1', 'Application', 'argocd', nameOf(other)), undefined);
      // The defaults: project default, the in-cluster server.
      const defaults = newInstanceId();
      await provider.argoApply({ instance_id: defaults, tenant_id: TENANT, app });
      const plainApp = fake.get('argoproj.io/v1alpha1', 'Application', 'argocd', nameOf(defaults)) as {
        spec: Record<string, unknown>;
      };
      assert.equal(plainApp.spec.project, 'default');
      assert.deepEqual(plainApp.spec.destination, {
        server: 'https://kubernetes.default.svc',
        namespace: 'default',
      });
    });

    it('logs: an abort while the request is being made ends the stream; so does a dropped connection', async () => {
      const id = await provisioned(1);
      const [pod] = fake.simulatePods('default', nameOf(id), {});
      assert.ok(pod);
      fake.appendLog('default', pod, 'web', 'one');
      const target = { namespace: 'default', pod, container: 'web' };

      // Aborted after the call started, before client-node's Log.log has its answer.
      const abort = new AbortController();
      const early = streamPodLog(fake.kubeConfig(), target, { follow: true }, abort.signal);
      const first = early.next();
      abort.abort();
      assert.deepEqual(await within(first, 2000), { done: true, value: undefined });

      // The API server drops the connection of a followed log: the stream ends instead of waiting forever.
      const lines: string[] = [];
      const reading = (async () => {
        for await (const l of streamPodLog(fake.kubeConfig(), target, { follow: true })) {
          lines.push(l.line);
          if (lines.length === 1) fake.dropLogs('default', pod);
        }
      })();
      await within(reading, 2000);
      assert.deepEqual(lines, ['one']);
    });

    it('argocd: without Argo CD installed the source is refused as unsupported_source', async () => {
      const bare = await new FakeKubernetes({ argoCd: false }).start();
      try {
        const p = new KubernetesProvider({ kubeConfig: bare.kubeConfig(), helm: false });
        await assert.rejects(
          p.argoApply({
            instance_id: newInstanceId(),
            tenant_id: TENANT,
            app: { repo_url: 'https://example.com/repo.git' },
          }),
          (err: unknown) => err instanceof PermanentProviderError && err.code === 'unsupported_source',
        );
      } finally {
        await bare.stop();
      }
    });
  });
}

// ------------------------------------------------------------------------------------------------------------
// No cluster involved.
// ------------------------------------------------------------------------------------------------------------

describe('Kubernetes provider — helm through a stand-in CLI', () => {
  // A shell script standing in for the helm binary (none is installed here): it records its arguments and prints
  // what helm 3 prints for `-o json`. This checks the command lines, not Helm.
  let dir: string;
  let helm: string;
  let provider: KubernetesProvider;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fake-helm-'));
    helm = join(dir, 'helm');
    await writeFile(
      helm,
      `#!/bin/sh
echo "$@" >> "${dir}/calls"
case "$1" in
  upgrade) echo '{"name":"'"$3"'","namespace":"default","version":1,"info":{"status":"deployed","description":"Install complete"}}' ;;
  list) if [ -f "${dir}/installed" ]; then echo '[{"name":"inst-abc","namespace":"default","status":"deployed"}]'; else echo '[]'; fi ;;
  status) echo '{"name":"inst-abc","namespace":"default","version":1,"info":{"status":"deployed","description":"Install complete"}}' ;;
  uninstall) echo 'release "inst-abc" uninstalled' ;;
esac
`,
    );
    await chmod(helm, 0o755);
    // helm gets a kubeconfig file, but nothing here contacts a cluster.
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'none', server: 'https://127.0.0.1:1', skipTLSVerify: true }],
      users: [{ name: 'u' }],
      contexts: [{ name: 'c', cluster: 'none', user: 'u' }],
      currentContext: 'c',
    });
    provider = new KubernetesProvider({ kubeConfig: kc, helm });
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('advertises source:helm and runs upgrade --install with repo, version and values', async () => {
    assert.ok(provider.capabilities().includes('source:helm'));
    const result = await provider.helmInstall({
      instance_id: 'inst_abc',
      tenant_id: TENANT,
      chart: {
        repo: 'https://charts.example.com',
        chart: 'nginx',
        version: '1.2.3',
        values: { replicas: 2 },
      },
    });
    assert.equal(result.provider_ref, 'helm:default/inst-abc');
    assert.equal(result.metadata?.revision, '1');
    const calls = await readFile(join(dir, 'calls'), 'utf8');
    assert.match(
      calls,
      /^upgrade --install inst-abc nginx --repo https:\/\/charts\.example\.com --namespace default --output json --version 1\.2\.3 --values \S+values\.json --kubeconfig \S+kubeconfig$/m,
    );
    assert.doesNotMatch(calls, /--create-namespace/);

    await writeFile(join(dir, 'installed'), '1');
    const status = await provider.helmStatus('inst_abc');
    assert.equal(status.state, 'running');
    assert.equal(status.ready, true);
    await provider.helmUninstall('inst_abc');
    assert.match(await readFile(join(dir, 'calls'), 'utf8'), /^uninstall inst-abc --namespace default/m);
  });
});

describe('Kubernetes provider — helm namespace (stand-in CLI)', () => {
  it("installs into the instance namespace only: a source's other namespace is refused, helm never creates one", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fake-helm-ns-'));
    try {
      const helm = join(dir, 'helm');
      await writeFile(
        helm,
        `#!/bin/sh\necho "$@" >> "${dir}/calls"\necho '{"name":"inst-ns","namespace":"apps","version":1,"info":{"status":"deployed"}}'\n`,
      );
      await chmod(helm, 0o755);
      const kc = new KubeConfig();
      kc.loadFromOptions({
        clusters: [{ name: 'none', server: 'https://127.0.0.1:1', skipTLSVerify: true }],
        users: [{ name: 'u' }],
        contexts: [{ name: 'c', cluster: 'none', user: 'u' }],
        currentContext: 'c',
      });
      const provider = new KubernetesProvider({ kubeConfig: kc, namespace: 'apps', helm });
      const chart = { repo: 'https://charts.example.com', chart: 'nginx' };
      for (const req of [
        { namespace: 'kube-system', chart },
        { chart: { ...chart, namespace: 'kube-system' } },
      ]) {
        await assert.rejects(
          provider.helmInstall({ instance_id: 'inst_ns', tenant_id: TENANT, ...req }),
          refused(/installed in its instance's namespace apps, not in kube-system/),
        );
      }
      await assert.rejects(readFile(join(dir, 'calls'), 'utf8'), 'helm did not run');

      // The instance namespace, named or not, is fine.
      const result = await provider.helmInstall({
        instance_id: 'inst_ns',
        tenant_id: TENANT,
        namespace: 'apps',
        chart: { ...chart, namespace: 'apps' },
      });
      assert.equal(result.provider_ref, 'helm:apps/inst-ns');
      await provider.helmInstall({ instance_id: 'inst_ns', tenant_id: TENANT, namespace: '', chart });
      const calls = (await readFile(join(dir, 'calls'), 'utf8')).trim().split('\n');
      assert.equal(calls.length, 2);
      for (const call of calls) {
        assert.match(
          call,
          /^upgrade --install inst-ns nginx --repo https:\/\/charts\.example\.com --namespace apps /,
        );
        assert.doesNotMatch(call, /--create-namespace/);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('Kubernetes provider — tenant namespace names', () => {
  it('are injective: tenants whose ids sanitize alike get different namespaces, all DNS labels of ≤ 63', () => {
    const ids = [
      'a_b',
      'a-b',
      'A.B',
      'a.b',
      'A_B',
      'a b',
      `t_${'x'.repeat(80)}`,
      `t_${'x'.repeat(80)}y`,
      'ten_ABC',
    ];
    const names = ids.map((id) => tenantNamespace('ctrlplane', id));
    assert.equal(new Set(names).size, ids.length, names.join(' '));
    for (const name of names) {
      assert.ok(name.length <= 63, name);
      assert.match(name, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
      assert.match(name, /^ctrlplane-/);
    }
    assert.match(tenantNamespace('ctrlplane', 'a_b'), /^ctrlplane-a-b-[0-9a-f]{10}$/);
    assert.equal(tenantNamespace('ctrlplane', 'a_b'), tenantNamespace('ctrlplane', 'a_b'), 'stable');
    // A long prefix still leaves a DNS label.
    const long = tenantNamespace('p'.repeat(63), 'ten_1');
    assert.ok(long.length <= 63);
    assert.match(long, /^p+-[0-9a-f]{10}$/);
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'none', server: 'https://127.0.0.1:1', skipTLSVerify: true }],
      users: [{ name: 'u' }],
      contexts: [{ name: 'c', cluster: 'none', user: 'u' }],
      currentContext: 'c',
    });
    const perTenant = new KubernetesProvider({ kubeConfig: kc, namespacePerTenant: true, helm: false });
    assert.notEqual(perTenant.namespaceFor('a_b'), perTenant.namespaceFor('a-b'));
  });
});

describe('Kubernetes provider — configuration from the environment', () => {
  it('is not configured without CP_K8S_KUBECONFIG, KUBECONFIG or a pod service account', () => {
    assert.equal(kubernetesOptionsFromEnv({}), undefined);
    assert.equal(kubernetesProviderFromEnv({ CP_K8S_NAMESPACE: 'x' }), undefined);
    assert.equal(kubernetesOptionsFromEnv({ KUBECONFIG: '/x', CP_K8S_ENABLED: 'false' }), undefined);
  });

  it('reads the CP_K8S_* settings', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kubeconfig-'));
    try {
      // A kubeconfig whose server nobody listens on: nothing here needs a cluster.
      const kc = new KubeConfig();
      kc.loadFromOptions({
        clusters: [{ name: 'none', server: 'http://127.0.0.1:1', skipTLSVerify: true }],
        users: [{ name: 'u' }],
        contexts: [{ name: 'c', cluster: 'none', user: 'u' }],
        currentContext: 'c',
      });
      const path = join(dir, 'config');
      await writeFile(path, kc.exportConfig());
      const env = {
        CP_K8S_KUBECONFIG: path,
        CP_K8S_CONTEXT: 'c',
        CP_K8S_NAMESPACE: 'apps',
        CP_K8S_NAMESPACE_PER_TENANT: 'true',
        CP_K8S_NAMESPACE_PREFIX: 'tenant',
        CP_K8S_LABELS: 'env=dev, team=core',
        CP_K8S_IMAGE_PULL_SECRETS: 'regcred, other',
        CP_K8S_ARGO_NAMESPACE: 'gitops',
        CP_K8S_ARGO_PROJECT: 'tenants',
        CP_K8S_REGION: 'eu-west',
        CP_K8S_HELM_BIN: 'false',
      };
      assert.deepEqual(kubernetesOptionsFromEnv(env), {
        kubeconfigPath: path,
        context: 'c',
        namespace: 'apps',
        namespacePerTenant: true,
        namespacePrefix: 'tenant',
        labels: { env: 'dev', team: 'core' },
        imagePullSecrets: ['regcred', 'other'],
        argoNamespace: 'gitops',
        argoProject: 'tenants',
        argoDestServer: 'https://kubernetes.default.svc',
        region: 'eu-west',
        helm: false,
      });
      const provider = kubernetesProviderFromEnv(env);
      assert.ok(provider);
      assert.equal(provider.info().region, 'eu-west');
      assert.match(provider.namespaceFor('ten_ABC'), /^tenant-ten-abc-[0-9a-f]{10}$/);
      const health = await provider.healthCheck();
      assert.equal(health.healthy, false);
      assert.match(health.message, /unreachable/);
      assert.throws(() => kubernetesOptionsFromEnv({ ...env, CP_K8S_NAMESPACE: '' }), /CP_K8S_NAMESPACE/);
      assert.throws(
        () => kubernetesOptionsFromEnv({ ...env, CP_K8S_NAMESPACE_PER_TENANT: 'maybe' }),
        /CP_K8S_NAMESPACE_PER_TENANT/,
      );
      assert.throws(
        () => kubernetesProviderFromEnv({ ...env, CP_K8S_CONTEXT: 'missing' }),
        /no context "missing"/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
