import type { KubernetesObject } from '@kubernetes/client-node';
import { PermanentProviderError } from '../provider.ts';
import { LABEL } from './names.ts';

/**
 * What a tenant's manifests may contain: anything outside the instance's namespace, or anything that touches another
 * instance's objects, is refused before a single object is written (PermanentProviderError 'invalid_spec'). In a
 * tenant namespace the objects are written as the tenant's own identity, so RBAC refuses the same again; in the
 * shared namespace (an opt-in) they are written with the control plane's credentials and this is the only wall.
 * Pod templates and Services are checked in pod-policy.ts.
 */

/**
 * Cluster-scoped kinds, refused by name whatever discovery says (discovery is asked too, so cluster-scoped custom
 * resources are refused as well).
 */
export const CLUSTER_SCOPED_KINDS: ReadonlySet<string> = new Set([
  'Namespace',
  'Node',
  'PersistentVolume',
  'ComponentStatus',
  'ClusterRole',
  'ClusterRoleBinding',
  'CustomResourceDefinition',
  'APIService',
  'StorageClass',
  'CSIDriver',
  'CSINode',
  'VolumeAttachment',
  'VolumeAttributesClass',
  'ValidatingWebhookConfiguration',
  'MutatingWebhookConfiguration',
  'ValidatingAdmissionPolicy',
  'ValidatingAdmissionPolicyBinding',
  'MutatingAdmissionPolicy',
  'MutatingAdmissionPolicyBinding',
  'PriorityClass',
  'RuntimeClass',
  'IngressClass',
  'PodSecurityPolicy',
  'CertificateSigningRequest',
  'FlowSchema',
  'PriorityLevelConfiguration',
  'ClusterTrustBundle',
  'IPAddress',
  'ServiceCIDR',
  'DeviceClass',
  'TokenReview',
  'SelfSubjectReview',
  'SelfSubjectAccessReview',
  'SelfSubjectRulesReview',
  'SubjectAccessReview',
]);

/** Kinds that hand out access to what else lives in the namespace: refused where tenants share one. */
const SHARED_NAMESPACE_REFUSED: ReadonlySet<string> = new Set(['Role', 'RoleBinding']);

type Json = Record<string, unknown>;

function isRecord(value: unknown): value is Json {
  return !!value && typeof value === 'object' && !Array.isArray(value);
}

function refuse(message: string): never {
  throw new PermanentProviderError(message, 'invalid_spec');
}

function describe(obj: KubernetesObject): string {
  return `${obj.kind} ${obj.metadata?.name ?? ''}`.trim();
}

export function refuseClusterScoped(obj: KubernetesObject): never {
  return refuse(
    `the manifests contain ${describe(obj)}: ${obj.kind} is cluster-scoped, and a manifests source may only contain namespaced objects of its instance's namespace`,
  );
}

/** The kind-level rules that need no API call. */
export function checkKind(obj: KubernetesObject, sharedNamespace: boolean): void {
  const kind = obj.kind ?? '';
  if (CLUSTER_SCOPED_KINDS.has(kind)) refuseClusterScoped(obj);
  if (
    sharedNamespace &&
    SHARED_NAMESPACE_REFUSED.has(kind) &&
    obj.apiVersion?.startsWith('rbac.authorization.k8s.io/')
  ) {
    refuse(
      `the manifests contain ${describe(obj)}: RBAC objects are not accepted in a namespace shared by several tenants`,
    );
  }
  if (kind === 'Secret' && (obj as { type?: unknown }).type === 'kubernetes.io/service-account-token') {
    refuse(`the manifests contain ${describe(obj)}: service-account token Secrets are not accepted`);
  }
}

/**
 * The pod templates of an object: `spec.template` of anything whose template holds containers (Deployment,
 * StatefulSet, DaemonSet, ReplicaSet, Job, ReplicationController, and custom workloads shaped alike), and a CronJob's
 * `spec.jobTemplate` and its pod template.
 */
function templates(obj: KubernetesObject): Json[] {
  const spec = (obj as { spec?: unknown }).spec;
  if (!isRecord(spec)) return [];
  const found: Json[] = [];
  const podTemplate = (t: unknown) =>
    isRecord(t) && isRecord(t.spec) && (Array.isArray(t.spec.containers) || isRecord(t.metadata));
  if (podTemplate(spec.template)) found.push(spec.template as Json);
  if (isRecord(spec.jobTemplate)) {
    found.push(spec.jobTemplate);
    const jobSpec = spec.jobTemplate.spec;
    if (isRecord(jobSpec) && podTemplate(jobSpec.template)) found.push(jobSpec.template as Json);
  }
  return found;
}

/** The reserved labels win on pod templates as on the objects themselves, so a tenant's pods never join another instance's Service. */
export function forceTemplateLabels(obj: KubernetesObject, reserved: Record<string, string>): void {
  for (const t of templates(obj)) {
    const metadata = isRecord(t.metadata) ? t.metadata : {};
    metadata.labels = { ...(isRecord(metadata.labels) ? metadata.labels : {}), ...reserved };
    t.metadata = metadata;
  }
}

/**
 * Selectors that pick pods by label beyond the object's own (a Service's, a NetworkPolicy's, a
 * PodDisruptionBudget's) are narrowed to the instance's pods, so they cannot route to, isolate or hold back the pods
 * of another instance sharing the namespace.
 */
export function scopeSelectors(obj: KubernetesObject, instanceId: string): void {
  const spec = (obj as { spec?: unknown }).spec;
  if (!isRecord(spec)) return;
  const group = (obj.apiVersion ?? '').includes('/') ? (obj.apiVersion ?? '').split('/')[0] : '';
  const own = { [LABEL.instanceId]: instanceId };
  if (group === '' && obj.kind === 'Service') {
    if (isRecord(spec.selector) && Object.keys(spec.selector).length > 0) {
      spec.selector = { ...spec.selector, ...own };
    }
    return;
  }
  const narrow = (field: 'podSelector' | 'selector') => {
    const selector = isRecord(spec[field]) ? spec[field] : {};
    selector.matchLabels = { ...(isRecord(selector.matchLabels) ? selector.matchLabels : {}), ...own };
    spec[field] = selector;
  };
  if (group === 'networking.k8s.io' && obj.kind === 'NetworkPolicy') narrow('podSelector');
  if (group === 'policy' && obj.kind === 'PodDisruptionBudget') narrow('selector');
}

/**
 * Refuses an object that names another instance or tenant through a reserved label anywhere (labels, selectors,
 * matchExpressions, affinity terms): run after the reserved labels were forced, so only the tenant's own values remain.
 */
export function refuseForeignReferences(
  obj: KubernetesObject,
  own: { instanceId: string; tenantId: string },
): void {
  const expected: Record<string, string> = {
    [LABEL.instanceId]: own.instanceId,
    [LABEL.tenantId]: own.tenantId,
  };
  const visit = (value: unknown, path: string): void => {
    if (Array.isArray(value)) {
      value.forEach((v, i) => {
        visit(v, `${path}[${i}]`);
      });
      return;
    }
    if (!isRecord(value)) return;
    for (const [key, want] of Object.entries(expected)) {
      if (key in value && value[key] !== want) {
        refuse(
          `${describe(obj)} uses the reserved label ${key} with another value (${JSON.stringify(value[key])}) at ${path}: it may only refer to its own instance`,
        );
      }
      // A matchExpressions entry: { key, operator, values }.
      if (value.key === key && typeof value.operator === 'string') {
        const values = Array.isArray(value.values) ? value.values : [];
        if (value.operator !== 'In' || values.length === 0 || values.some((v) => v !== want)) {
          refuse(
            `${describe(obj)} selects on the reserved label ${key} other than "${key} In (${want})" at ${path}: it may only refer to its own instance`,
          );
        }
      }
    }
    for (const [k, v] of Object.entries(value)) visit(v, path ? `${path}.${k}` : k);
  };
  visit(obj, '');
}
