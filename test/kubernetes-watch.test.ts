import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { AppsV1Api } from '@kubernetes/client-node';
import { tenantNamespace } from '../providers/kubernetes/index.ts';
import { providerWatchWorkflowId } from '../workflows/provider-watch-messages.ts';
import { eventsOf } from './support/events.ts';
import { apiClient, eventually } from './support/http.ts';
import { Cluster } from './support/kubernetes.ts';
import { type Stack, startStack, uniqueTenant } from './support/stack.ts';

// Real Temporal, PostgreSQL and worker, and the run's REAL kube-apiserver and controllers (kwok plays the node):
// the Kubernetes provider watcher follows real watches of the instance's Deployment and pods.
const cluster = new Cluster();

describe('the Kubernetes provider watcher', () => {
  let stack: Stack;
  let api: ReturnType<typeof apiClient>;
  const tenant = uniqueTenant('k8swatch');
  const prefix = `k8swatch-${randomBytes(3).toString('hex')}`;
  const system = `${prefix}-system`;
  const ns = tenantNamespace(prefix, tenant);
  const apps = cluster.kc.makeApiClient(AppsV1Api);

  before(async () => {
    stack = await startStack({
      env: {
        CTRLPLANE_K8S_KUBECONFIG: cluster.kubeconfigPath,
        CTRLPLANE_K8S_NAMESPACE_PREFIX: prefix,
        CTRLPLANE_K8S_SYSTEM_NAMESPACE: system,
        CTRLPLANE_PROVIDER_WATCH: 'true',
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

  it('records a Deployment scaled to zero by hand as failed, and scaled back as running', async (t) => {
    const watcher = await stack.client.workflow
      .getHandle(providerWatchWorkflowId(stack.config.CTRLPLANE_TASK_QUEUE, 'kubernetes'))
      .describe();
    assert.equal(watcher.status.name, 'RUNNING', 'a watcher runs for the kubernetes provider');

    const res = await api('POST', '/v1/instances?wait=60s', {
      name: 'watched',
      provider_name: 'kubernetes',
      services: [{ name: 'web', image: 'nginx:1.27', ports: [{ container: 8080 }] }],
    });
    assert.equal(res.body.state, 'running', JSON.stringify(res.body));
    const id: string = res.body.id;
    const name = id.replace('_', '-');
    const state = async () => (await api('GET', `/v1/instances/${id}`)).body;

    const scaledAt = performance.now();
    await apps.replaceNamespacedDeploymentScale({
      name,
      namespace: ns,
      body: { metadata: { name, namespace: ns }, spec: { replicas: 0 } },
    });
    const failed = await eventually(
      'failed after the scale to zero',
      async () => {
        const body = await state();
        return body.state === 'failed' ? body : undefined;
      },
      60_000,
      20,
    );
    t.diagnostic(
      `kubectl scale --replicas=0 → failed in the read model: ${Math.round(performance.now() - scaledAt)} ms`,
    );
    assert.match(failed.error, /^drift: the provider reports the instance stopped/);

    await apps.replaceNamespacedDeploymentScale({
      name,
      namespace: ns,
      body: { metadata: { name, namespace: ns }, spec: { replicas: 1 } },
    });
    await eventually('running again', async () => (await state()).state === 'running', 60_000, 20);
    const drift = (await eventsOf(stack.orm, id)).filter((e) => e.type === 'instance.drift');
    assert.deepEqual(
      drift.map((e) => e.payload.to),
      ['failed', 'starting', 'running'],
    );
    assert.equal((await api('DELETE', `/v1/instances/${id}?wait=true`)).status, 204);
  });
});
