import { KubeConfig } from '@kubernetes/client-node';

type LogFn = (obj: Record<string, unknown>, msg: string) => void;

export interface KubernetesProviderLogger {
  info: LogFn;
  warn: LogFn;
}

/** How to reach the cluster: a ready KubeConfig, or what to build one from. */
export interface KubeConfigSource {
  /** Used as is when given; the other fields are then ignored. */
  kubeConfig?: KubeConfig;
  /** A kubeconfig file (KUBECONFIG-style `:`-separated lists are not accepted here: give one file). */
  kubeconfigPath?: string;
  /** A context of that kubeconfig (default: its current context). */
  context?: string;
  /** Use the pod's service account (KUBERNETES_SERVICE_HOST/PORT and /var/run/secrets/kubernetes.io/serviceaccount). */
  inCluster?: boolean;
}

/** The Pod Security Admission level enforced on every tenant namespace. */
export type PodSecurityLevel = 'restricted' | 'baseline';

/** Ways a tenant's Service could be reached from outside the cluster; each is refused unless the operator allows it. */
export type ServiceExposure = 'NodePort' | 'LoadBalancer' | 'ExternalIPs';

export const SERVICE_EXPOSURES: readonly ServiceExposure[] = ['NodePort', 'LoadBalancer', 'ExternalIPs'];

/** Resource quantities by resource name (`cpu`, `memory`, `requests.cpu`, `pods`, …), as Kubernetes spells them. */
export type Quantities = Record<string, string>;

/** What every tenant namespace gets, besides the Pod Security labels. */
export interface TenantNamespaceLimits {
  /** `spec.hard` of the namespace's ResourceQuota `ctrlplane-quota`; empty: no ResourceQuota. */
  quota: Quantities;
  /** The LimitRange `ctrlplane-limits`: what a container that asks for nothing gets (limits, then requests). */
  containerDefaultLimits: Quantities;
  containerDefaultRequests: Quantities;
}

export const DEFAULT_TENANT_LIMITS: TenantNamespaceLimits = {
  quota: {
    pods: '50',
    services: '20',
    secrets: '100',
    configmaps: '100',
    persistentvolumeclaims: '10',
    'requests.storage': '50Gi',
    'requests.cpu': '4',
    'requests.memory': '8Gi',
    'limits.cpu': '8',
    'limits.memory': '16Gi',
  },
  containerDefaultLimits: { cpu: '500m', memory: '512Mi' },
  containerDefaultRequests: { cpu: '50m', memory: '64Mi' },
};

export interface KubernetesProviderOptions extends KubeConfigSource {
  /**
   * One namespace per tenant, `<namespacePrefix>-<tenant id>` (default true): the boundary between tenants. False
   * puts every tenant into `namespace`, which is NOT safe for untrusted tenants (they share one Pod Security level,
   * quota and network, and the objects are written with the control plane's own credentials).
   */
  namespacePerTenant?: boolean;
  /** The namespace of every instance when `namespacePerTenant` is false (default `default`). */
  namespace?: string;
  /** Default `ctrlplane`. */
  namespacePrefix?: string;
  /**
   * Where the per-tenant ServiceAccounts live that tenant objects are applied as (default `ctrlplane-system`). Kept
   * out of the tenant namespaces, so that no tenant pod can run as one.
   */
  systemNamespace?: string;
  /** Pod Security Admission `enforce` level of tenant namespaces (default `restricted`). */
  podSecurity?: PodSecurityLevel;
  /** runAsUser (and runAsGroup, fsGroup) of generated pods and of tenant pods that set none (default 65532). */
  runAsUser?: number;
  /** Quota and container defaults of tenant namespaces (default DEFAULT_TENANT_LIMITS). */
  tenantLimits?: TenantNamespaceLimits;
  /** Service exposures tenants may use (default none: NodePort, LoadBalancer and externalIPs are refused). */
  serviceExposure?: readonly ServiceExposure[];
  /**
   * API groups of custom resources tenants may write in their namespace (the tenant Role grants them). The built-in
   * namespaced kinds are granted anyway, except ResourceQuota and LimitRange.
   */
  tenantApiGroups?: readonly string[];
  /** Labels on every object (the caller's labels and the reserved ones win over them). */
  labels?: Record<string, string>;
  /** Names of Secrets of type dockerconfigjson every pod gets as imagePullSecrets. */
  imagePullSecrets?: string[];
  /**
   * Repositories Argo CD Applications may come from. Empty (the default) refuses the argocd source: Argo CD deploys
   * with its own permissions, and only a per-tenant AppProject (which the provider writes, limited to the tenant's
   * namespace, no cluster-scoped kinds and these repositories) bounds them.
   */
  argoRepos?: readonly string[];
  /** Where Argo CD Applications and the tenants' AppProjects go (default `argocd`). */
  argoNamespace?: string;
  /** The destination cluster of every Application (default the in-cluster `https://kubernetes.default.svc`). */
  argoDestServer?: string;
  /** `info().region` (default `local`). */
  region?: string;
  /**
   * The helm CLI: a command name looked up on PATH or a path (default `helm`); `false` disables the helm source.
   * Without an executable helm the source is refused with `unsupported_source`.
   */
  helm?: string | false;
  /**
   * Chart repositories (http(s):// or oci:// URL prefixes) and local chart directories (absolute paths) a helm source
   * may name. Empty (the default): every chart is refused.
   */
  helmRepos?: readonly string[];
  logger?: KubernetesProviderLogger;
}

function useContext(kc: KubeConfig, context: string | undefined): void {
  if (!context) return;
  if (!kc.getContextObject(context)) throw new Error(`the kubeconfig has no context "${context}"`);
  kc.setCurrentContext(context);
}

/** A KubeConfig from the options. */
export function buildKubeConfig(source: KubeConfigSource): { kc: KubeConfig; inCluster: boolean } {
  if (source.kubeConfig) {
    return { kc: source.kubeConfig, inCluster: source.kubeConfig.getCurrentCluster()?.name === 'inCluster' };
  }
  const kc = new KubeConfig();
  if (source.kubeconfigPath) {
    kc.loadFromFile(source.kubeconfigPath);
    useContext(kc, source.context);
    return { kc, inCluster: false };
  }
  if (source.inCluster) {
    kc.loadFromCluster();
    return { kc, inCluster: true };
  }
  kc.loadFromDefault();
  useContext(kc, source.context);
  return { kc, inCluster: kc.getCurrentCluster()?.name === 'inCluster' };
}
