import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { V1Pod } from '@kubernetes/client-node';
import { tenantNamespace } from '../providers/kubernetes/index.ts';
import { apiClient } from './support/http.ts';
import { Cluster, eventually, type ObjectKind } from './support/kubernetes.ts';
import { type Stack, startStack, uniqueTenant } from './support/stack.ts';

// Real Temporal, PostgreSQL and worker, and the run's REAL Kubernetes cluster (test/support/kubernetes.ts): the
// instance's objects are written to the real kube-apiserver, its pods made by the real controllers, admitted by
// Pod Security (restricted), scheduled onto kwok's node and reported Running there (no container runs), in the
// tenant's own namespace, as the default configuration makes it.
const cluster = new Cluster();

/** What an instance leaves in its namespace: its objects and what the controllers made of them. */
const INSTANCE_KINDS: ObjectKind[] = [
  ['apps/v1', 'Deployment'],
  ['apps/v1', 'ReplicaSet'],
  ['v1', 'Pod'],
  ['v1', 'Service'],
  ['v1', 'Secret'],
  ['v1', 'ConfigMap'],
];
const labelled = (ns: string, id: string) => cluster.labelled(id, ns, INSTANCE_KINDS);

async function runningPods(ns: string, id: string): Promise<V1Pod[]> {
  return (await cluster.pods(ns, id)).filter(
    (p) => !p.metadata?.deletionTimestamp && p.status?.phase === 'Running',
  );
}

describe('an instance on Kubernetes, through the API', () => {
  let stack: Stack;
  let api: ReturnType<typeof apiClient>;
  const tenant = uniqueTenant('k8s');
  const prefix = `k8sapi-${randomBytes(3).toString('hex')}`;
  const system = `${prefix}-system`;
  // The default: one namespace per tenant, made by the provider.
  const ns = tenantNamespace(prefix, tenant);

  before(async () => {
    stack = await startStack({
      env: {
        CTRLPLANE_K8S_KUBECONFIG: cluster.kubeconfigPath,
        CTRLPLANE_K8S_NAMESPACE_PREFIX: prefix,
        CTRLPLANE_K8S_SYSTEM_NAMESPACE: system,
      },
    });
    api = apiClient(stack.api.url, await stack.token(tenant));
  });

  after(async () => {
    await stack?.close();
    for (const name of [ns, system]) await cluster.delete('v1', 'Namespace', name);
    for (const kind of ['ValidatingAdmissionPolicyBinding', 'ValidatingAdmissionPolicy']) {
      await cluster.delete('admissionregistration.k8s.io/v1', kind, `${system}-service-exposure`);
    }
  });

  it('a manifests source with a privileged pod fails, naming the object, the path and the rule; nothing is written', async () => {
    const inline = [
      'apiVersion: v1',
      'kind: Pod',
      'metadata: { name: root-on-node }',
      'spec:',
      '  hostPID: true',
      '  containers: [{ name: c, image: registry.k8s.io/pause:3.9, securityContext: { privileged: true } }]',
      '  volumes: [{ name: root, hostPath: { path: / } }]',
      '',
    ].join('\n');
    const res = await api('POST', '/v1/instances?wait=30s', {
      name: 'root-grab',
      provider_name: 'kubernetes',
      source: { type: 'manifests', manifests: { inline } },
    });
    assert.ok(res.status === 201 || res.status === 202, JSON.stringify(res.body));
    assert.equal(res.body.state, 'failed', JSON.stringify(res.body));
    assert.match(
      res.body.error,
      /Pod root-on-node \(document 1\): spec\.hostPID: .*\(rule host-namespaces\)/,
      JSON.stringify(res.body),
    );
    assert.equal(await cluster.read('v1', 'Pod', 'root-on-node', ns), undefined);
    assert.deepEqual(await labelled(ns, res.body.id), []);
  });

  it('creates, stops, starts, scales, restarts and deletes the objects of an instance', async () => {
    const res = await api('POST', '/v1/instances?wait=30s', {
      name: 'kube-web',
      provider_name: 'kubernetes',
      labels: { team: 'blue' },
      services: [
        {
          name: 'web',
          image: 'nginx:1.27',
          env: { MODE: 'prod' },
          ports: [{ container: 8080 }],
          resources: { cpu_millis: 250, memory_mb: 128, replicas: 3 },
        },
        { name: 'agent', image: 'busybox:1.36', role: 'sidecar', env: { LEVEL: 'debug' } },
      ],
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.body.state, 'running', JSON.stringify(res.body));
    const id: string = res.body.id;
    const name = id.replace('_', '-');
    assert.equal(res.body.provider_ref, `k8s:${ns}/${name}`);
    // The controllers make the three pods, the scheduler places them, the node reports them Running.
    await eventually(async () => (await runningPods(ns, id)).length === 3, 'three running pods');

    // client-node gives model instances: compare their JSON.
    const deployment = JSON.parse(JSON.stringify(await cluster.read('apps/v1', 'Deployment', name, ns)));
    assert.ok(deployment, 'a Deployment named after the instance');
    assert.equal(deployment.metadata.labels['ctrlplane.io/instance-id'], id);
    assert.equal(deployment.metadata.labels['ctrlplane.io/tenant-id'], tenant);
    assert.equal(deployment.metadata.labels.team, 'blue');
    assert.equal(deployment.spec.replicas, 3);
    const web = deployment.spec.template.spec.containers.find((c: { name: string }) => c.name === 'web');
    assert.deepEqual(web.resources, {
      requests: { cpu: '250m', memory: '128Mi' },
      limits: { cpu: '250m', memory: '128Mi' },
    });
    assert.equal(web.ports[0].containerPort, 8080);
    const service = (await cluster.read('v1', 'Service', name, ns)) as any;
    assert.equal(service.spec.ports[0].port, 8080);
    // Env (which may hold resolved secret values) is in Secrets, referenced with envFrom.secretRef; never in ConfigMaps.
    const webEnv = (await cluster.read('v1', 'Secret', `${name}-web-env`, ns)) as
      | { type?: string; data?: Record<string, string> }
      | undefined;
    assert.ok(webEnv, 'the env Secret of web');
    assert.equal(webEnv.type, 'Opaque');
    assert.equal(Buffer.from(webEnv.data?.MODE ?? '', 'base64').toString(), 'prod');
    assert.ok(await cluster.read('v1', 'Secret', `${name}-agent-env`, ns));
    assert.deepEqual(web.envFrom, [{ secretRef: { name: `${name}-web-env` } }]);
    assert.equal(await cluster.read('v1', 'ConfigMap', `${name}-web-env`, ns), undefined);
    assert.equal(await cluster.read('v1', 'ConfigMap', `${name}-agent-env`, ns), undefined);

    const stopped = await api('POST', `/v1/instances/${id}/stop?wait=true`);
    assert.equal(stopped.status, 200);
    assert.equal(stopped.body.state, 'stopped', JSON.stringify(stopped.body));
    assert.equal(((await cluster.read('apps/v1', 'Deployment', name, ns)) as any).spec.replicas, 0);
    await eventually(async () => (await cluster.pods(ns, id)).length === 0, 'the pods gone');
    const started = await api('POST', `/v1/instances/${id}/start?wait=true`);
    assert.equal(started.status, 200);
    assert.equal(started.body.state, 'running', JSON.stringify(started.body));
    assert.equal(
      ((await cluster.read('apps/v1', 'Deployment', name, ns)) as any).spec.replicas,
      3,
      'the earlier count',
    );
    await eventually(async () => (await runningPods(ns, id)).length === 3, 'the pods back');

    const scaled = await api('POST', `/v1/instances/${id}/scale?wait=true`, { cpu_millis: 500, replicas: 2 });
    assert.equal(scaled.status, 200, JSON.stringify(scaled.body));
    const afterScale = (await cluster.read('apps/v1', 'Deployment', name, ns)) as any;
    assert.equal(afterScale.spec.replicas, 2);
    const scaledWeb = afterScale.spec.template.spec.containers.find(
      (c: { name: string }) => c.name === 'web',
    );
    assert.equal(scaledWeb.resources.limits.cpu, '500m');
    assert.equal(scaledWeb.resources.limits.memory, '128Mi', 'memory kept');
    await eventually(async () => {
      const pods = await runningPods(ns, id);
      return pods.length === 2 && pods.every((p) => p.spec?.containers[0]?.resources?.limits?.cpu === '500m');
    }, 'two pods with the new limits');

    assert.equal((await api('POST', `/v1/instances/${id}/restart?wait=true`)).status, 200);
    const restarted = (await cluster.read('apps/v1', 'Deployment', name, ns)) as any;
    assert.match(
      restarted.spec.template.metadata.annotations['ctrlplane.io/restartedAt'],
      /^\d{4}-\d\d-\d\dT/,
    );

    assert.equal((await api('DELETE', `/v1/instances/${id}?wait=true`)).status, 204);
    await eventually(
      async () => (await labelled(ns, id)).length === 0,
      'nothing of the instance left (pods included)',
    );
    assert.deepEqual(await labelled(ns, id), []);
  });
});
