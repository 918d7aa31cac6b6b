import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { type ApiCall, checkedClient, OpenApiChecker } from './support/api-openapi.ts';
import { FakeKubernetes } from './support/fake-kubernetes/index.ts';
import { type Stack, startStack, uniqueTenant } from './support/stack.ts';

// Real Temporal, PostgreSQL and worker; the Kubernetes API is the loopback FAKE under test/support/fake-kubernetes
// (no cluster can run on this machine): it stores objects and answers like an API server, but runs no pods.
describe('a manifests source on Kubernetes, through the API (reference §9 Source)', () => {
  let fake: FakeKubernetes;
  let stack: Stack;
  let api: ApiCall;
  const tenant = uniqueTenant('srck8s');

  before(async () => {
    fake = await new FakeKubernetes().start();
    // The configured namespace exists, as an operator would have created it.
    fake.seed({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'tenants' } });
    const kubeconfig = `/tmp/ctrlplane-test-kubeconfig-sources-${process.pid}.json`;
    writeFileSync(kubeconfig, fake.kubeConfig().exportConfig());
    stack = await startStack({
      env: {
        CP_K8S_KUBECONFIG: kubeconfig,
        CP_K8S_NAMESPACE: 'tenants',
        CTRLPLANE_RATE_LIMIT_PER_MINUTE: '0',
      },
    });
    const checker = await OpenApiChecker.load(stack.api.url);
    api = checkedClient(stack.api.url, checker, await stack.token(tenant));
  });

  after(async () => {
    await stack?.close();
    await fake?.stop();
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
    assert.equal(res.body.provider_ref, `k8s:tenants/${name}`);

    // The fake holds the rendered object, labelled as the instance's, and the tracking ConfigMap.
    const cm = fake.get('v1', 'ConfigMap', 'tenants', 'cm1') as
      | { data?: Record<string, string>; metadata: { labels: Record<string, string> } }
      | undefined;
    assert.ok(cm, 'the ConfigMap named by the variable');
    assert.deepEqual(cm.data, { region: 'us-east', owner: 'manifests-web' });
    assert.equal(cm.metadata.labels['ctrlplane.io/instance-id'], id);
    assert.equal(cm.metadata.labels['ctrlplane.io/tenant-id'], tenant);
    assert.equal(fake.get('v1', 'ConfigMap', 'tenants', 'x'), undefined, 'the value overrode the default');
    assert.ok(fake.get('v1', 'ConfigMap', 'tenants', `${name}-manifests`), 'the tracking ConfigMap');
    assert.equal(
      fake.get('apps/v1', 'Deployment', 'tenants', name),
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
    assert.equal(fake.get('v1', 'ConfigMap', 'tenants', 'cm1'), undefined);
    assert.equal(fake.get('v1', 'ConfigMap', 'tenants', `${name}-manifests`), undefined);
    assert.deepEqual(fake.labelled(`ctrlplane.io/instance-id=${id}`), []);
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
      'subjects: [{ kind: ServiceAccount, name: default, namespace: tenants }]',
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
      fake.get('rbac.authorization.k8s.io/v1', 'ClusterRoleBinding', undefined, 'tenant-admin'),
      undefined,
    );
    assert.equal(fake.get('v1', 'ConfigMap', 'tenants', 'harmless'), undefined);
    assert.deepEqual(fake.labelled(`ctrlplane.io/instance-id=${res.body.id}`), []);
  });
});
