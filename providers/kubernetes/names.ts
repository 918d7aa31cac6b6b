import { createHash } from 'node:crypto';

/** Names, labels and annotations of the Kubernetes provider (reference-behaviour.md §7 "Names and labels"). */

export const LABEL = {
  instanceId: 'ctrlplane.io/instance-id',
  tenantId: 'ctrlplane.io/tenant-id',
  managedBy: 'ctrlplane.io/managed-by',
  /** On the per-service env ConfigMaps. */
  service: 'ctrlplane.io/service',
  /** `env` (a service's env ConfigMap) or `manifests` (the tracking ConfigMap of a manifests source). */
  component: 'ctrlplane.io/component',
} as const;

export const ANNOTATION = {
  /** On the workload: the replica count `stop` found, restored by `start`. */
  replicasBeforeStop: 'ctrlplane.io/replicas-before-stop',
  /** On the pod template: set by `restart`, which rolls the pods. */
  restartedAt: 'ctrlplane.io/restartedAt',
  /** On the pod template: a hash of the env ConfigMaps, so an env change rolls the pods. */
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

export function envConfigMapName(instanceId: string, serviceName: string): string {
  return `${resourceName(instanceId)}-${serviceName}-env`;
}

export function trackingConfigMapName(instanceId: string): string {
  return `${resourceName(instanceId)}-manifests`;
}

/** The label selector of everything that belongs to an instance. */
export function instanceSelector(instanceId: string): string {
  return `${LABEL.instanceId}=${instanceId}`;
}

/** `<prefix>-<tenant id with _ → ->`, shortened with a hash when it would exceed a DNS label's 63 characters. */
export function tenantNamespace(prefix: string, tenantId: string): string {
  const name = `${prefix}-${tenantId.replaceAll('_', '-').toLowerCase()}`.replace(/[^a-z0-9-]/g, '-');
  if (name.length <= 63) return name;
  const hash = createHash('sha256').update(tenantId).digest('hex').slice(0, 10);
  return `${name.slice(0, 52).replace(/-+$/, '')}-${hash}`;
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
