import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import {
  DEFAULT_TENANT_LIMITS,
  type KubernetesProviderOptions,
  type Quantities,
  SERVICE_EXPOSURES,
  type ServiceExposure,
} from '../providers/kubernetes/config.ts';
import { parseQuantity } from '../providers/kubernetes/quantity.ts';
import { ConfigError } from './config-error.ts';
import {
  booleanVariable,
  listVariable,
  optionalTextVariable,
  setting,
  splitList,
  textVariable,
} from './setting.ts';

const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';
/** The helm scripts/k8s-test-cluster.sh builds (pinned) into the repository's .tools/bin. */
const BUILT_HELM = fileURLToPath(new URL('../.tools/bin/helm', import.meta.url));

/** `k=v,k2=v2` into its pairs; a pair without `=` is an issue. */
function pairs(raw: string, ctx: z.RefinementCtx): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of splitList(raw)) {
    const eq = pair.indexOf('=');
    if (eq <= 0) {
      ctx.addIssue({ code: 'custom', message: `"${pair}" is not key=value` });
      return out;
    }
    out[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
  }
  return out;
}

function labelsVariable() {
  return z
    .string()
    .optional()
    .transform((raw, ctx) => pairs(raw ?? '', ctx));
}

/** `k=quantity,…`; unset: the default; set but empty: none. */
function quantitiesVariable(fallback: Quantities) {
  return z
    .string()
    .optional()
    .transform((raw, ctx): Quantities => {
      if (raw === undefined) return { ...fallback };
      const parsed = pairs(raw, ctx);
      for (const [name, value] of Object.entries(parsed)) {
        if (parseQuantity(value) === undefined) {
          ctx.addIssue({
            code: 'custom',
            message: `${name}=${value}: "${value}" is not a Kubernetes quantity`,
          });
          return z.NEVER;
        }
      }
      return parsed;
    });
}

const quantitiesText = (q: Quantities) =>
  `\`${Object.entries(q)
    .map(([k, v]) => `${k}=${v}`)
    .join(',')}\``;

/** The Kubernetes provider's variables, all `CTRLPLANE_K8S_*` (and the cluster's own KUBECONFIG, in-pod env). */
export const kubernetesFields = {
  CTRLPLANE_K8S_ENABLED: setting(
    booleanVariable(),
    '`false` turns the `kubernetes` provider off whatever else is set; `true` registers it even without a kubeconfig (in-cluster)',
    'registered when a cluster is configured',
  ),
  CTRLPLANE_K8S_KUBECONFIG: setting(
    optionalTextVariable(),
    "the kubeconfig file of the cluster; the `kubernetes` provider is registered when this, `KUBECONFIG` or a pod service account is there; services' env goes into Secrets; see [Kubernetes: tenant isolation](#kubernetes-tenant-isolation)",
  ),
  KUBECONFIG: setting(
    optionalTextVariable(),
    'used when `CTRLPLANE_K8S_KUBECONFIG` is not set (one file, or a `:`-separated list merged by the client)',
  ),
  CTRLPLANE_K8S_IN_CLUSTER: setting(
    booleanVariable(),
    "`true`: use the pod's service account; unset: so when the process runs in a pod (`KUBERNETES_SERVICE_HOST` and a service-account token)",
  ),
  KUBERNETES_SERVICE_HOST: setting(
    optionalTextVariable(),
    'set by Kubernetes in every pod; with a service-account token it means in-cluster',
  ),
  CTRLPLANE_K8S_CONTEXT: setting(
    optionalTextVariable(),
    'a context of the kubeconfig (default: its current context)',
  ),
  CTRLPLANE_K8S_NAMESPACE_PER_TENANT: setting(
    booleanVariable(),
    'a namespace `<prefix>-<tenant>-<hash>` per tenant; `false` puts every tenant into `CTRLPLANE_K8S_NAMESPACE`, which is **not safe for untrusted tenants**',
    '`true`',
  ),
  CTRLPLANE_K8S_NAMESPACE: setting(
    z.string().optional(),
    'the namespace shared by all tenants, only with `CTRLPLANE_K8S_NAMESPACE_PER_TENANT=false` (refused at start without it)',
    '`default`',
  ),
  CTRLPLANE_K8S_NAMESPACE_PREFIX: setting(textVariable('ctrlplane'), 'prefix of the tenant namespaces'),
  CTRLPLANE_K8S_SYSTEM_NAMESPACE: setting(
    textVariable('ctrlplane-system'),
    'where the per-tenant ServiceAccounts live that tenant objects are applied as (impersonated)',
  ),
  CTRLPLANE_K8S_POD_SECURITY: setting(
    z
      .string()
      .optional()
      .transform((raw, ctx) => {
        const level = raw?.trim() || 'restricted';
        if (level !== 'restricted' && level !== 'baseline') {
          ctx.addIssue({ code: 'custom', message: `expected restricted or baseline, got "${level}"` });
          return z.NEVER;
        }
        return level;
      }),
    'Pod Security Admission `enforce` level of tenant namespaces: `restricted` or `baseline`',
  ),
  CTRLPLANE_K8S_RUN_AS_USER: setting(
    z
      .string()
      .optional()
      .transform((raw, ctx) => {
        const text = raw?.trim();
        if (!text) return 65532;
        const uid = Number(text);
        if (!/^\d+$/.test(text) || uid < 1 || uid > 2147483647) {
          ctx.addIssue({ code: 'custom', message: `expected a non-root UID (1–2147483647), got "${text}"` });
          return z.NEVER;
        }
        return uid;
      }),
    'the non-root UID (and GID, fsGroup) of generated pods, and of tenant pods that set none',
  ),
  CTRLPLANE_K8S_QUOTA: setting(
    quantitiesVariable(DEFAULT_TENANT_LIMITS.quota),
    "`spec.hard` of each tenant namespace's ResourceQuota (`k=quantity,…`; set but empty: none)",
    quantitiesText(DEFAULT_TENANT_LIMITS.quota),
  ),
  CTRLPLANE_K8S_CONTAINER_DEFAULT_LIMITS: setting(
    quantitiesVariable(DEFAULT_TENANT_LIMITS.containerDefaultLimits),
    "limits in the tenant namespace's LimitRange: what a container that asks for nothing gets",
    quantitiesText(DEFAULT_TENANT_LIMITS.containerDefaultLimits),
  ),
  CTRLPLANE_K8S_CONTAINER_DEFAULT_REQUESTS: setting(
    quantitiesVariable(DEFAULT_TENANT_LIMITS.containerDefaultRequests),
    "requests in the tenant namespace's LimitRange: what a container that asks for nothing gets",
    quantitiesText(DEFAULT_TENANT_LIMITS.containerDefaultRequests),
  ),
  CTRLPLANE_K8S_SERVICE_EXPOSURE: setting(
    z
      .string()
      .optional()
      .transform((raw, ctx) => {
        const out: ServiceExposure[] = [];
        for (const item of splitList(raw)) {
          const found = SERVICE_EXPOSURES.find((e) => e.toLowerCase() === item.toLowerCase());
          if (!found) {
            ctx.addIssue({
              code: 'custom',
              message: `"${item}" is not one of ${SERVICE_EXPOSURES.join(', ')}`,
            });
            return z.NEVER;
          }
          out.push(found);
        }
        return out;
      }),
    "which of `NodePort`, `LoadBalancer`, `ExternalIPs` tenants' Services may use (comma-separated; all refused by default)",
  ),
  CTRLPLANE_K8S_TENANT_API_GROUPS: setting(
    listVariable(),
    'API groups of custom resources tenants may write in their namespace (the tenant Role grants them)',
  ),
  CTRLPLANE_K8S_LABELS: setting(labelsVariable(), 'labels on every object (`k=v,k2=v2`)'),
  CTRLPLANE_K8S_IMAGE_PULL_SECRETS: setting(
    listVariable(),
    'names of `dockerconfigjson` Secrets every pod gets as imagePullSecrets (comma-separated)',
  ),
  CTRLPLANE_K8S_HELM_BIN: setting(
    optionalTextVariable(),
    'the helm CLI, a command on PATH or a path; `false` disables the helm source',
    '`.tools/bin/helm` when setup built it, else `helm` on PATH',
  ),
  CTRLPLANE_K8S_HELM_REPOS: setting(
    z
      .string()
      .optional()
      .transform((raw, ctx) => {
        const repos = splitList(raw);
        for (const repo of repos) {
          if (!/^(https?|oci):\/\/[^/]+/.test(repo) && !repo.startsWith('/')) {
            ctx.addIssue({
              code: 'custom',
              message: `"${repo}" is neither an http(s):// or oci:// URL nor an absolute directory`,
            });
            return z.NEVER;
          }
        }
        return repos;
      }),
    'chart repositories (`https://…`, `oci://…` prefixes) and local chart directories (absolute paths) helm sources may name; anything else is refused',
  ),
  CTRLPLANE_K8S_ARGO_REPOS: setting(
    listVariable(),
    'repositories Argo CD Applications may come from; empty: the `argocd` source is refused (`unsupported_source`)',
  ),
  CTRLPLANE_K8S_ARGO_NAMESPACE: setting(
    textVariable('argocd'),
    "where Argo CD Applications and the tenants' AppProjects go",
  ),
  CTRLPLANE_K8S_ARGO_DEST_SERVER: setting(
    textVariable('https://kubernetes.default.svc'),
    'the destination cluster of every Argo CD Application',
  ),
  CTRLPLANE_K8S_REGION: setting(textVariable('local'), "the `kubernetes` provider's region"),
};

type KubernetesFields = z.output<z.ZodObject<typeof kubernetesFields>>;

/**
 * The Kubernetes provider's options, or undefined when no cluster is configured: CTRLPLANE_K8S_KUBECONFIG (a
 * kubeconfig file), else KUBECONFIG (client-node's default loading rules), else CTRLPLANE_K8S_IN_CLUSTER=true,
 * else automatically in a pod (KUBERNETES_SERVICE_HOST and a service-account token). CTRLPLANE_K8S_ENABLED=false
 * turns it off whatever else is set. Throws a ConfigError for settings that contradict each other.
 */
export function kubernetesOptions(env: KubernetesFields): KubernetesProviderOptions | undefined {
  if (env.CTRLPLANE_K8S_ENABLED === false) return undefined;
  const explicitPath = env.CTRLPLANE_K8S_KUBECONFIG;
  const defaultPath = env.KUBECONFIG;
  const inCluster =
    env.CTRLPLANE_K8S_IN_CLUSTER ?? (!!env.KUBERNETES_SERVICE_HOST && existsSync(SERVICE_ACCOUNT_TOKEN));
  if (!explicitPath && !defaultPath && !inCluster && env.CTRLPLANE_K8S_ENABLED !== true) return undefined;

  if (env.CTRLPLANE_K8S_NAMESPACE !== undefined && env.CTRLPLANE_K8S_NAMESPACE.trim() === '') {
    throw ConfigError.of('CTRLPLANE_K8S_NAMESPACE', 'must not be empty');
  }
  const namespacePerTenant = env.CTRLPLANE_K8S_NAMESPACE_PER_TENANT ?? true;
  if (namespacePerTenant && env.CTRLPLANE_K8S_NAMESPACE !== undefined) {
    throw ConfigError.of(
      'CTRLPLANE_K8S_NAMESPACE',
      'names the namespace shared by all tenants, which needs CTRLPLANE_K8S_NAMESPACE_PER_TENANT=false (unsafe for untrusted tenants)',
    );
  }
  if (explicitPath && !existsSync(explicitPath)) {
    throw ConfigError.of('CTRLPLANE_K8S_KUBECONFIG', `no file at ${explicitPath}`);
  }
  const helmBin = env.CTRLPLANE_K8S_HELM_BIN;
  const options: KubernetesProviderOptions = {
    namespacePerTenant,
    namespacePrefix: env.CTRLPLANE_K8S_NAMESPACE_PREFIX,
    systemNamespace: env.CTRLPLANE_K8S_SYSTEM_NAMESPACE,
    podSecurity: env.CTRLPLANE_K8S_POD_SECURITY,
    runAsUser: env.CTRLPLANE_K8S_RUN_AS_USER,
    tenantLimits: {
      quota: env.CTRLPLANE_K8S_QUOTA,
      containerDefaultLimits: env.CTRLPLANE_K8S_CONTAINER_DEFAULT_LIMITS,
      containerDefaultRequests: env.CTRLPLANE_K8S_CONTAINER_DEFAULT_REQUESTS,
    },
    serviceExposure: env.CTRLPLANE_K8S_SERVICE_EXPOSURE,
    tenantApiGroups: env.CTRLPLANE_K8S_TENANT_API_GROUPS,
    labels: env.CTRLPLANE_K8S_LABELS,
    imagePullSecrets: env.CTRLPLANE_K8S_IMAGE_PULL_SECRETS,
    argoRepos: env.CTRLPLANE_K8S_ARGO_REPOS,
    argoNamespace: env.CTRLPLANE_K8S_ARGO_NAMESPACE,
    argoDestServer: env.CTRLPLANE_K8S_ARGO_DEST_SERVER,
    region: env.CTRLPLANE_K8S_REGION,
    helm: helmBin === 'false' ? false : helmBin || (existsSync(BUILT_HELM) ? BUILT_HELM : 'helm'),
    helmRepos: env.CTRLPLANE_K8S_HELM_REPOS,
  };
  if (!namespacePerTenant) options.namespace = env.CTRLPLANE_K8S_NAMESPACE?.trim() || 'default';
  const context = env.CTRLPLANE_K8S_CONTEXT;
  if (explicitPath) {
    options.kubeconfigPath = explicitPath;
    if (context) options.context = context;
  } else if (defaultPath) {
    // One file is loaded as such; a `:`-separated list goes through client-node's loadFromDefault, which merges
    // the files of the KUBECONFIG variable.
    if (!defaultPath.includes(':')) options.kubeconfigPath = defaultPath;
    if (context) options.context = context;
  } else {
    options.inCluster = true;
  }
  return options;
}
