/**
 * The Kubernetes provider's services source (Deployments and StatefulSets), end to end through
 * @kubernetes/client-node against the run's REAL cluster (test/support/kubernetes.ts): kube-apiserver (server-side
 * apply, validation, admission), kube-controller-manager (ReplicaSets, pods, StatefulSet claims, garbage
 * collection, namespace deletion) and kube-scheduler are the real ones; the pods land on a kwok node, which reports
 * them Running without running any container. Everything runs in a namespace of its own. The tenant-namespace name
 * tests at the end need no cluster (the configuration's are in test/kubernetes-config.unit.test.ts).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  KubeConfig,
  type KubernetesObject,
  type V1ConfigMap,
  type V1Deployment,
  type V1PersistentVolumeClaim,
  type V1ReplicaSet,
  type V1Secret,
  type V1Service,
  type V1StatefulSet,
} from '@kubernetes/client-node';
import type { ServiceSpec } from '../domain/instance.ts';
import { KubernetesProvider } from '../providers/kubernetes/index.ts';
import { tenantNamespace } from '../providers/kubernetes/names.ts';
import { PermanentProviderError, type ProvisionRequest } from '../providers/provider.ts';
import {
  Cluster,
  eventually,
  nameOf,
  newInstanceId,
  type ObjectKind,
  testKubeConfig,
} from './support/kubernetes.ts';

const IMAGE = 'registry.k8s.io/pause:3.9';
const TENANT = 'ten_test';

interface Target {
  kc: KubeConfig;
  namespace: string;
  dispose(): Promise<void>;
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

/** The kinds the provider writes for an instance, and the claims that follow from them. */
const INSTANCE_KINDS: ObjectKind[] = [
  ['apps/v1', 'Deployment'],
  ['apps/v1', 'StatefulSet'],
  ['v1', 'Service'],
  ['v1', 'ConfigMap'],
  ['v1', 'Secret'],
  ['v1', 'PersistentVolumeClaim'],
];

/** A namespace of its own on the run's cluster. */
async function realTarget(): Promise<Target> {
  const kc = testKubeConfig();
  const ns = await new Cluster(kc).namespace();
  return { kc, namespace: ns.name, dispose: ns.dispose };
}

async function dispose(target: Target | undefined): Promise<void> {
  await target?.dispose().catch(() => {});
}

describe('Kubernetes provider — services source (real control plane)', () => {
  let target: Target;
  let provider: KubernetesProvider;
  /** Reads in the test's namespace unless given another. */
  let cluster: Cluster;
  let admin: Cluster;
  const created: string[] = [];

  before(async () => {
    target = await realTarget();
    provider = new KubernetesProvider({
      kubeConfig: target.kc,
      namespacePerTenant: false,
      namespace: target.namespace,
      labels: { 'example.com/owner': 'platform', team: 'config' },
      helm: false,
    });
    admin = new Cluster(target.kc);
    cluster = admin.in(target.namespace);
  });

  after(async () => {
    for (const id of created) await provider?.deprovision(id).catch(() => {});
    await dispose(target);
  });

  /**
   * Every object of the instance of the kinds the provider writes, plus the claims that follow from them; with
   * `pods`, its pods too (on a real cluster the controllers create those).
   */
  async function ofInstance(
    instanceId: string,
    namespace = target.namespace,
    pods = false,
  ): Promise<string[]> {
    const kinds: ObjectKind[] = pods ? [...INSTANCE_KINDS, ['v1', 'Pod']] : INSTANCE_KINDS;
    const found = await admin.labelled(instanceId, namespace, kinds);
    // The Service carries the instance labels, but look it up by name too: nothing of the instance may be left.
    if (await admin.read('v1', 'Service', nameOf(instanceId), namespace))
      found.push(`Service/${nameOf(instanceId)}`);
    return [...new Set(found)].sort();
  }

  function track(id: string): string {
    created.push(id);
    return id;
  }

  /** Waits until the instance is running with `count` pods the scheduler put on the node; their names. */
  async function runningWithPods(id: string, count: number): Promise<string[]> {
    let names: string[] = [];
    await eventually(async () => {
      const status = await provider.status(id);
      const pods = (await admin.pods(target.namespace, id)).filter((p) => !p.metadata?.deletionTimestamp);
      names = pods.map((p) => p.metadata?.name ?? '');
      return (
        status.state === 'running' &&
        pods.length === count &&
        pods.every((p) => p.status?.phase === 'Running' && !!p.spec?.nodeName)
      );
    }, `${count} running pods of ${id}`);
    return names;
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

  it('stop scales to 0 and records the replica count; start restores it (the pods go and come back)', async () => {
    const id = track(newInstanceId());
    const name = nameOf(id);
    await provider.provision(
      request(id, [web({ resources: { cpu_millis: 100, memory_mb: 32, replicas: 3 } })]),
    );
    await runningWithPods(id, 3);

    await provider.stop(id);
    let deployment = await cluster.must<V1Deployment>('apps/v1', 'Deployment', name);
    assert.equal(deployment.spec?.replicas, 0);
    assert.equal(deployment.metadata?.annotations?.['ctrlplane.io/replicas-before-stop'], '3');
    // The ReplicaSet controller deletes the pods; the status follows them down.
    await eventually(async () => (await provider.status(id)).state === 'stopped', 'state stopped');
    // kwok finishes the deletion of the terminating pods.
    await eventually(async () => (await admin.pods(target.namespace, id)).length === 0, 'no pods');

    await provider.stop(id); // again: still 0, and the recorded count is not overwritten with 0
    deployment = await cluster.must<V1Deployment>('apps/v1', 'Deployment', name);
    assert.equal(deployment.metadata?.annotations?.['ctrlplane.io/replicas-before-stop'], '3');

    await provider.start(id);
    deployment = await cluster.must<V1Deployment>('apps/v1', 'Deployment', name);
    assert.equal(deployment.spec?.replicas, 3);
    assert.equal(deployment.metadata?.annotations?.['ctrlplane.io/replicas-before-stop'], undefined);

    await provider.start(id); // again: a no-op
    assert.equal((await cluster.must<V1Deployment>('apps/v1', 'Deployment', name)).spec?.replicas, 3);
    await runningWithPods(id, 3);
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

  it('restart rolls the pods: a new ReplicaSet replaces every pod, the old one is scaled to 0', async () => {
    const id = track(newInstanceId());
    await provider.provision(
      request(id, [web({ resources: { cpu_millis: 100, memory_mb: 32, replicas: 2 } })]),
    );
    const before = await runningWithPods(id, 2);
    const started = Date.now();
    await provider.restart(id);
    const deployment = await cluster.must<V1Deployment>('apps/v1', 'Deployment', nameOf(id));
    const stamp = deployment.spec?.template.metadata?.annotations?.['ctrlplane.io/restartedAt'];
    assert.match(stamp ?? '', /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
    assert.ok(Date.parse(stamp ?? '') >= Math.floor(started / 1000) * 1000);

    // The Deployment controller rolls out the new template: all pods replaced, the rollout complete.
    await eventually(async () => {
      const d = await cluster.must<V1Deployment>('apps/v1', 'Deployment', nameOf(id));
      const pods = (await admin.pods(target.namespace, id)).filter((p) => !p.metadata?.deletionTimestamp);
      return (
        d.status?.observedGeneration === d.metadata?.generation &&
        d.status?.updatedReplicas === 2 &&
        d.status?.availableReplicas === 2 &&
        (d.status?.replicas ?? 0) === 2 &&
        pods.length === 2 &&
        pods.every((p) => !before.includes(p.metadata?.name ?? ''))
      );
    }, 'the rollout of the restart');
    const sets = await admin.list<V1ReplicaSet>(
      'apps/v1',
      'ReplicaSet',
      target.namespace,
      `ctrlplane.io/instance-id=${id}`,
    );
    assert.deepEqual(sets.map((rs) => rs.spec?.replicas).sort(), [0, 2]);
    assert.equal((await provider.status(id)).state, 'running');
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
    assert.ok((await ofInstance(id)).length >= 4);
    await runningWithPods(id, 1);
    await provider.deprovision(id);
    await eventually(async () => (await ofInstance(id, target.namespace, true)).length === 0);
    await provider.deprovision(id);
    assert.deepEqual(await ofInstance(id, target.namespace, true), []);
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
    assert.ok((await ofInstance(id)).length >= 1, 'the crashed attempt wrote something');

    await provider.provision(request(id, services));
    await provider.provision(request(id, services));
    const name = nameOf(id);
    assert.deepEqual(await ofInstance(id), [
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
    assert.deepEqual(await ofInstance(id), [
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
    assert.deepEqual(await ofInstance(id), [`Deployment/${name}`]);
  });

  it('stateful_set: a StatefulSet with volume claim templates and a headless Service; claims bind, pods run', async () => {
    const id = track(newInstanceId());
    const name = nameOf(id);
    // The operator's storage: three 1 GiB volumes without a class, for the PersistentVolume binder of
    // kube-controller-manager to bind the claims to (no container ever mounts them: kwok runs none).
    const volumes = [0, 1, 2].map((i) => `${name}-pv-${i}`);
    for (const pv of volumes) {
      await admin.apply({
        apiVersion: 'v1',
        kind: 'PersistentVolume',
        metadata: { name: pv },
        spec: {
          capacity: { storage: '1Gi' },
          accessModes: ['ReadWriteOnce'],
          persistentVolumeReclaimPolicy: 'Retain',
          storageClassName: '',
          hostPath: { path: `/tmp/${pv}` },
        },
      } as KubernetesObject);
    }
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
    try {
      const sts = await cluster.must<V1StatefulSet>('apps/v1', 'StatefulSet', name);
      assert.equal(sts.spec?.serviceName, name);
      assert.equal(sts.spec?.replicas, 2);
      assert.deepEqual(
        sts.spec?.volumeClaimTemplates?.map((t) => [
          t.metadata?.name,
          t.spec?.accessModes,
          t.spec?.resources?.requests,
        ]),
        // The provider asks for 1024Mi; the API server stores the canonical form.
        [['data', ['ReadWriteOnce'], { storage: '1Gi' }]],
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

      // The StatefulSet controller makes one claim per replica; they bind to the volumes above and the pods run.
      await runningWithPods(id, 3);
      const claims = await admin.list<V1PersistentVolumeClaim>(
        'v1',
        'PersistentVolumeClaim',
        target.namespace,
        `ctrlplane.io/instance-id=${id}`,
      );
      assert.deepEqual(
        claims.map((c) => [c.metadata?.name, c.status?.phase]).sort(),
        [0, 1, 2].map((i) => [`data-${name}-${i}`, 'Bound']),
      );
      await provider.deprovision(id);
      await eventually(async () => (await ofInstance(id, target.namespace, true)).length === 0);
    } finally {
      for (const pv of volumes) await admin.delete('v1', 'PersistentVolume', pv);
    }
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

  it('one namespace per tenant, created on demand; the pods run there', async () => {
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
      const ns = await admin.must('v1', 'Namespace', namespace);
      assert.equal(ns.metadata?.labels?.['ctrlplane.io/tenant-id'], tenant);
      assert.ok(await cluster.read('apps/v1', 'Deployment', nameOf(id), namespace));
      // The namespace is a real one: the controller-manager gives it its ServiceAccount, and the pods run.
      await eventually(async () => {
        const pods = await admin.pods(namespace, id);
        return pods.length === 1 && pods[0]?.status?.phase === 'Running';
      }, 'the pod in the tenant namespace');
      assert.equal((await perTenant.status(id)).state, 'running');

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
      await eventually(async () => (await ofInstance(id, namespace, true)).length === 0);
    } finally {
      await cluster.api
        .delete({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } })
        .catch(() => {});
    }
  });
  it('healthCheck reports the API server reachable', async () => {
    const health = await provider.healthCheck();
    assert.equal(health.healthy, true, health.message);
    assert.match(health.message, /reachable/);
    assert.ok(health.latency_ms >= 0);
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
