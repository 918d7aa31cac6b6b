import {
  DEFAULT_TENANT_LIMITS,
  type KubernetesProviderOptions,
  type PodSecurityLevel,
  type ServiceExposure,
  type TenantNamespaceLimits,
} from './config.ts';

/** The provider's options with every default filled in and checked, as its parts read them. */
export interface KubernetesSettings {
  namespacePerTenant: boolean;
  /** The namespace of every instance when namespacePerTenant is false. */
  namespace: string;
  namespacePrefix: string;
  systemNamespace: string;
  podSecurity: PodSecurityLevel;
  runAsUser: number;
  tenantLimits: TenantNamespaceLimits;
  serviceExposure: readonly ServiceExposure[];
  tenantApiGroups: readonly string[];
  labels: Record<string, string>;
  imagePullSecrets: string[];
  argoRepos: readonly string[];
  argoNamespace: string;
  argoDestServer: string;
  region: string;
  /** The helm command or path; false: the helm source is disabled. */
  helmCommand: string | false;
  helmRepos: readonly string[];
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const IN_CLUSTER_SERVER = 'https://kubernetes.default.svc';

function validateNamespaceName(name: string, what: string): void {
  if (!DNS_LABEL.test(name) || name.length > 63) {
    throw new Error(`invalid kubernetes provider configuration: ${what} "${name}" is not a DNS label`);
  }
}

/** The settings from the options; throws on a namespace that is not a DNS label or a root UID. */
export function resolveSettings(options: KubernetesProviderOptions): KubernetesSettings {
  const namespacePerTenant = options.namespacePerTenant ?? true;
  if (namespacePerTenant && options.namespace !== undefined) {
    throw new Error(
      'invalid kubernetes provider configuration: `namespace` is the namespace shared by all tenants, which needs namespacePerTenant: false',
    );
  }
  const namespace = options.namespace ?? 'default';
  validateNamespaceName(namespace, 'namespace');
  const namespacePrefix = options.namespacePrefix ?? 'ctrlplane';
  if (namespacePerTenant) validateNamespaceName(namespacePrefix, 'namespace prefix');
  const systemNamespace = options.systemNamespace ?? 'ctrlplane-system';
  validateNamespaceName(systemNamespace, 'system namespace');
  const runAsUser = options.runAsUser ?? 65532;
  if (!Number.isInteger(runAsUser) || runAsUser < 1) {
    throw new Error(
      `invalid kubernetes provider configuration: runAsUser ${runAsUser} is not a non-root UID`,
    );
  }
  const argoNamespace = options.argoNamespace ?? 'argocd';
  validateNamespaceName(argoNamespace, 'argo namespace');
  return {
    namespacePerTenant,
    namespace,
    namespacePrefix,
    systemNamespace,
    podSecurity: options.podSecurity ?? 'restricted',
    runAsUser,
    tenantLimits: options.tenantLimits ?? DEFAULT_TENANT_LIMITS,
    serviceExposure: [...(options.serviceExposure ?? [])],
    tenantApiGroups: [...(options.tenantApiGroups ?? [])],
    labels: { ...options.labels },
    imagePullSecrets: [...(options.imagePullSecrets ?? [])],
    argoRepos: [...(options.argoRepos ?? [])],
    argoNamespace,
    argoDestServer: options.argoDestServer?.trim() || IN_CLUSTER_SERVER,
    region: options.region ?? 'local',
    helmCommand: options.helm ?? 'helm',
    helmRepos: [...(options.helmRepos ?? [])],
  };
}
