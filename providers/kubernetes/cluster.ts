import { KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import type { KubernetesProviderLogger } from './config.ts';
import { statusCode } from './errors.ts';
import { fromWire, KubeObjects } from './kube-client.ts';
import { instanceSelector, LABEL, MANAGED_BY, tenantNamespace } from './names.ts';
import { applyObject } from './object-writes.ts';
import type { KubernetesSettings } from './settings.ts';
import {
  serviceExposurePolicy,
  type TenantIdentity,
  tenantIdentity,
  tenantNamespaceObjects,
} from './tenant-namespace.ts';

/** How long a new tenant RoleBinding may take to reach the API server's RBAC cache. */
const RBAC_PROPAGATION_MS = 15_000;

/**
 * The cluster as the services workload and the source engines share it: the control plane's client, the settings,
 * which namespace an instance lives in, and the identity a tenant's objects are written as. Reads go through the
 * control plane's own client; writes of tenant objects through `writerFor`.
 */
export class KubernetesCluster {
  readonly objects: KubeObjects;
  /** Clients acting as a tenant's ServiceAccount (impersonation), by its user name. */
  private readonly tenantClients = new Map<string, KubeObjects>();
  /** instance id → namespace, learned at provision or by lookup (only consulted with namespacePerTenant). */
  private readonly knownNamespaces = new Map<string, string>();
  /** Tenant namespaces this process has already applied. */
  private readonly ensuredNamespaces = new Set<string>();
  /** The system namespace and the Service admission policy, applied once per process. */
  private clusterPolicyApplied = false;

  constructor(
    readonly kubeConfig: KubeConfig,
    readonly settings: KubernetesSettings,
    readonly log: KubernetesProviderLogger,
  ) {
    this.objects = KubeObjects.create(kubeConfig);
  }

  /** The control plane's client, every request of it aborted by `signal`. */
  reader(signal: AbortSignal | undefined): KubeObjects {
    return this.objects.withSignal(signal);
  }

  /** The namespace of a tenant's instances. */
  namespaceFor(tenantId: string): string {
    const { namespacePerTenant, namespacePrefix, namespace } = this.settings;
    return namespacePerTenant ? tenantNamespace(namespacePrefix, tenantId) : namespace;
  }

  /**
   * The identity a tenant's objects are written as (a ServiceAccount of the system namespace bound to a Role of the
   * tenant namespace only); undefined in the shared namespace, where the control plane writes them itself.
   */
  tenantIdentity(tenantId: string): TenantIdentity | undefined {
    return this.settings.namespacePerTenant
      ? tenantIdentity(this.settings.systemNamespace, this.namespaceFor(tenantId))
      : undefined;
  }

  /**
   * The client a tenant namespace's objects are written with: one that impersonates the tenant's ServiceAccount
   * (so the API server's RBAC and Pod Security judge what the tenant asked for), or in the shared namespace the
   * control plane's own.
   */
  writerFor(namespace: string, signal: AbortSignal | undefined): KubeObjects {
    if (!this.settings.namespacePerTenant) return this.objects.withSignal(signal);
    const { username } = tenantIdentity(this.settings.systemNamespace, namespace);
    let client = this.tenantClients.get(username);
    if (!client) {
      client = KubeObjects.create(impersonating(this.kubeConfig, username));
      this.tenantClients.set(username, client);
    }
    return client.withSignal(signal);
  }

  /**
   * With namespacePerTenant, applies the tenant namespace and what makes it a boundary (tenant-namespace.ts), once
   * per process, and waits until the tenant's RoleBinding is in effect; otherwise nothing.
   */
  async ensureNamespace(api: KubeObjects, namespace: string, tenantId: string): Promise<void> {
    const { namespacePerTenant, systemNamespace, labels } = this.settings;
    if (!namespacePerTenant || namespace !== this.namespaceFor(tenantId)) return;
    if (this.ensuredNamespaces.has(namespace)) return;
    if (!this.clusterPolicyApplied) {
      const systemLabels = { ...labels, [LABEL.managedBy]: MANAGED_BY };
      await applyObject(api, {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: systemNamespace, labels: systemLabels },
      });
      for (const obj of serviceExposurePolicy(systemNamespace, this.settings.serviceExposure, systemLabels)) {
        await applyObject(api, obj);
      }
      this.clusterPolicyApplied = true;
    }
    const objects = tenantNamespaceObjects({
      namespace,
      tenantId,
      identity: tenantIdentity(systemNamespace, namespace),
      podSecurity: this.settings.podSecurity,
      limits: this.settings.tenantLimits,
      apiGroups: this.settings.tenantApiGroups,
      labels,
    });
    for (const obj of objects) await applyObject(api, obj);
    const writer = this.writerFor(namespace, undefined);
    const deadline = Date.now() + RBAC_PROPAGATION_MS;
    for (;;) {
      try {
        await writer.list(
          'v1',
          'ConfigMap',
          namespace,
          undefined,
          undefined,
          undefined,
          undefined,
          undefined,
          1,
        );
        break;
      } catch (err) {
        if (statusCode(err) !== 403 || Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    await this.awaitServicePolicy(writer, namespace, deadline);
    this.ensuredNamespaces.add(namespace);
  }

  /** A tenant namespace found missing (deleted behind our back): the next ensureNamespace applies it again. */
  namespaceLost(namespace: string): void {
    this.ensuredNamespaces.delete(namespace);
  }

  /**
   * The namespace an instance lives in. With one namespace per tenant the instance id alone does not say, so its
   * objects are looked up across namespaces by the instance label (and remembered).
   */
  async findNamespace(api: KubeObjects, instanceId: string): Promise<string | undefined> {
    if (!this.settings.namespacePerTenant) return this.settings.namespace;
    const known = this.knownNamespaces.get(instanceId);
    if (known) return known;
    const selector = instanceSelector(instanceId);
    for (const [apiVersion, kind] of [
      ['apps/v1', 'Deployment'],
      ['apps/v1', 'StatefulSet'],
      ['v1', 'ConfigMap'],
      ['v1', 'Secret'],
    ] as const) {
      const list = await api.list(
        apiVersion,
        kind,
        undefined,
        undefined,
        undefined,
        undefined,
        undefined,
        selector,
        1,
      );
      const namespace = list.items[0]?.metadata?.namespace;
      if (namespace) {
        this.knownNamespaces.set(instanceId, namespace);
        return namespace;
      }
    }
    return undefined;
  }

  /** Records where an instance's objects were just written. */
  rememberNamespace(instanceId: string, namespace: string): void {
    this.knownNamespaces.set(instanceId, namespace);
  }

  /** Forgets an instance whose objects were deleted. */
  forgetNamespace(instanceId: string): void {
    this.knownNamespaces.delete(instanceId);
  }

  /**
   * Waits until the API server enforces the Service admission policy in the namespace (a new policy or binding takes
   * effect a moment after it is written): a dry-run create of a refused Service, as the tenant, must be refused.
   */
  private async awaitServicePolicy(writer: KubeObjects, namespace: string, deadline: number): Promise<void> {
    const exposure = this.settings.serviceExposure;
    const spec: Record<string, unknown> = { ports: [{ port: 80 }] };
    if (!exposure.includes('NodePort')) spec.type = 'NodePort';
    else if (!exposure.includes('LoadBalancer')) spec.type = 'LoadBalancer';
    else if (!exposure.includes('ExternalIPs')) spec.externalIPs = ['192.0.2.1'];
    else return;
    const probe = {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'ctrlplane-admission-probe', namespace },
      spec,
    } as KubernetesObject;
    for (;;) {
      try {
        await writer.create(fromWire(probe), undefined, 'All');
      } catch (err) {
        if (statusCode(err) === 403) return;
        throw err;
      }
      if (Date.now() > deadline) {
        throw new Error(`the Service admission policy is not in effect in namespace ${namespace} yet`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** The same cluster and credentials, every request made as `username` (Impersonate-User). */
function impersonating(kc: KubeConfig, username: string): KubeConfig {
  const current = kc.getCurrentUser()?.name;
  const copy = new KubeConfig();
  copy.loadFromOptions({
    clusters: kc.getClusters(),
    contexts: kc.getContexts(),
    currentContext: kc.getCurrentContext(),
    users: kc.getUsers().map((u) => (u.name === current ? { ...u, impersonateUser: username } : u)),
  });
  return copy;
}
