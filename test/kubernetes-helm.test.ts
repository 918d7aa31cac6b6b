/**
 * The Kubernetes provider's helm source through the REAL helm CLI (v3.22.0, built into .tools/bin by
 * scripts/k8s-test-cluster.sh; `npm test` puts it first on PATH) against the run's REAL cluster
 * (test/support/kubernetes.ts): `helm template` renders a local chart the test writes (offline, no cluster access),
 * and the provider applies what it rendered as the tenant, in the tenant's namespace (Pod Security restricted);
 * the Deployment is rolled out by the real controllers onto kwok's node. No chart repository is reachable from
 * here, so the chart is a local directory of the operator's allowlist.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { V1ConfigMap, V1Deployment, V1Secret } from '@kubernetes/client-node';
import { KubernetesProvider } from '../providers/kubernetes/index.ts';
import { PermanentProviderError } from '../providers/provider.ts';
import { Cluster, eventually, nameOf, newInstanceId, refused, testKubeConfig } from './support/kubernetes.ts';

const TENANT = 'ten_test';
const cluster = new Cluster(testKubeConfig());

/** A small chart: a ConfigMap and a Deployment whose replicas and greeting come from the values. */
async function writeChart(dir: string): Promise<string> {
  const chart = join(dir, 'demo');
  await mkdir(join(chart, 'templates'), { recursive: true });
  await writeFile(
    join(chart, 'Chart.yaml'),
    'apiVersion: v2\nname: demo\nversion: 0.1.0\nappVersion: "1.0"\n',
  );
  await writeFile(join(chart, 'values.yaml'), 'replicas: 1\ngreeting: hello\n');
  await writeFile(
    join(chart, 'templates', 'configmap.yaml'),
    `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-settings
data:
  greeting: {{ .Values.greeting | quote }}
`,
  );
  await writeFile(
    join(chart, 'templates', 'deployment.yaml'),
    `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-app
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels: { app: {{ .Release.Name }} }
  template:
    metadata:
      labels: { app: {{ .Release.Name }} }
    spec:
      containers: [{ name: app, image: registry.k8s.io/pause:3.9 }]
`,
  );
  return chart;
}

describe('Kubernetes provider — helm source (real helm CLI, real control plane)', () => {
  let dir: string;
  let chart: string;
  let ns: string;
  let provider: KubernetesProvider;
  const run = randomBytes(3).toString('hex');
  const SYSTEM = `helm-sys-${run}`;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ctrlplane-helm-test-'));
    chart = await writeChart(dir);
    provider = new KubernetesProvider({
      kubeConfig: cluster.kc,
      namespacePrefix: `helm-${run}`,
      systemNamespace: SYSTEM,
      helmRepos: [dir],
    });
    ns = provider.namespaceFor(TENANT);
  });
  after(async () => {
    for (const name of [ns, SYSTEM]) if (name) await cluster.delete('v1', 'Namespace', name);
    for (const kind of ['ValidatingAdmissionPolicyBinding', 'ValidatingAdmissionPolicy']) {
      await cluster.delete('admissionregistration.k8s.io/v1', kind, `${SYSTEM}-service-exposure`);
    }
    await rm(dir, { recursive: true, force: true });
  });

  it('advertises source:helm, renders the chart with its values, applies it as manifests, reports and removes it', async () => {
    assert.ok(provider.capabilities().includes('source:helm'), 'helm found on PATH (.tools/bin)');
    const id = newInstanceId();
    const release = nameOf(id);
    const result = await provider.engines.helm.apply({
      instance_id: id,
      tenant_id: TENANT,
      chart: { chart, values: { replicas: 2, greeting: 'from ctrlplane' } },
    });
    assert.equal(result.provider_ref, `helm:${ns}/${release}`);
    assert.equal(result.metadata?.objects, '2');

    // The chart's objects with the values, labelled as the instance's; helm stored nothing (it never saw the cluster).
    const settings = await cluster.read<V1ConfigMap>('v1', 'ConfigMap', `${release}-settings`, ns);
    assert.deepEqual(settings?.data, { greeting: 'from ctrlplane' });
    assert.equal(settings?.metadata?.labels?.['ctrlplane.io/instance-id'], id);
    const deployment = await cluster.read<V1Deployment>('apps/v1', 'Deployment', `${release}-app`, ns);
    assert.equal(deployment?.spec?.replicas, 2);
    assert.equal(deployment?.spec?.template.spec?.securityContext?.runAsNonRoot, true);
    assert.deepEqual(await cluster.list<V1Secret>('v1', 'Secret', ns, 'owner=helm'), []);
    // The controllers roll it out, and Pod Security (restricted) admits the pods.
    await eventually(async () => {
      const d = await cluster.read<V1Deployment>('apps/v1', 'Deployment', `${release}-app`, ns);
      return d?.status?.availableReplicas === 2;
    }, 'the chart Deployment available');

    const status = await provider.engines.helm.status(id);
    assert.equal(status.state, 'running');
    assert.equal(status.ready, true);

    // An upgrade with other values converges the same objects.
    await provider.engines.helm.apply({
      instance_id: id,
      tenant_id: TENANT,
      chart: { chart, values: { replicas: 1, greeting: 'again' } },
    });
    assert.deepEqual((await cluster.read<V1ConfigMap>('v1', 'ConfigMap', `${release}-settings`, ns))?.data, {
      greeting: 'again',
    });

    await provider.engines.helm.remove(id);
    assert.equal(await cluster.read('v1', 'ConfigMap', `${release}-settings`, ns), undefined);
    await eventually(
      async () => (await cluster.read('apps/v1', 'Deployment', `${release}-app`, ns)) === undefined,
      'the chart Deployment gone',
    );
    assert.equal((await provider.engines.helm.status(id)).state, 'destroyed');
    await provider.engines.helm.remove(id); // a second uninstall is a no-op
  });

  it("installs into the instance namespace only: a source's other namespace is refused", async () => {
    const id = newInstanceId();
    for (const req of [
      { namespace: 'kube-system', chart: { chart } },
      { chart: { chart, namespace: 'kube-system' } },
    ]) {
      await assert.rejects(
        provider.engines.helm.apply({ instance_id: id, tenant_id: TENANT, ...req }),
        refused(new RegExp(`installed in its instance's namespace ${ns}, not in kube-system`)),
      );
    }
    assert.deepEqual(await cluster.list('v1', 'Secret', 'kube-system', 'owner=helm'), [], 'helm did not run');

    // The instance namespace, named or not, is fine.
    const named = await provider.engines.helm.apply({
      instance_id: id,
      tenant_id: TENANT,
      namespace: ns,
      chart: { chart, namespace: ns },
    });
    assert.equal(named.provider_ref, `helm:${ns}/${nameOf(id)}`);
    await provider.engines.helm.remove(id);
  });

  it('a chart that does not exist is refused as invalid_spec with helm’s message', async () => {
    await assert.rejects(
      provider.engines.helm.apply({
        instance_id: newInstanceId(),
        tenant_id: TENANT,
        chart: { chart: join(dir, 'no-such-chart') },
      }),
      refused(/no-such-chart/),
    );
  });

  it('without the helm CLI the source is refused as unsupported_source, and not advertised', async () => {
    for (const helm of [false, '/nonexistent/bin/helm'] as const) {
      const without = new KubernetesProvider({ kubeConfig: cluster.kc, helm });
      assert.ok(!without.capabilities().includes('source:helm'));
      await assert.rejects(
        without.engines.helm.apply({ instance_id: newInstanceId(), tenant_id: TENANT, chart: { chart } }),
        (err: unknown) => {
          assert.ok(err instanceof PermanentProviderError);
          assert.equal(err.code, 'unsupported_source');
          assert.match(err.message, /helm CLI/);
          return true;
        },
      );
      // Removing what a chart rendered needs no helm: an unknown instance is a no-op.
      await without.engines.helm.remove(newInstanceId());
    }
  });
});
