import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../../config/config-error.ts';
import {
  DEFAULT_TENANT_LIMITS,
  type KubernetesProviderLogger,
  type KubernetesProviderOptions,
  type PodSecurityLevel,
  type Quantities,
  SERVICE_EXPOSURES,
  type ServiceExposure,
} from './config.ts';
import { KubernetesProvider } from './kubernetes-provider.ts';
import { parseQuantity } from './quantity.ts';

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

/** `k=quantity,…`; unset: the default; set but empty: none. */
function quantities(env: NodeJS.ProcessEnv, key: string, fallback: Quantities): Quantities {
  if (env[key] === undefined) return { ...fallback };
  const parsed = labels(env, key);
  for (const [name, value] of Object.entries(parsed)) {
    if (parseQuantity(value) === undefined) {
      throw ConfigError.of(key, `${name}=${value}: "${value}" is not a Kubernetes quantity`);
    }
  }
  return parsed;
}

function podSecurity(env: NodeJS.ProcessEnv): PodSecurityLevel {
  const raw = env.CTRLPLANE_K8S_POD_SECURITY?.trim() || 'restricted';
  if (raw !== 'restricted' && raw !== 'baseline') {
    throw ConfigError.of('CTRLPLANE_K8S_POD_SECURITY', `expected restricted or baseline, got "${raw}"`);
  }
  return raw;
}

function runAsUser(env: NodeJS.ProcessEnv): number {
  const raw = env.CTRLPLANE_K8S_RUN_AS_USER?.trim();
  if (!raw) return 65532;
  const uid = Number(raw);
  if (!/^\d+$/.test(raw) || uid < 1 || uid > 2147483647) {
    throw ConfigError.of('CTRLPLANE_K8S_RUN_AS_USER', `expected a non-root UID (1–2147483647), got "${raw}"`);
  }
  return uid;
}

function serviceExposure(env: NodeJS.ProcessEnv): ServiceExposure[] {
  const out: ServiceExposure[] = [];
  for (const item of list(env.CTRLPLANE_K8S_SERVICE_EXPOSURE)) {
    const found = SERVICE_EXPOSURES.find((e) => e.toLowerCase() === item.toLowerCase());
    if (!found) {
      throw ConfigError.of(
        'CTRLPLANE_K8S_SERVICE_EXPOSURE',
        `"${item}" is not one of ${SERVICE_EXPOSURES.join(', ')}`,
      );
    }
    out.push(found);
  }
  return out;
}

function helmRepos(env: NodeJS.ProcessEnv): string[] {
  const repos = list(env.CTRLPLANE_K8S_HELM_REPOS);
  for (const repo of repos) {
    if (!/^(https?|oci):\/\/[^/]+/.test(repo) && !repo.startsWith('/')) {
      throw ConfigError.of(
        'CTRLPLANE_K8S_HELM_REPOS',
        `"${repo}" is neither an http(s):// or oci:// URL nor an absolute directory`,
      );
    }
  }
  return repos;
}

/**
 * The provider options from the environment, or undefined when Kubernetes is not configured. It is configured by
 * CP_K8S_KUBECONFIG (a kubeconfig file), else KUBECONFIG (client-node's default loading rules), else
 * CP_K8S_IN_CLUSTER=true, else automatically in a pod (KUBERNETES_SERVICE_HOST and a service-account token).
 * CP_K8S_ENABLED=false turns it off whatever else is set.
 *
 * Also read: CP_K8S_CONTEXT, CP_K8S_NAMESPACE_PER_TENANT (bool, default true; false is the unsafe shared
 * namespace), CP_K8S_NAMESPACE (the shared namespace, default `default`: only with CP_K8S_NAMESPACE_PER_TENANT=false),
 * CP_K8S_NAMESPACE_PREFIX (default `ctrlplane`), CP_K8S_LABELS (`k=v,k2=v2`), CP_K8S_IMAGE_PULL_SECRETS
 * (comma-separated), CP_K8S_ARGO_NAMESPACE (default `argocd`), CP_K8S_ARGO_DEST_SERVER (default
 * `https://kubernetes.default.svc`), CP_K8S_REGION (default `local`), CP_K8S_HELM_BIN (default: .tools/bin/helm when
 * setup built it, else `helm` on PATH; `false` disables the helm source), and the tenant isolation settings
 * CTRLPLANE_K8S_SYSTEM_NAMESPACE, CTRLPLANE_K8S_POD_SECURITY, CTRLPLANE_K8S_RUN_AS_USER, CTRLPLANE_K8S_QUOTA,
 * CTRLPLANE_K8S_CONTAINER_DEFAULT_LIMITS, CTRLPLANE_K8S_CONTAINER_DEFAULT_REQUESTS, CTRLPLANE_K8S_SERVICE_EXPOSURE,
 * CTRLPLANE_K8S_TENANT_API_GROUPS, CTRLPLANE_K8S_HELM_REPOS and CTRLPLANE_K8S_ARGO_REPOS (README, configuration).
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
  const namespacePerTenant = bool(env, 'CP_K8S_NAMESPACE_PER_TENANT') ?? true;
  if (namespacePerTenant && env.CP_K8S_NAMESPACE !== undefined) {
    throw ConfigError.of(
      'CP_K8S_NAMESPACE',
      'names the namespace shared by all tenants, which needs CP_K8S_NAMESPACE_PER_TENANT=false (unsafe for untrusted tenants)',
    );
  }
  if (env.CP_K8S_ARGO_PROJECT !== undefined) {
    throw ConfigError.of(
      'CP_K8S_ARGO_PROJECT',
      'is no longer read: each tenant gets an AppProject of its own (set CTRLPLANE_K8S_ARGO_REPOS to enable Argo CD)',
    );
  }
  if (explicitPath && !existsSync(explicitPath)) {
    throw ConfigError.of('CP_K8S_KUBECONFIG', `no file at ${explicitPath}`);
  }
  const helmBin = env.CP_K8S_HELM_BIN?.trim();
  const options: KubernetesProviderOptions = {
    namespacePerTenant,
    namespacePrefix: env.CP_K8S_NAMESPACE_PREFIX?.trim() || 'ctrlplane',
    systemNamespace: env.CTRLPLANE_K8S_SYSTEM_NAMESPACE?.trim() || 'ctrlplane-system',
    podSecurity: podSecurity(env),
    runAsUser: runAsUser(env),
    tenantLimits: {
      quota: quantities(env, 'CTRLPLANE_K8S_QUOTA', DEFAULT_TENANT_LIMITS.quota),
      containerDefaultLimits: quantities(
        env,
        'CTRLPLANE_K8S_CONTAINER_DEFAULT_LIMITS',
        DEFAULT_TENANT_LIMITS.containerDefaultLimits,
      ),
      containerDefaultRequests: quantities(
        env,
        'CTRLPLANE_K8S_CONTAINER_DEFAULT_REQUESTS',
        DEFAULT_TENANT_LIMITS.containerDefaultRequests,
      ),
    },
    serviceExposure: serviceExposure(env),
    tenantApiGroups: list(env.CTRLPLANE_K8S_TENANT_API_GROUPS),
    labels: labels(env, 'CP_K8S_LABELS'),
    imagePullSecrets: list(env.CP_K8S_IMAGE_PULL_SECRETS),
    argoRepos: list(env.CTRLPLANE_K8S_ARGO_REPOS),
    argoNamespace: env.CP_K8S_ARGO_NAMESPACE?.trim() || 'argocd',
    argoDestServer: env.CP_K8S_ARGO_DEST_SERVER?.trim() || 'https://kubernetes.default.svc',
    region: env.CP_K8S_REGION?.trim() || 'local',
    helm: helmBin === 'false' ? false : helmBin || (existsSync(BUILT_HELM) ? BUILT_HELM : 'helm'),
    helmRepos: helmRepos(env),
  };
  if (!namespacePerTenant) options.namespace = env.CP_K8S_NAMESPACE?.trim() || 'default';
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
