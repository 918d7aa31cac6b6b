/**
 * The FAKE Kubernetes API server (test/support/fake-kubernetes) checked on its own: the provider tests are only as
 * good as its imitation of the real API server, so here are the status codes, Status bodies, resourceVersion rules,
 * apply/merge semantics and paths it claims, exercised through @kubernetes/client-node — and, when a kubectl binary
 * is on PATH, through kubectl as an independent real client (that part is not registered without kubectl).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import {
  ApiException,
  AppsV1Api,
  CoreV1Api,
  KubernetesObjectApi,
  PatchStrategy,
  setHeaderOptions,
  type V1ConfigMap,
  type V1Deployment,
} from '@kubernetes/client-node';
import { findExecutable } from '../providers/kubernetes/helm.ts';
import { FakeKubernetes } from './support/fake-kubernetes/index.ts';

const pexec = promisify(execFile);

function deployment(name: string, replicas = 1): V1Deployment {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: 'default', labels: { app: name } },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'c', image: 'img' }] } },
    },
  };
}

async function failure(promise: Promise<unknown>): Promise<{ code: number; body: Record<string, unknown> }> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof ApiException, String(err));
    const body = typeof err.body === 'string' ? (JSON.parse(err.body) as Record<string, unknown>) : err.body;
    return { code: err.code, body };
  }
  assert.fail('expected the call to fail');
}

describe('fake Kubernetes API: verbs, status codes and resourceVersion', () => {
  let fake: FakeKubernetes;
  let objects: KubernetesObjectApi;
  let apps: AppsV1Api;
  let core: CoreV1Api;

  before(async () => {
    fake = await new FakeKubernetes().start();
    const kc = fake.kubeConfig();
    objects = KubernetesObjectApi.makeApiClient(kc);
    apps = kc.makeApiClient(AppsV1Api);
    core = kc.makeApiClient(CoreV1Api);
  });
  after(() => fake.stop());

  it('create → 201 with server fields; create again → 409 AlreadyExists Status; get of a missing one → 404 NotFound', async () => {
    const created = await apps.createNamespacedDeployment({ namespace: 'default', body: deployment('a') });
    assert.ok(created.metadata?.uid);
    assert.match(created.metadata?.resourceVersion ?? '', /^\d+$/);
    assert.equal(created.metadata?.generation, 1);

    const exists = await failure(
      apps.createNamespacedDeployment({ namespace: 'default', body: deployment('a') }),
    );
    assert.equal(exists.code, 409);
    assert.deepEqual(
      { ...exists.body, details: undefined },
      {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: 'deployments.apps "a" already exists',
        reason: 'AlreadyExists',
        details: undefined,
        code: 409,
      },
    );
    const missing = await failure(core.readNamespacedConfigMap({ name: 'nope', namespace: 'default' }));
    assert.equal(missing.code, 404);
    assert.equal(missing.body.reason, 'NotFound');
    assert.equal(missing.body.message, 'configmaps "nope" not found');
    const noNamespace = await failure(
      core.createNamespacedConfigMap({ namespace: 'ghost', body: { metadata: { name: 'x' } } }),
    );
    assert.equal(noNamespace.code, 404);
    assert.equal(noNamespace.body.message, 'namespaces "ghost" not found');
  });

  it('every write bumps the resourceVersion, a stale one on update is 409 Conflict, a no-op keeps it', async () => {
    const cm = await core.createNamespacedConfigMap({
      namespace: 'default',
      body: { metadata: { name: 'rv' }, data: { a: '1' } },
    });
    const rv1 = Number(cm.metadata?.resourceVersion);
    const updated = await core.replaceNamespacedConfigMap({
      name: 'rv',
      namespace: 'default',
      body: { metadata: { name: 'rv', resourceVersion: String(rv1) }, data: { a: '2' } },
    });
    const rv2 = Number(updated.metadata?.resourceVersion);
    assert.ok(rv2 > rv1);

    const stale = await failure(
      core.replaceNamespacedConfigMap({
        name: 'rv',
        namespace: 'default',
        body: { metadata: { name: 'rv', resourceVersion: String(rv1) }, data: { a: '3' } },
      }),
    );
    assert.equal(stale.code, 409);
    assert.equal(stale.body.reason, 'Conflict');
    assert.match(String(stale.body.message), /the object has been modified/);

    const unversioned = await failure(
      core.replaceNamespacedConfigMap({
        name: 'rv',
        namespace: 'default',
        body: { metadata: { name: 'rv' }, data: {} },
      }),
    );
    assert.equal(unversioned.code, 422);

    const same = await objects.patch(
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'rv', namespace: 'default' },
        data: { a: '2' },
      } as V1ConfigMap,
      undefined,
      undefined,
      'test',
      undefined,
      PatchStrategy.MergePatch,
    );
    assert.equal(Number(same.metadata?.resourceVersion), rv2);
  });

  it('server-side apply creates, merges, and drops the fields its manager stopped applying', async () => {
    const apply = (data: Record<string, string>, labels: Record<string, string>) =>
      objects.patch(
        {
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: 'ssa', namespace: 'default', labels },
          data,
        } as V1ConfigMap,
        undefined,
        undefined,
        'mgr',
        true,
        PatchStrategy.ServerSideApply,
      );
    await apply({ a: '1', b: '2' }, { one: '1' });
    // Another writer adds a key with a merge patch.
    await objects.patch(
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'ssa', namespace: 'default' },
        data: { other: 'x' },
      } as V1ConfigMap,
      undefined,
      undefined,
      'someone-else',
      undefined,
      PatchStrategy.MergePatch,
    );
    const second = await apply({ a: '1' }, { two: '2' });
    assert.deepEqual({ ...second.data }, { a: '1', other: 'x' });
    assert.deepEqual({ ...second.metadata?.labels }, { two: '2' });
    const missingManager = await failure(
      objects.patch(
        { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'ssa', namespace: 'default' } },
        undefined,
        undefined,
        undefined,
        undefined,
        PatchStrategy.ServerSideApply,
      ),
    );
    assert.equal(missingManager.code, 422);
  });

  it('422 Invalid for what the real server refuses: selector/template mismatch, bad labels, immutable selector', async () => {
    const bad = deployment('bad');
    bad.spec = { ...bad.spec, selector: { matchLabels: { app: 'other' } } } as V1Deployment['spec'];
    const mismatch = await failure(apps.createNamespacedDeployment({ namespace: 'default', body: bad }));
    assert.equal(mismatch.code, 422);
    assert.equal(mismatch.body.reason, 'Invalid');
    assert.match(String(mismatch.body.message), /`selector` does not match template `labels`/);

    const label = await failure(
      core.createNamespacedConfigMap({
        namespace: 'default',
        body: { metadata: { name: 'l', labels: { k: 'a b' } } },
      }),
    );
    assert.equal(label.code, 422);

    await apps.createNamespacedDeployment({ namespace: 'default', body: deployment('imm') });
    const changed = deployment('imm');
    changed.spec = {
      ...changed.spec,
      selector: { matchLabels: { app: 'imm', x: 'y' } },
    } as V1Deployment['spec'];
    if (changed.spec?.template.metadata) changed.spec.template.metadata.labels = { app: 'imm', x: 'y' };
    const immutable = await failure(
      objects.patch(changed, undefined, undefined, 'mgr', true, PatchStrategy.ServerSideApply),
    );
    assert.equal(immutable.code, 422);
    assert.match(String(immutable.body.message), /field is immutable/);
  });

  it('list with label selectors (=, !=, in, exists), across namespaces, with limit and continue', async () => {
    for (const [name, tier] of [
      ['s1', 'web'],
      ['s2', 'db'],
      ['s3', 'cache'],
    ]) {
      await core.createNamespacedConfigMap({
        namespace: name === 's3' ? 'kube-public' : 'default',
        body: { metadata: { name, labels: { sel: 'yes', tier: tier ?? '' } } },
      });
    }
    const names = async (selector: string) =>
      (
        await objects.list('v1', 'ConfigMap', undefined, undefined, undefined, undefined, undefined, selector)
      ).items
        .map((i) => i.metadata?.name)
        .sort();
    assert.deepEqual(await names('sel=yes'), ['s1', 's2', 's3']);
    assert.deepEqual(await names('sel=yes,tier!=web'), ['s2', 's3']);
    assert.deepEqual(await names('tier in (web,db)'), ['s1', 's2']);
    assert.deepEqual(await names('sel,!nothing'), ['s1', 's2', 's3']);
    const page = await core.listConfigMapForAllNamespaces({ labelSelector: 'sel=yes', limit: 2 });
    assert.equal(page.items.length, 2);
    assert.ok(page.metadata?._continue);
    const rest = await core.listConfigMapForAllNamespaces({
      labelSelector: 'sel=yes',
      limit: 2,
      _continue: page.metadata?._continue,
    });
    assert.equal(rest.items.length, 1);
  });

  it('the scale subresource and delete with propagation through owner references', async () => {
    await apps.createNamespacedDeployment({ namespace: 'default', body: deployment('sc', 2) });
    const scale = await apps.readNamespacedDeploymentScale({ name: 'sc', namespace: 'default' });
    assert.equal(scale.spec?.replicas, 2);
    await apps.patchNamespacedDeploymentScale(
      { name: 'sc', namespace: 'default', body: { spec: { replicas: 5 } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    assert.equal(
      (await apps.readNamespacedDeployment({ name: 'sc', namespace: 'default' })).spec?.replicas,
      5,
    );
    const stale = await failure(
      apps.replaceNamespacedDeploymentScale({
        name: 'sc',
        namespace: 'default',
        body: { metadata: { name: 'sc', resourceVersion: '1' }, spec: { replicas: 1 } },
      }),
    );
    assert.equal(stale.code, 409);

    const pods = fake.simulatePods('default', 'sc', {});
    assert.equal(pods.length, 5);
    await apps.deleteNamespacedDeployment({ name: 'sc', namespace: 'default', propagationPolicy: 'Orphan' });
    assert.equal(fake.list('v1', 'Pod', { labelSelector: 'app=sc' }).length, 5);
    await apps.createNamespacedDeployment({ namespace: 'default', body: deployment('sc2', 2) });
    fake.simulatePods('default', 'sc2', {});
    await apps.deleteNamespacedDeployment({
      name: 'sc2',
      namespace: 'default',
      propagationPolicy: 'Foreground',
    });
    assert.equal(fake.list('v1', 'Pod', { labelSelector: 'app=sc2' }).length, 0);
    const again = await failure(apps.deleteNamespacedDeployment({ name: 'sc2', namespace: 'default' }));
    assert.equal(again.code, 404);
  });

  it('pod logs: the container is required when there are several; tailLines and timestamps', async () => {
    const d = deployment('lg');
    d.spec?.template.spec?.containers.push({ name: 'd', image: 'img' });
    await apps.createNamespacedDeployment({ namespace: 'default', body: d });
    const [pod] = fake.simulatePods('default', 'lg', {});
    assert.ok(pod);
    fake.appendLog('default', pod, 'c', 'one', '2024-01-01T00:00:00.000000001Z');
    fake.appendLog('default', pod, 'c', 'two', '2024-01-01T00:00:01.000000001Z');
    const noContainer = await failure(core.readNamespacedPodLog({ name: pod, namespace: 'default' }));
    assert.equal(noContainer.code, 400);
    assert.match(String(noContainer.body.message), /a container name must be specified/);
    const text = await core.readNamespacedPodLog({
      name: pod,
      namespace: 'default',
      container: 'c',
      tailLines: 1,
      timestamps: true,
    });
    assert.equal(text, '2024-01-01T00:00:01.000000001Z two\n');
  });

  it('finalizers hold a deleted object until they are removed; deleting a namespace deletes its content', async () => {
    await core.createNamespace({ body: { metadata: { name: 'tmp' } } });
    await core.createNamespacedConfigMap({
      namespace: 'tmp',
      body: { metadata: { name: 'f', finalizers: ['example.com/hold'] } },
    });
    await core.deleteNamespacedConfigMap({ name: 'f', namespace: 'tmp' });
    const held = await core.readNamespacedConfigMap({ name: 'f', namespace: 'tmp' });
    assert.ok(held.metadata?.deletionTimestamp);
    fake.finalize('v1', 'ConfigMap', 'tmp', 'f');
    assert.equal((await failure(core.readNamespacedConfigMap({ name: 'f', namespace: 'tmp' }))).code, 404);

    await core.createNamespacedConfigMap({ namespace: 'tmp', body: { metadata: { name: 'g' } } });
    await core.deleteNamespace({ name: 'tmp' });
    assert.equal((await failure(core.readNamespacedConfigMap({ name: 'g', namespace: 'tmp' }))).code, 404);
  });

  it('discovery, /version, and metrics.k8s.io answering 404 until seeded', async () => {
    const resources = await apps.getAPIResources();
    assert.ok(resources.resources.some((r) => r.name === 'deployments/scale'));
    const groups = await fetch(`${fake.url}/apis`).then(
      (r) => r.json() as Promise<{ groups: Array<{ name: string }> }>,
    );
    assert.ok(groups.groups.some((g) => g.name === 'argoproj.io'));
    assert.ok(!groups.groups.some((g) => g.name === 'metrics.k8s.io'));
    const metrics = await fetch(`${fake.url}/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/x`);
    assert.equal(metrics.status, 404);
    fake.seedMetrics('default', 'x', { c: { cpu: '1m', memory: '1Mi' } });
    const seeded = await fetch(`${fake.url}/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/x`);
    assert.equal(seeded.status, 200);
    const version = await fetch(`${fake.url}/version`).then(
      (r) => r.json() as Promise<{ gitVersion: string }>,
    );
    assert.match(version.gitVersion, /fake/);
  });
});

const kubectl = findExecutable('kubectl');
if (kubectl) {
  describe('fake Kubernetes API seen by kubectl (registered only when kubectl is on PATH)', () => {
    let fake: FakeKubernetes;
    let dir: string;
    let run: (...args: string[]) => Promise<{ ok: boolean; out: string }>;

    before(async () => {
      fake = await new FakeKubernetes().start();
      dir = await mkdtemp(join(tmpdir(), 'kubectl-fake-'));
      const config = join(dir, 'config');
      await writeFile(config, fake.kubeConfig().exportConfig());
      run = async (...args) => {
        try {
          const { stdout } = await pexec(kubectl, ['--kubeconfig', config, '--request-timeout=10s', ...args]);
          return { ok: true, out: stdout };
        } catch (err) {
          return { ok: false, out: String((err as { stderr?: string }).stderr ?? err) };
        }
      };
    });
    after(async () => {
      await fake.stop();
      await rm(dir, { recursive: true, force: true });
    });

    it('discovery, server-side apply, scale, errors and deletion work for a real client', async () => {
      const manifest = join(dir, 'cm.yaml');
      await writeFile(manifest, 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: k\ndata:\n  a: b\n');
      assert.match(
        (await run('apply', '--server-side', '--validate=false', '-f', manifest)).out,
        /configmap\/k serverside-applied/,
      );
      assert.match(
        (await run('apply', '--server-side', '--validate=false', '-f', manifest)).out,
        /serverside-applied/,
      );
      const again = await run('create', '--validate=false', '-f', manifest);
      assert.equal(again.ok, false);
      assert.match(again.out, /AlreadyExists/);
      const missing = await run('get', 'configmap', 'nope');
      assert.match(missing.out, /NotFound/);

      const kc = fake.kubeConfig();
      await kc
        .makeApiClient(AppsV1Api)
        .createNamespacedDeployment({ namespace: 'default', body: deployment('kd') });
      assert.ok((await run('scale', 'deployment', 'kd', '--replicas=3')).ok);
      assert.equal((await run('get', 'deployment', 'kd', '-o', 'jsonpath={.spec.replicas}')).out, '3');
      assert.equal(
        (await run('get', 'deploy,cm', '-A', '-l', 'app=kd', '-o', 'name')).out.trim(),
        'deployment.apps/kd',
      );
      assert.match(
        (await run('api-resources', '--api-group=apps')).out,
        /statefulsets\s+sts\s+apps\/v1\s+true\s+StatefulSet/,
      );
      assert.ok((await run('delete', 'deployment', 'kd', '--cascade=foreground')).ok);
    });
  });
}
