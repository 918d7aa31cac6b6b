/**
 * The Kubernetes cluster of this test run. `npm test` (scripts/test-environment.ts) gives it as
 * CTRLPLANE_TEST_KUBECONFIG: the local control plane of scripts/k8s-test-cluster.sh (real etcd, kube-apiserver,
 * kube-controller-manager and kube-scheduler; kwok plays one node, so pods are scheduled and reported Running, but
 * no container runs), or, when KUBECONFIG was set for `npm test`, that cluster.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  ApiException,
  KubeConfig,
  type KubernetesObject,
  KubernetesObjectApi,
  PatchStrategy,
  type V1Pod,
} from '@kubernetes/client-node';
import { PermanentProviderError } from '../../providers/provider.ts';

const path = process.env.CTRLPLANE_TEST_KUBECONFIG;
if (!path) {
  throw new Error(
    'CTRLPLANE_TEST_KUBECONFIG is not set: run the Kubernetes tests through `npm test` (it starts a control plane, or uses KUBECONFIG)',
  );
}

/** A fresh instance id, as the API makes them. */
export function newInstanceId(): string {
  return `inst_${randomBytes(6).toString('hex')}`;
}

/** The name the provider gives an instance's objects: its id with `-` for `_`. */
export function nameOf(instanceId: string): string {
  return instanceId.replaceAll('_', '-');
}

/** A PermanentProviderError('invalid_spec') whose message matches. */
export function refused(pattern: RegExp): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof PermanentProviderError, String(err));
    assert.equal(err.code, 'invalid_spec', err.message);
    assert.match(err.message, pattern);
    return true;
  };
}

/** The API server's own refusal (403 Forbidden: RBAC, Pod Security, an admission policy) whose message matches. */
export function forbidden(pattern: RegExp): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof ApiException, String(err));
    assert.equal(err.code, 403, String(err.body));
    let message = String(err.body);
    try {
      message = (JSON.parse(message) as { message?: string }).message ?? message;
    } catch {}
    assert.match(message, pattern);
    return true;
  };
}

/** The kubeconfig file of the run's cluster (cluster-admin). */
export const TEST_KUBECONFIG: string = path;

/**
 * True on the local control plane, whose fake node (kwok) also plays failing containers
 * (scripts/k8s-test-cluster/kwok-stages.yaml) and serves pod logs from files (kwok's Logs objects).
 */
export const LOCAL_CONTROL_PLANE = process.env.CTRLPLANE_TEST_KUBERNETES === 'local';

/** Images kwok's Stages on the local control plane turn into a crash loop and an image pull error. */
export const CRASH_LOOP_IMAGE = 'kwok.ctrlplane.test/crash-loop:1';
export const IMAGE_PULL_ERROR_IMAGE = 'kwok.ctrlplane.test/image-pull-error:1';

export function testKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(TEST_KUBECONFIG);
  return kc;
}

/** Polls until `check` holds; the controllers work in the background. */
export async function eventually(
  check: () => Promise<boolean>,
  what = 'condition',
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`${what} not reached within ${timeoutMs / 1000}s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** A kind of object, as the API server names it: `['apps/v1', 'Deployment']`. */
export type ObjectKind = readonly [apiVersion: string, kind: string];

/** Objects of the run's cluster, read and written as an administrator would with kubectl. */
export class Cluster {
  readonly api: KubernetesObjectApi;
  /** The kubeconfig file to hand to a stack (CTRLPLANE_K8S_KUBECONFIG). */
  readonly kubeconfigPath = TEST_KUBECONFIG;

  /** `defaultNamespace`: where `read` and `must` look when they are given no namespace (see `in`). */
  constructor(
    readonly kc: KubeConfig = testKubeConfig(),
    readonly defaultNamespace?: string,
  ) {
    this.api = KubernetesObjectApi.makeApiClient(kc);
  }

  /** The same cluster, reading in `namespace` unless told otherwise. */
  in(namespace: string): Cluster {
    return new Cluster(this.kc, namespace);
  }

  /** The same cluster, every request made as `username` (Impersonate-User, as the provider writes a tenant's objects). */
  as(username: string): Cluster {
    const current = this.kc.getCurrentUser()?.name;
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: this.kc.getClusters(),
      contexts: this.kc.getContexts(),
      currentContext: this.kc.getCurrentContext(),
      users: this.kc.getUsers().map((u) => (u.name === current ? { ...u, impersonateUser: username } : u)),
    });
    return new Cluster(kc, this.defaultNamespace);
  }

  /** A plain create (POST), as `kubectl create` would. */
  async create<T extends KubernetesObject>(obj: T): Promise<T> {
    return (await this.api.create(obj)) as T;
  }

  async read<T extends KubernetesObject>(
    apiVersion: string,
    kind: string,
    name: string,
    namespace: string | undefined = this.defaultNamespace,
  ): Promise<T | undefined> {
    try {
      return (await this.api.read({
        apiVersion,
        kind,
        metadata: namespace ? { name, namespace } : { name },
      })) as T;
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) return undefined;
      throw err;
    }
  }

  /** `read`, asserting that the object exists. */
  async must<T extends KubernetesObject>(
    apiVersion: string,
    kind: string,
    name: string,
    namespace: string | undefined = this.defaultNamespace,
  ): Promise<T> {
    const found = await this.read<T>(apiVersion, kind, name, namespace);
    assert.ok(found, `${kind} ${name} should exist`);
    return found;
  }

  async list<T extends KubernetesObject>(
    apiVersion: string,
    kind: string,
    namespace: string | undefined,
    labelSelector?: string,
  ): Promise<T[]> {
    const list = await this.api.list(
      apiVersion,
      kind,
      namespace,
      undefined,
      undefined,
      undefined,
      undefined,
      labelSelector,
    );
    return list.items as T[];
  }

  /** Server-side apply as the field manager `ctrlplane-test` (as `kubectl apply --server-side` would). */
  async apply<T extends KubernetesObject>(obj: T): Promise<T> {
    return (await this.api.patch(
      obj,
      undefined,
      undefined,
      'ctrlplane-test',
      true,
      PatchStrategy.ServerSideApply,
    )) as T;
  }

  async delete(apiVersion: string, kind: string, name: string, namespace?: string): Promise<void> {
    try {
      await this.api.delete({ apiVersion, kind, metadata: namespace ? { name, namespace } : { name } });
    } catch (err) {
      if (!(err instanceof ApiException && err.code === 404)) throw err;
    }
  }

  /** A namespace of its own for a test file (`dispose` deletes it with everything in it). */
  async namespace(prefix = 'ctrlplane-test'): Promise<{ name: string; dispose(): Promise<void> }> {
    const name = `${prefix}-${randomBytes(4).toString('hex')}`;
    await this.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
    // Pods are refused until the controller-manager made the namespace's default ServiceAccount.
    await eventually(
      async () => !!(await this.read('v1', 'ServiceAccount', 'default', name)),
      `ServiceAccount ${name}/default`,
    );
    return { name, dispose: () => this.delete('v1', 'Namespace', name) };
  }

  /**
   * The objects of `kinds` that carry the instance's label, as `Kind/name`, sorted; in `namespace`, or in every
   * namespace when it is undefined.
   */
  async labelled(
    instanceId: string,
    namespace: string | undefined,
    kinds: readonly ObjectKind[],
  ): Promise<string[]> {
    const found: string[] = [];
    for (const [apiVersion, kind] of kinds) {
      for (const o of await this.list(apiVersion, kind, namespace, `ctrlplane.io/instance-id=${instanceId}`))
        found.push(`${kind}/${o.metadata?.name}`);
    }
    return found.sort();
  }

  /** The pods of a workload, by the instance label every ctrlplane pod carries. */
  pods(namespace: string, instanceId: string): Promise<V1Pod[]> {
    return this.list<V1Pod>('v1', 'Pod', namespace, `ctrlplane.io/instance-id=${instanceId}`);
  }
}
