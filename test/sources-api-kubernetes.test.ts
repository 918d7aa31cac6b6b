import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type KubernetesObject, PatchStrategy, type V1ConfigMap } from '@kubernetes/client-node';
import { type ApiCall, checkedClient, OpenApiChecker } from './support/api-openapi.ts';
import { Cluster, eventually, type ObjectKind } from './support/kubernetes.ts';
import { type Stack, startStack, uniqueTenant } from './support/stack.ts';

// Real Temporal, PostgreSQL and worker, and the run's REAL Kubernetes cluster (test/support/kubernetes.ts), in a
// namespace the test creates as an operator would. kustomize is the real one (kubectl kustomize of .tools/bin, on
// PATH under `npm test`). Argo CD does not run here: the test applies a minimal Application CRD (unless the
// cluster already serves one) and plays Argo CD's controller by writing the Application's status.
const cluster = new Cluster();

/** The kinds the sources of these tests render. */
const SOURCE_KINDS: ObjectKind[] = [
  ['v1', 'ConfigMap'],
  ['v1', 'Secret'],
  ['v1', 'Service'],
  ['apps/v1', 'Deployment'],
];
const labelled = (ns: string, id: string) => cluster.labelled(id, ns, SOURCE_KINDS);

describe('a manifests source on Kubernetes, through the API', () => {
  let stack: Stack;
  let api: ApiCall;
  let ns: string;
  let disposeNamespace: () => Promise<void>;
  const tenant = uniqueTenant('srck8s');

  before(async () => {
    const namespace = await cluster.namespace('ctrlplane-tenants');
    ns = namespace.name;
    disposeNamespace = namespace.dispose;
    stack = await startStack({
      env: {
        CTRLPLANE_K8S_KUBECONFIG: cluster.kubeconfigPath,
        CTRLPLANE_K8S_NAMESPACE_PER_TENANT: 'false',
        CTRLPLANE_K8S_NAMESPACE: ns,
        // Argo CD is enabled by the repositories its Applications may come from (each tenant gets an AppProject).
        CTRLPLANE_K8S_ARGO_REPOS: 'https://git.example.com',
        CTRLPLANE_RATE_LIMIT_PER_MINUTE: '0',
        // The drift check reads what Argo CD reports (below) back into the instance.
        CTRLPLANE_DRIFT_CHECK_INTERVAL_MS: '500',
      },
    });
    const checker = await OpenApiChecker.load(stack.api.url);
    api = checkedClient(stack.api.url, checker, await stack.token(tenant));
  });

  after(async () => {
    await stack?.close();
    await disposeNamespace?.();
  });

  it('applies the rendered ConfigMap (its name from a variable), keeps the source un-rendered, deletes it', async () => {
    const inline = [
      'apiVersion: v1',
      'kind: ConfigMap',
      'metadata:',
      '  name: "{{ .var.n }}"',
      'data:',
      '  region: "{{ .region }}"',
      '  owner: "{{ .instance.name }}"',
      '---',
      '---',
      '',
    ].join('\n');
    const res = await api('POST', '/v1/instances?wait=30s', {
      name: 'manifests-web',
      provider_name: 'kubernetes',
      region: 'us-east',
      source: { type: 'manifests', manifests: { inline } },
      variables: [{ name: 'n', type: 'string', default: 'x' }],
      variable_values: { n: 'cm1' },
    });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.body.state, 'running', res.text);
    const id: string = res.body.id;
    const name = id.replace('_', '-');
    assert.equal(res.body.provider_ref, `k8s:${ns}/${name}`);

    // The cluster holds the rendered object, labelled as the instance's, and the tracking ConfigMap.
    const cm = (await cluster.read('v1', 'ConfigMap', 'cm1', ns)) as
      | { data?: Record<string, string>; metadata: { labels: Record<string, string> } }
      | undefined;
    assert.ok(cm, 'the ConfigMap named by the variable');
    assert.deepEqual(cm.data, { region: 'us-east', owner: 'manifests-web' });
    assert.equal(cm.metadata.labels['ctrlplane.io/instance-id'], id);
    assert.equal(cm.metadata.labels['ctrlplane.io/tenant-id'], tenant);
    assert.equal(await cluster.read('v1', 'ConfigMap', 'x', ns), undefined, 'the value overrode the default');
    assert.ok(await cluster.read('v1', 'ConfigMap', `${name}-manifests`, ns), 'the tracking ConfigMap');
    assert.equal(
      await cluster.read('apps/v1', 'Deployment', name, ns),
      undefined,
      'no services were provisioned',
    );

    // The instance keeps the source as submitted.
    const got = await api('GET', `/v1/instances/${id}`);
    assert.equal(got.body.source.type, 'manifests');
    assert.equal(got.body.source.manifests.inline, inline);
    assert.equal(got.body.services, null);
    const row = await stack.orm.em
      .fork()
      .getConnection()
      .execute<{ source: { type: string }; services: unknown }[]>(
        'select source, services from instances where id = ?',
        [id],
      );
    assert.equal(row[0]?.source.type, 'manifests');
    assert.equal(row[0]?.services, null);

    // Delete goes to the manifests engine: the objects and the tracking ConfigMap are gone.
    assert.equal((await api('DELETE', `/v1/instances/${id}?wait=30s`)).status, 204);
    assert.equal(await cluster.read('v1', 'ConfigMap', 'cm1', ns), undefined);
    assert.equal(await cluster.read('v1', 'ConfigMap', `${name}-manifests`, ns), undefined);
    assert.deepEqual(await labelled(ns, id), []);
  });

  it('refuses, before anything is written, a manifests source whose templates do not render', async () => {
    const res = await api('POST', '/v1/instances', {
      name: 'broken-manifests',
      provider_name: 'kubernetes',
      source: {
        type: 'manifests',
        manifests: { inline: 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: "{{ .var.missing }}"\n' },
      },
    });
    assert.equal(res.status, 400, res.text);
    assert.equal(res.body.code, 'render_failed');
    assert.match(res.body.detail, /manifests/);
    const bad = await api('POST', '/v1/instances', {
      name: 'not-yaml',
      provider_name: 'kubernetes',
      source: { type: 'manifests', manifests: { inline: 'kind: [unclosed\n' } },
    });
    assert.equal(bad.status, 400, bad.text);
    assert.equal(bad.body.code, 'render_failed');
    const [count] = await stack.orm.em
      .fork()
      .getConnection()
      .execute<{ count: string }[]>(
        "select count(*) from instances where tenant_id = ? and name in ('broken-manifests', 'not-yaml')",
        [tenant],
      );
    assert.equal(Number(count?.count), 0);
  });

  it('refuses a kustomize source with a remote base before kustomize runs (no fetch from the API process)', async () => {
    const res = await api('POST', '/v1/instances', {
      name: 'remote-kustomize',
      provider_name: 'kubernetes',
      source: {
        type: 'manifests',
        manifests: {
          kustomize: {
            files: {
              'kustomization.yaml': 'resources:\n  - https://169.254.169.254/latest/meta-data/app.yaml\n',
            },
          },
        },
      },
    });
    assert.equal(res.status, 400, res.text);
    assert.equal(res.body.code, 'invalid_source');
    assert.match(res.body.detail, /kustomization\.yaml.*remote reference/);
    const [count] = await stack.orm.em
      .fork()
      .getConnection()
      .execute<{ count: string }[]>(
        "select count(*) from instances where tenant_id = ? and name = 'remote-kustomize'",
        [tenant],
      );
    assert.equal(Number(count?.count), 0);
  });

  it('fails a manifests source holding a cluster-scoped object, and writes nothing of it', async () => {
    const inline = [
      'apiVersion: v1',
      'kind: ConfigMap',
      'metadata:',
      '  name: harmless',
      '---',
      'apiVersion: rbac.authorization.k8s.io/v1',
      'kind: ClusterRoleBinding',
      'metadata:',
      '  name: tenant-admin',
      'roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin }',
      `subjects: [{ kind: ServiceAccount, name: default, namespace: ${ns} }]`,
      '',
    ].join('\n');
    const res = await api('POST', '/v1/instances?wait=30s', {
      name: 'cluster-admin-grab',
      provider_name: 'kubernetes',
      source: { type: 'manifests', manifests: { inline } },
    });
    assert.ok(res.status === 201 || res.status === 202, res.text);
    assert.equal(res.body.state, 'failed', res.text);
    assert.equal(
      await cluster.read('rbac.authorization.k8s.io/v1', 'ClusterRoleBinding', 'tenant-admin'),
      undefined,
    );
    assert.equal(await cluster.read('v1', 'ConfigMap', 'harmless', ns), undefined);
    assert.deepEqual(await labelled(ns, res.body.id), []);
  });

  it('builds a kustomize source with the real kustomize, applies what it built, and deletes it', async () => {
    const res = await api('POST', '/v1/instances?wait=30s', {
      name: 'kustomized',
      provider_name: 'kubernetes',
      source: {
        type: 'manifests',
        manifests: {
          kustomize: {
            files: {
              'base/kustomization.yaml': 'resources:\n  - app.yaml\n',
              'base/app.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  a: b\n',
              'overlays/prod/kustomization.yaml':
                'resources:\n  - ../../base\nnamePrefix: prod-\npatches:\n  - path: patch.yaml\nconfigMapGenerator:\n  - name: gen\n    literals: [owner={{ .instance.name }}]\n',
              'overlays/prod/patch.yaml':
                'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  c: d\n',
            },
            root: '/overlays/prod',
          },
        },
      },
    });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.body.state, 'running', res.text);
    const id: string = res.body.id;
    const app = await cluster.read<V1ConfigMap>('v1', 'ConfigMap', 'prod-app', ns);
    assert.deepEqual(app?.data, { a: 'b', c: 'd' }, 'the base with the overlay patch');
    assert.equal(app?.metadata?.labels?.['ctrlplane.io/instance-id'], id);
    const generated = (
      await cluster.list<V1ConfigMap>('v1', 'ConfigMap', ns, `ctrlplane.io/instance-id=${id}`)
    ).find((cm) => /^prod-gen-[a-z0-9]+$/.test(cm.metadata?.name ?? ''));
    assert.deepEqual(generated?.data, { owner: 'kustomized' }, 'the generator, its literal templated');

    assert.equal((await api('DELETE', `/v1/instances/${id}?wait=30s`)).status, 204);
    await eventually(async () => (await labelled(ns, id)).length === 0, 'nothing left');
  });

  it('an argocd source writes its Application; what Argo CD reports moves the instance', async () => {
    const crd = 'applications.argoproj.io';
    const installed = !!(await cluster.read('apiextensions.k8s.io/v1', 'CustomResourceDefinition', crd));
    const kinds = [
      ['Application', 'applications'],
      ['AppProject', 'appprojects'],
    ] as const;
    for (const [kind, plural] of installed ? [] : kinds) {
      await cluster.apply({
        apiVersion: 'apiextensions.k8s.io/v1',
        kind: 'CustomResourceDefinition',
        metadata: { name: `${plural}.argoproj.io` },
        spec: {
          group: 'argoproj.io',
          scope: 'Namespaced',
          names: { kind, plural, singular: kind.toLowerCase() },
          versions: [
            {
              name: 'v1alpha1',
              served: true,
              storage: true,
              // Server-side apply needs the top-level fields declared (as Argo CD's own CRD does).
              schema: {
                openAPIV3Schema: {
                  type: 'object',
                  properties: {
                    spec: { type: 'object', x_kubernetes_preserve_unknown_fields: true },
                    status: { type: 'object', x_kubernetes_preserve_unknown_fields: true },
                  },
                },
              },
            },
          ],
        },
      } as KubernetesObject);
    }
    await cluster.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'argocd' } });
    let name = '';
    try {
      await eventually(
        async () =>
          (await cluster.list('argoproj.io/v1alpha1', 'Application', 'argocd').catch(() => undefined)) !==
            undefined &&
          (await cluster.list('argoproj.io/v1alpha1', 'AppProject', 'argocd').catch(() => undefined)) !==
            undefined,
        'the Application and AppProject CRDs served',
      );
      const res = await api('POST', '/v1/instances?wait=30s', {
        name: 'gitops',
        provider_name: 'kubernetes',
        source: {
          type: 'argocd',
          argocd: { repo_url: 'https://git.example.com/apps.git', path: 'apps/{{ .instance.name }}' },
        },
      });
      assert.equal(res.status, 201, res.text);
      assert.equal(res.body.state, 'running', res.text);
      const id: string = res.body.id;
      name = id.replace('_', '-');
      const application = await cluster.read<KubernetesObject & { spec?: Record<string, any> }>(
        'argoproj.io/v1alpha1',
        'Application',
        name,
        'argocd',
      );
      assert.equal(application?.spec?.source?.path, 'apps/gitops');
      assert.deepEqual(application?.spec?.destination, {
        server: 'https://kubernetes.default.svc',
        namespace: ns,
      });
      assert.equal(application?.metadata?.labels?.['ctrlplane.io/tenant-id'], tenant);

      // Argo CD's controller (played here) reports the app Degraded: the drift check fails the instance.
      const report = (health: string) =>
        cluster.api.patch(
          {
            apiVersion: 'argoproj.io/v1alpha1',
            kind: 'Application',
            metadata: { name, namespace: 'argocd' },
            status: { health: { status: health }, sync: { status: 'Synced' } },
          } as KubernetesObject,
          undefined,
          undefined,
          'argocd-application-controller',
          undefined,
          PatchStrategy.MergePatch,
        );
      await report('Degraded');
      await eventually(
        async () => (await api('GET', `/v1/instances/${id}`)).body.state === 'failed',
        'failed',
      );
      await report('Healthy');
      await eventually(
        async () => (await api('GET', `/v1/instances/${id}`)).body.state === 'running',
        'running',
      );
    } finally {
      if (name) {
        await cluster.api
          .patch(
            {
              apiVersion: 'argoproj.io/v1alpha1',
              kind: 'Application',
              metadata: { name, namespace: 'argocd', finalizers: null },
            } as unknown as KubernetesObject,
            undefined,
            undefined,
            'ctrlplane-test',
            undefined,
            PatchStrategy.MergePatch,
          )
          .catch(() => {});
        await cluster.delete('argoproj.io/v1alpha1', 'Application', name, 'argocd');
      }
      if (!installed) {
        for (const [, plural] of kinds) {
          await cluster.delete(
            'apiextensions.k8s.io/v1',
            'CustomResourceDefinition',
            `${plural}.argoproj.io`,
          );
        }
        await cluster.delete('v1', 'Namespace', 'argocd');
        // Gone, not only terminating, before another test file needs it again.
        await eventually(
          async () => !(await cluster.read('v1', 'Namespace', 'argocd')),
          'namespace argocd gone',
        );
      }
    }
  });
});
