import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../../config/config-error.ts';
import type { KubernetesProviderLogger, KubernetesProviderOptions } from './config.ts';
import { KubernetesProvider } from './kubernetes-provider.ts';

const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';
/** The helm scripts/k8s-test-cluster.sh builds (pinned, v3.22.0) into the repository's .tools/bin. */
const BUILT_HELM = fileURLToPath(new URL('../../.tools/bin/helm', import.meta.url));

function bool(env: NodeJS.ProcessEnv, key: string): boolean | undefined {
  const raw = env[key]?.trim().toLowerCase();
  if (raw === undefined || raw === '') return undefined;
  if (['1', 't', 'true', 'yes', 'on'].includes(raw)) return true;
  if (['0', 'f', 'false', 'no', 'off'].includes(raw)) return false;
  throw ConfigError.of(key, `expected a boolean, got "${env[key]}"`);
}

function list(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

function labels(env: NodeJS.ProcessEnv, key: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of list(env[key])) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw ConfigError.of(key, `"${pair}" is not key=value`);
    out[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
  }
  return out;
}

/**
 * The provider options from the environment, or undefined when Kubernetes is not configured. It is configured by
 * CP_K8S_KUBECONFIG (a kubeconfig file), else KUBECONFIG (client-node's default loading rules), else
 * CP_K8S_IN_CLUSTER=true, else automatically in a pod (KUBERNETES_SERVICE_HOST and a service-account token).
 * CP_K8S_ENABLED=false turns it off whatever else is set.
 *
 * Also read: CP_K8S_CONTEXT, CP_K8S_NAMESPACE (default `default`; set but empty is an error),
 * CP_K8S_NAMESPACE_PER_TENANT (bool), CP_K8S_NAMESPACE_PREFIX (default `ctrlplane`), CP_K8S_LABELS (`k=v,k2=v2`),
 * CP_K8S_IMAGE_PULL_SECRETS (comma-separated), CP_K8S_ARGO_NAMESPACE (default `argocd`), CP_K8S_ARGO_PROJECT
 * (default `default`), CP_K8S_ARGO_DEST_SERVER (default `https://kubernetes.default.svc`), CP_K8S_REGION (default
 * `local`), CP_K8S_HELM_BIN (default: .tools/bin/helm when setup built it, else `helm` on PATH; `false` disables
 * the helm source).
 */
export function kubernetesOptionsFromEnv(
  env: NodeJS.ProcessEnv = process.env,
): KubernetesProviderOptions | undefined {
  if (bool(env, 'CP_K8S_ENABLED') === false) return undefined;
  const explicitPath = env.CP_K8S_KUBECONFIG?.trim();
  const defaultPath = env.KUBECONFIG?.trim();
  const inCluster =
    bool(env, 'CP_K8S_IN_CLUSTER') ?? (!!env.KUBERNETES_SERVICE_HOST && existsSync(SERVICE_ACCOUNT_TOKEN));
  if (!explicitPath && !defaultPath && !inCluster && bool(env, 'CP_K8S_ENABLED') !== true) return undefined;

  if (env.CP_K8S_NAMESPACE !== undefined && env.CP_K8S_NAMESPACE.trim() === '') {
    throw ConfigError.of('CP_K8S_NAMESPACE', 'must not be empty');
  }
  if (explicitPath && !existsSync(explicitPath)) {
    throw ConfigError.of('CP_K8S_KUBECONFIG', `no file at ${explicitPath}`);
  }
  const helmBin = env.CP_K8S_HELM_BIN?.trim();
  const options: KubernetesProviderOptions = {
    namespace: env.CP_K8S_NAMESPACE?.trim() || 'default',
    namespacePerTenant: bool(env, 'CP_K8S_NAMESPACE_PER_TENANT') ?? false,
    namespacePrefix: env.CP_K8S_NAMESPACE_PREFIX?.trim() || 'ctrlplane',
    labels: labels(env, 'CP_K8S_LABELS'),
    imagePullSecrets: list(env.CP_K8S_IMAGE_PULL_SECRETS),
    argoNamespace: env.CP_K8S_ARGO_NAMESPACE?.trim() || 'argocd',
    argoProject: env.CP_K8S_ARGO_PROJECT?.trim() || 'default',
    argoDestServer: env.CP_K8S_ARGO_DEST_SERVER?.trim() || 'https://kubernetes.default.svc',
    region: env.CP_K8S_REGION?.trim() || 'local',
    helm: helmBin === 'false' ? false : helmBin || (existsSync(BUILT_HELM) ? BUILT_HELM : 'helm'),
  };
  const context = env.CP_K8S_CONTEXT?.trim();
  if (explicitPath) {
    options.kubeconfigPath = explicitPath;
    if (context) options.context = context;
  } else if (defaultPath) {
    // One file is loaded as such; a `:`-separated list goes through client-node's loadFromDefault, which merges
    // the files of process.env.KUBECONFIG.
    if (!defaultPath.includes(':')) options.kubeconfigPath = defaultPath;
    if (context) options.context = context;
  } else {
    options.inCluster = true;
  }
  return options;
}

/** A KubernetesProvider when the environment configures one (see kubernetesOptionsFromEnv), else undefined. */
export function kubernetesProviderFromEnv(
  env: NodeJS.ProcessEnv = process.env,
  logger?: KubernetesProviderLogger,
): KubernetesProvider | undefined {
  const options = kubernetesOptionsFromEnv(env);
  if (!options) return undefined;
  return new KubernetesProvider({ ...options, ...(logger ? { logger } : {}) });
}
