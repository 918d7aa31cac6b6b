import type { KubernetesObject } from '@kubernetes/client-node';
import type { InstanceState } from '../../domain/instance-state.ts';
import { type ArgoApplicationSpec, type InstanceStatus, PermanentProviderError } from '../provider.ts';
import { resourceName } from './names.ts';

export const ARGO_API_VERSION = 'argoproj.io/v1alpha1';
/** Argo CD deletes the application's resources before it lets the Application go. */
export const ARGO_RESOURCES_FINALIZER = 'resources-finalizer.argocd.argoproj.io';

export interface ArgoApplication extends KubernetesObject {
  spec?: Record<string, unknown>;
  status?: { health?: { status?: string; message?: string }; sync?: { status?: string } };
}

/** Refused unless the operator lists the repositories tenants' Applications may come from. */
export function argoDisabled(): PermanentProviderError {
  return new PermanentProviderError(
    'the argocd source is disabled: Argo CD deploys with its own cluster-wide rights, and only a per-tenant ' +
      'AppProject (limited to the tenant namespace, no cluster-scoped kinds, allowed repositories only) bounds them; ' +
      'the operator enables it by listing the allowed repositories in CTRLPLANE_K8S_ARGO_REPOS',
    'unsupported_source',
  );
}

function trimSlashes(value: string): string {
  return value.replace(/\/+$/, '');
}

/** A repo_url the operator does not allow is refused (invalid_spec), naming it. */
export function checkArgoRepo(repoUrl: string, allowed: readonly string[]): void {
  const repo = trimSlashes(repoUrl.trim());
  if (allowed.map(trimSlashes).some((a) => repo === a || repo.startsWith(`${a}/`))) return;
  throw new PermanentProviderError(
    `the argocd repo_url ${JSON.stringify(repoUrl)} is not one the operator allows (CTRLPLANE_K8S_ARGO_REPOS)`,
    'invalid_spec',
  );
}

/**
 * The tenant's AppProject: its Applications deploy only into the tenant namespace of the one destination cluster,
 * from the allowed repositories, with no cluster-scoped kind (an empty clusterResourceWhitelist allows none) and
 * never the namespace's quota, limits or RBAC.
 */
export function argoProject(input: {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  repos: readonly string[];
  destinationServer: string;
  destinationNamespace: string;
}): KubernetesObject {
  return {
    apiVersion: ARGO_API_VERSION,
    kind: 'AppProject',
    metadata: { name: input.name, namespace: input.namespace, labels: input.labels },
    spec: {
      description: `ctrlplane tenant ${input.labels['ctrlplane.io/tenant-id'] ?? ''}`.trim(),
      sourceRepos: [...input.repos],
      destinations: [{ server: input.destinationServer, namespace: input.destinationNamespace }],
      clusterResourceWhitelist: [],
      namespaceResourceBlacklist: [
        { group: '', kind: 'ResourceQuota' },
        { group: '', kind: 'LimitRange' },
        { group: 'rbac.authorization.k8s.io', kind: 'Role' },
        { group: 'rbac.authorization.k8s.io', kind: 'RoleBinding' },
      ],
    },
  } as KubernetesObject;
}

/**
 * The Argo CD Application object of the Argo engine, labelled like everything else. Its project and
 * destination server come from the provider configuration and its destination namespace is the instance's: the
 * source may repeat them, and a different value is refused (invalid_spec), since Argo CD deploys with its own
 * permissions, bounded only by the project.
 */
export function argoApplication(input: {
  instanceId: string;
  namespace: string;
  labels: Record<string, string>;
  app: ArgoApplicationSpec;
  project: string;
  destinationServer: string;
  destinationNamespace: string;
}): ArgoApplication {
  const { app } = input;
  if (!app?.repo_url?.trim()) throw new PermanentProviderError('an argocd source needs a repo_url');
  const fixed: Array<[field: string, asked: string | undefined, value: string]> = [
    ['project', app.project, input.project],
    ['dest_server', app.dest_server, input.destinationServer],
    ['dest_namespace', app.dest_namespace, input.destinationNamespace],
  ];
  for (const [field, asked, value] of fixed) {
    if (asked && asked !== value) {
      throw new PermanentProviderError(
        `an argocd source's ${field} is ${JSON.stringify(value)} (set by the provider), not ${JSON.stringify(asked)}`,
        'invalid_spec',
      );
    }
  }
  const source: Record<string, unknown> = { repoURL: app.repo_url };
  if (app.path) source.path = app.path;
  if (app.target_revision) source.targetRevision = app.target_revision;
  if (app.helm) {
    const helm: Record<string, unknown> = {};
    if (app.helm.value_files?.length) helm.valueFiles = [...app.helm.value_files];
    const parameters = Object.entries(app.helm.parameters ?? {}).map(([name, value]) => ({ name, value }));
    if (parameters.length > 0) helm.parameters = parameters;
    if (Object.keys(helm).length > 0) source.helm = helm;
  }
  const spec: Record<string, unknown> = {
    project: input.project,
    source,
    destination: { server: input.destinationServer, namespace: input.destinationNamespace },
  };
  if (app.sync_policy?.automated) {
    spec.syncPolicy = {
      automated: { selfHeal: !!app.sync_policy.self_heal, prune: !!app.sync_policy.prune },
    };
  }
  return {
    apiVersion: ARGO_API_VERSION,
    kind: 'Application',
    metadata: {
      name: resourceName(input.instanceId),
      namespace: input.namespace,
      labels: input.labels,
      finalizers: [ARGO_RESOURCES_FINALIZER],
    },
    spec,
  };
}

/** Health and sync of an Application → instance state. */
export function argoState(app: ArgoApplication): { state: InstanceState; ready: boolean; message: string } {
  const health = app.status?.health?.status ?? '';
  const sync = app.status?.sync?.status ?? '';
  const message = `sync=${sync || 'Unknown'} health=${health || 'Unknown'}`;
  if (app.metadata?.deletionTimestamp) return { state: 'destroying', ready: false, message };
  switch (health) {
    case 'Healthy':
      return sync === 'Synced'
        ? { state: 'running', ready: true, message }
        : { state: 'starting', ready: false, message };
    case 'Progressing':
      return { state: 'starting', ready: false, message };
    case 'Degraded':
      return { state: 'failed', ready: false, message };
    case 'Suspended':
      return { state: 'stopped', ready: false, message };
    default:
      return { state: 'provisioning', ready: false, message };
  }
}

export function argoStatusOf(app: ArgoApplication): InstanceStatus {
  const { state, ready, message } = argoState(app);
  return { state, ready, restarts: 0, endpoints: [], message };
}
