import { createHash } from 'node:crypto';

/** Names, labels and annotations of the Kubernetes provider. */

export const LABEL = {
  instanceId: 'ctrlplane.io/instance-id',
  tenantId: 'ctrlplane.io/tenant-id',
  managedBy: 'ctrlplane.io/managed-by',
  /** On the per-service env Secrets. */
  service: 'ctrlplane.io/service',
  /** `env` (a service's env Secret) or `manifests` (the tracking ConfigMap of a manifests source). */
  component: 'ctrlplane.io/component',
} as const;

export const ANNOTATION = {
  /** On the workload: the replica count `stop` found, restored by `start`. */
  replicasBeforeStop: 'ctrlplane.io/replicas-before-stop',
  /** On the pod template: set by `restart`, which rolls the pods. */
  restartedAt: 'ctrlplane.io/restartedAt',
  /**
   * On the pod template: a hash of the env Secrets' names, uids and resourceVersions (never of their values), so an
   * env change rolls the pods.
   */
  configHash: 'ctrlplane.io/config-hash',
  /** On the workload: the main service, whose container `logs` reads by default. */
  mainService: 'ctrlplane.io/main-service',
  defaultContainer: 'kubectl.kubernetes.io/default-container',
} as const;

export const MANAGED_BY = 'ctrlplane';
export const FIELD_MANAGER = 'ctrlplane';

/** `<instance id with _ → ->`, the name of the workload, its Service, Helm release and Argo Application. */
export function resourceName(instanceId: string): string {
  return instanceId.replaceAll('_', '-').toLowerCase();
}

/** `<name>-<service>-env`: the Secret holding a service's env (it may hold resolved secret values). */
export function envSecretName(instanceId: string, serviceName: string): string {
  return `${resourceName(instanceId)}-${serviceName}-env`;
}

export function trackingConfigMapName(instanceId: string): string {
  return `${resourceName(instanceId)}-manifests`;
}

/** The label selector of everything that belongs to an instance. */
export function instanceSelector(instanceId: string): string {
  return `${LABEL.instanceId}=${instanceId}`;
}

const TENANT_HASH_LENGTH = 10;

/**
 * `<prefix>-<tenant id, lowercased, anything but [a-z0-9-] → ->-<10 hex of sha256(exact tenant id)>`, the readable
 * part shortened so the whole stays a DNS label of at most 63 characters. The hash of the exact id keeps the mapping
 * injective: `a_b`, `a-b` and `A.B` sanitize alike but get different namespaces.
 */
export function tenantNamespace(prefix: string, tenantId: string): string {
  const hash = createHash('sha256').update(tenantId, 'utf8').digest('hex').slice(0, TENANT_HASH_LENGTH);
  const readable = `${prefix}-${tenantId.toLowerCase()}`.replace(/[^a-z0-9-]/g, '-');
  return `${readable.slice(0, 63 - TENANT_HASH_LENGTH - 1).replace(/-+$/, '')}-${hash}`;
}

export interface LabelInput {
  instanceId: string;
  tenantId: string;
  /** Labels from the provider configuration. */
  config?: Record<string, string>;
  /** The caller's (instance's) labels. */
  caller?: Record<string, string>;
}

/** The reserved labels; they always win. */
export function reservedLabels(instanceId: string, tenantId: string): Record<string, string> {
  return { [LABEL.instanceId]: instanceId, [LABEL.tenantId]: tenantId, [LABEL.managedBy]: MANAGED_BY };
}

/** Config labels, overlaid by the caller's, overlaid by the reserved ones. */
export function instanceLabels(input: LabelInput): Record<string, string> {
  return { ...input.config, ...input.caller, ...reservedLabels(input.instanceId, input.tenantId) };
}

/** `k8s:<ns>/<name>` */
export function providerRef(namespace: string, instanceId: string): string {
  return `k8s:${namespace}/${resourceName(instanceId)}`;
}
