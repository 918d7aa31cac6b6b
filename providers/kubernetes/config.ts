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

export interface KubernetesProviderOptions extends KubeConfigSource {
  /** Namespace of every instance (default `default`), unless `namespacePerTenant`. */
  namespace?: string;
  /** One namespace per tenant, `<namespacePrefix>-<tenant id>`, created on demand (server-side apply). */
  namespacePerTenant?: boolean;
  /** Default `ctrlplane`. */
  namespacePrefix?: string;
  /** Labels on every object (the caller's labels and the reserved ones win over them). */
  labels?: Record<string, string>;
  /** Names of Secrets of type dockerconfigjson every pod gets as imagePullSecrets. */
  imagePullSecrets?: string[];
  /** Where Argo CD Applications go (default `argocd`). */
  argoNamespace?: string;
  /**
   * The Argo CD project of every Application (default `default`). Argo CD deploys with its own permissions, bounded
   * by this project: give it one that only allows namespaced resources in the tenants' namespaces.
   */
  argoProject?: string;
  /** The destination cluster of every Application (default the in-cluster `https://kubernetes.default.svc`). */
  argoDestServer?: string;
  /** `info().region` (default `local`). */
  region?: string;
  /**
   * The helm CLI: a command name looked up on PATH or a path (default `helm`); `false` disables the helm source.
   * Without an executable helm the source is refused with `unsupported_source`.
   */
  helm?: string | false;
  logger?: KubernetesProviderLogger;
}

function useContext(kc: KubeConfig, context: string | undefined): void {
  if (!context) return;
  if (!kc.getContextObject(context)) throw new Error(`the kubeconfig has no context "${context}"`);
  kc.setCurrentContext(context);
}

/** A KubeConfig from the options (reference-behaviour.md §7: explicit file (+context) → in-cluster → defaults). */
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
