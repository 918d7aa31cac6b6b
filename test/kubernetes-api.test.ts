import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { FakeKubernetes } from './support/fake-kubernetes/index.ts';
import { apiClient } from './support/http.ts';
import { type Stack, startStack, uniqueTenant } from './support/stack.ts';

// Real Temporal and PostgreSQL; the Kubernetes API is the loopback FAKE under test/support/fake-kubernetes,
// because no cluster can run on this machine. It stores objects and answers like an API server, but runs no pods.
describe('an instance on Kubernetes, through the API', () => {
  let fake: FakeKubernetes;
  let stack: Stack;
  let api: ReturnType<typeof apiClient>;
  const tenant = uniqueTenant('k8s');

  before(async () => {
    fake = await new FakeKubernetes().start();
    // The configured namespace exists, as an operator would have created it.
    fake.seed({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'tenants' } });
    const kubeconfig = `/tmp/ctrlplane-test-kubeconfig-${process.pid}.json`;
    writeFileSync(kubeconfig, fake.kubeConfig().exportConfig());
    stack = await startStack({ env: { CP_K8S_KUBECONFIG: kubeconfig, CP_K8S_NAMESPACE: 'tenants' } });
    api = apiClient(stack.api.url, await stack.token(tenant));
  });

  after(async () => {
    await stack?.close();
    await fake?.stop();
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
    assert.equal(res.body.provider_ref, `k8s:tenants/${name}`);

    const deployment = fake.get('apps/v1', 'Deployment', 'tenants', name) as any;
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
    const service = fake.get('v1', 'Service', 'tenants', name) as any;
    assert.equal(service.spec.ports[0].port, 8080);
    // Env (which may hold resolved secret values) is in Secrets, referenced with envFrom.secretRef; never in ConfigMaps.
    const webEnv = fake.get('v1', 'Secret', 'tenants', `${name}-web-env`) as
      | { type?: string; data?: Record<string, string> }
      | undefined;
    assert.ok(webEnv, 'the env Secret of web');
    assert.equal(webEnv.type, 'Opaque');
    assert.equal(Buffer.from(webEnv.data?.MODE ?? '', 'base64').toString(), 'prod');
    assert.ok(fake.get('v1', 'Secret', 'tenants', `${name}-agent-env`));
    assert.deepEqual(web.envFrom, [{ secretRef: { name: `${name}-web-env` } }]);
    assert.equal(fake.get('v1', 'ConfigMap', 'tenants', `${name}-web-env`), undefined);
    assert.equal(fake.get('v1', 'ConfigMap', 'tenants', `${name}-agent-env`), undefined);

    assert.equal((await api('POST', `/v1/instances/${id}/stop?wait=true`)).status, 200);
    assert.equal((fake.get('apps/v1', 'Deployment', 'tenants', name) as any).spec.replicas, 0);
    assert.equal((await api('POST', `/v1/instances/${id}/start?wait=true`)).status, 200);
    assert.equal(
      (fake.get('apps/v1', 'Deployment', 'tenants', name) as any).spec.replicas,
      3,
      'the earlier count',
    );

    const scaled = await api('POST', `/v1/instances/${id}/scale?wait=true`, { cpu_millis: 500, replicas: 2 });
    assert.equal(scaled.status, 200, JSON.stringify(scaled.body));
    const afterScale = fake.get('apps/v1', 'Deployment', 'tenants', name) as any;
    assert.equal(afterScale.spec.replicas, 2);
    const scaledWeb = afterScale.spec.template.spec.containers.find(
      (c: { name: string }) => c.name === 'web',
    );
    assert.equal(scaledWeb.resources.limits.cpu, '500m');
    assert.equal(scaledWeb.resources.limits.memory, '128Mi', 'memory kept');

    assert.equal((await api('POST', `/v1/instances/${id}/restart?wait=true`)).status, 200);
    const restarted = fake.get('apps/v1', 'Deployment', 'tenants', name) as any;
    assert.match(
      restarted.spec.template.metadata.annotations['ctrlplane.io/restartedAt'],
      /^\d{4}-\d\d-\d\dT/,
    );

    assert.equal((await api('DELETE', `/v1/instances/${id}?wait=true`)).status, 204);
    assert.deepEqual(fake.labelled(`ctrlplane.io/instance-id=${id}`), [], 'nothing of the instance is left');
  });
});
