import type { KubernetesObject } from '@kubernetes/client-node';
import type { PodSecurityLevel, ServiceExposure, TenantNamespaceLimits } from './config.ts';
import { LABEL, MANAGED_BY, resourceName } from './names.ts';

/**
 * The objects that make a tenant namespace a boundary the cluster enforces: Pod Security labels, a ResourceQuota and
 * LimitRange, a default-deny NetworkPolicy, and the identity tenant objects are applied as, a ServiceAccount of the
 * system namespace bound to a namespaced Role in the tenant namespace only (so RBAC refuses cluster-scoped objects,
 * other namespaces, and the quota and limits themselves).
 */

export const TENANT_ROLE = 'ctrlplane-tenant';
export const QUOTA_NAME = 'ctrlplane-quota';
export const LIMIT_RANGE_NAME = 'ctrlplane-limits';
export const DEFAULT_DENY_POLICY = 'ctrlplane-default-deny';
/** On tenant namespaces: the system namespace of the control plane that owns them (its admission policy binds to it). */
export const TENANT_OF_LABEL = 'ctrlplane.io/tenant-of';

/** The per-tenant ServiceAccount, named like the tenant namespace, in the system namespace. */
export interface TenantIdentity {
  namespace: string;
  name: string;
  /** What the API server sees when the control plane impersonates it. */
  username: string;
}

export function tenantIdentity(systemNamespace: string, tenantNamespace: string): TenantIdentity {
  return {
    namespace: systemNamespace,
    name: tenantNamespace,
    username: `system:serviceaccount:${systemNamespace}:${tenantNamespace}`,
  };
}

const ALL_VERBS = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection'];

/**
 * The namespaced kinds a tenant writes. ResourceQuota and LimitRange are not among them: the tenant cannot lift its
 * own limits. Roles and RoleBindings are (the API server's escalation check keeps them within what the Role holds).
 */
const TENANT_RESOURCES: ReadonlyArray<[group: string, resources: string[]]> = [
  [
    '',
    [
      'pods',
      'pods/log',
      'services',
      'configmaps',
      'secrets',
      'persistentvolumeclaims',
      'serviceaccounts',
      'endpoints',
      'events',
      'replicationcontrollers',
      'podtemplates',
    ],
  ],
  [
    'apps',
    [
      'deployments',
      'deployments/scale',
      'statefulsets',
      'statefulsets/scale',
      'daemonsets',
      'replicasets',
      'controllerrevisions',
    ],
  ],
  ['batch', ['jobs', 'cronjobs']],
  ['networking.k8s.io', ['ingresses', 'networkpolicies']],
  ['policy', ['poddisruptionbudgets']],
  ['autoscaling', ['horizontalpodautoscalers']],
  ['coordination.k8s.io', ['leases']],
  ['discovery.k8s.io', ['endpointslices']],
  ['rbac.authorization.k8s.io', ['roles', 'rolebindings']],
];

export interface TenantNamespaceInput {
  namespace: string;
  tenantId: string;
  identity: TenantIdentity;
  podSecurity: PodSecurityLevel;
  limits: TenantNamespaceLimits;
  /** Custom resource groups the operator lets tenants write. */
  apiGroups: readonly string[];
  /** Labels from the provider configuration. */
  labels: Record<string, string>;
}

/** Everything applied (as the control plane) before a tenant's first object, in this order. */
export function tenantNamespaceObjects(input: TenantNamespaceInput): KubernetesObject[] {
  const { namespace, identity } = input;
  const labels = { ...input.labels, [LABEL.managedBy]: MANAGED_BY, [LABEL.tenantId]: input.tenantId };
  const objects: KubernetesObject[] = [
    {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: {
        name: namespace,
        labels: {
          ...labels,
          [TENANT_OF_LABEL]: identity.namespace,
          'pod-security.kubernetes.io/enforce': input.podSecurity,
          'pod-security.kubernetes.io/enforce-version': 'latest',
          'pod-security.kubernetes.io/warn': input.podSecurity,
          'pod-security.kubernetes.io/audit': input.podSecurity,
        },
      },
    },
    {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: identity.name, namespace: identity.namespace, labels },
      automountServiceAccountToken: false,
    } as KubernetesObject,
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: TENANT_ROLE, namespace, labels },
      rules: [
        ...TENANT_RESOURCES.map(([group, resources]) => ({
          apiGroups: [group],
          resources,
          verbs: ALL_VERBS,
        })),
        ...(input.apiGroups.length > 0
          ? [{ apiGroups: [...input.apiGroups], resources: ['*'], verbs: ALL_VERBS }]
          : []),
      ],
    } as KubernetesObject,
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: TENANT_ROLE, namespace, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: TENANT_ROLE },
      subjects: [{ kind: 'ServiceAccount', name: identity.name, namespace: identity.namespace }],
    } as KubernetesObject,
    // The namespace's `default` ServiceAccount, the only one tenant pods run as, hands out no token.
    {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'default', namespace },
      automountServiceAccountToken: false,
    } as KubernetesObject,
    {
      apiVersion: 'v1',
      kind: 'LimitRange',
      metadata: { name: LIMIT_RANGE_NAME, namespace, labels },
      spec: {
        limits: [
          {
            type: 'Container',
            default: { ...input.limits.containerDefaultLimits },
            defaultRequest: { ...input.limits.containerDefaultRequests },
          },
        ],
      },
    } as KubernetesObject,
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: DEFAULT_DENY_POLICY, namespace, labels },
      spec: { podSelector: {}, policyTypes: ['Ingress', 'Egress'] },
    } as KubernetesObject,
  ];
  if (Object.keys(input.limits.quota).length > 0) {
    objects.push({
      apiVersion: 'v1',
      kind: 'ResourceQuota',
      metadata: { name: QUOTA_NAME, namespace, labels },
      spec: { hard: { ...input.limits.quota } },
    } as KubernetesObject);
  }
  return objects;
}

export function instanceNetworkPolicyName(instanceId: string): string {
  return `${resourceName(instanceId)}-ctrlplane-net`;
}

/**
 * Opens the default deny for one instance: its pods reach each other (both ways) and the cluster DNS, nothing else.
 * In the API's JSON field names (the provider's apply maps them to client-node's model).
 */
export function instanceNetworkPolicy(
  instanceId: string,
  namespace: string,
  labels: Record<string, string>,
): KubernetesObject {
  const own = { matchLabels: { [LABEL.instanceId]: instanceId } };
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: instanceNetworkPolicyName(instanceId), namespace, labels },
    spec: {
      podSelector: own,
      policyTypes: ['Ingress', 'Egress'],
      ingress: [{ from: [{ podSelector: own }] }],
      egress: [
        { to: [{ podSelector: own }] },
        {
          to: [{ namespaceSelector: {}, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } }],
          ports: [
            { protocol: 'UDP', port: 53 },
            { protocol: 'TCP', port: 53 },
          ],
        },
      ],
    },
  } as KubernetesObject;
}

/**
 * A ValidatingAdmissionPolicy and its binding (cluster-scoped, applied once by the control plane) by which the API
 * server itself refuses, in this control plane's tenant namespaces, Services of type NodePort or LoadBalancer and
 * externalIPs, except the exposures the operator allows.
 */
export function serviceExposurePolicy(
  systemNamespace: string,
  allowed: readonly ServiceExposure[],
  labels: Record<string, string>,
): KubernetesObject[] {
  const name = `${systemNamespace}-service-exposure`;
  const refusedTypes = (['NodePort', 'LoadBalancer'] as const).filter((t) => !allowed.includes(t));
  const validations: Array<Record<string, string>> = [];
  if (refusedTypes.length > 0) {
    validations.push({
      expression: `!has(object.spec.type) || !(object.spec.type in ${JSON.stringify(refusedTypes)})`,
      message: `Services of type ${refusedTypes.join(' or ')} are not allowed in tenant namespaces`,
      reason: 'Forbidden',
    });
  }
  if (!allowed.includes('ExternalIPs')) {
    validations.push({
      expression: '!has(object.spec.externalIPs) || size(object.spec.externalIPs) == 0',
      message: 'externalIPs are not allowed in tenant namespaces',
      reason: 'Forbidden',
    });
  }
  // Something always holds, so that a policy from an earlier, stricter configuration is replaced.
  if (validations.length === 0) validations.push({ expression: 'true', reason: 'Forbidden' });
  return [
    {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicy',
      metadata: { name, labels },
      spec: {
        failurePolicy: 'Fail',
        matchConstraints: {
          resourceRules: [
            {
              apiGroups: [''],
              apiVersions: ['v1'],
              operations: ['CREATE', 'UPDATE'],
              resources: ['services'],
            },
          ],
        },
        validations,
      },
    } as KubernetesObject,
    {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicyBinding',
      metadata: { name, labels },
      spec: {
        policyName: name,
        validationActions: ['Deny'],
        matchResources: { namespaceSelector: { matchLabels: { [TENANT_OF_LABEL]: systemNamespace } } },
      },
    } as KubernetesObject,
  ];
}
