import type { JsonObject } from './merge.ts';

/**
 * The resource table of the fake Kubernetes API (see server.ts): which group/version/kind lives at which plural path,
 * whether it is namespaced, and which subresources it has. Discovery documents are generated from it.
 */

export interface ResourceDef {
  group: string;
  version: string;
  kind: string;
  plural: string;
  singular: string;
  namespaced: boolean;
  /** `status` keeps status out of main-resource writes; `scale` serves …/scale; `log` serves pods/…/log. */
  subresources: Array<'status' | 'scale' | 'log'>;
  shortNames?: string[];
}

function def(
  apiVersion: string,
  kind: string,
  plural: string,
  namespaced: boolean,
  subresources: ResourceDef['subresources'] = [],
  shortNames?: string[],
): ResourceDef {
  const [a, b] = apiVersion.split('/');
  const group = b === undefined ? '' : (a ?? '');
  const version = b ?? a ?? '';
  return { group, version, kind, plural, singular: kind.toLowerCase(), namespaced, subresources, shortNames };
}

export const BUILTIN_RESOURCES: ResourceDef[] = [
  def('v1', 'Namespace', 'namespaces', false, ['status'], ['ns']),
  def('v1', 'Pod', 'pods', true, ['status', 'log'], ['po']),
  def('v1', 'Service', 'services', true, ['status'], ['svc']),
  def('v1', 'ConfigMap', 'configmaps', true, [], ['cm']),
  def('v1', 'Secret', 'secrets', true),
  def('v1', 'ServiceAccount', 'serviceaccounts', true, [], ['sa']),
  def('v1', 'PersistentVolumeClaim', 'persistentvolumeclaims', true, ['status'], ['pvc']),
  def('v1', 'PersistentVolume', 'persistentvolumes', false, ['status'], ['pv']),
  def('v1', 'Endpoints', 'endpoints', true, [], ['ep']),
  def('v1', 'Event', 'events', true, [], ['ev']),
  def('apps/v1', 'Deployment', 'deployments', true, ['status', 'scale'], ['deploy']),
  def('apps/v1', 'StatefulSet', 'statefulsets', true, ['status', 'scale'], ['sts']),
  def('apps/v1', 'ReplicaSet', 'replicasets', true, ['status', 'scale'], ['rs']),
  def('apps/v1', 'DaemonSet', 'daemonsets', true, ['status'], ['ds']),
  def('batch/v1', 'Job', 'jobs', true, ['status']),
  def('batch/v1', 'CronJob', 'cronjobs', true, ['status'], ['cj']),
  def('networking.k8s.io/v1', 'Ingress', 'ingresses', true, ['status'], ['ing']),
  def('networking.k8s.io/v1', 'NetworkPolicy', 'networkpolicies', true, [], ['netpol']),
  def('policy/v1', 'PodDisruptionBudget', 'poddisruptionbudgets', true, ['status'], ['pdb']),
  def('autoscaling/v2', 'HorizontalPodAutoscaler', 'horizontalpodautoscalers', true, ['status'], ['hpa']),
  def('rbac.authorization.k8s.io/v1', 'Role', 'roles', true),
  def('rbac.authorization.k8s.io/v1', 'RoleBinding', 'rolebindings', true),
  def('rbac.authorization.k8s.io/v1', 'ClusterRole', 'clusterroles', false),
  def('rbac.authorization.k8s.io/v1', 'ClusterRoleBinding', 'clusterrolebindings', false),
  def(
    'apiextensions.k8s.io/v1',
    'CustomResourceDefinition',
    'customresourcedefinitions',
    false,
    ['status'],
    ['crd'],
  ),
];

/** Argo CD's Application CRD, "installed" unless the fake is told otherwise. */
export const ARGO_APPLICATION = def('argoproj.io/v1alpha1', 'Application', 'applications', true, [], ['app']);

export function apiVersionOf(r: Pick<ResourceDef, 'group' | 'version'>): string {
  return r.group ? `${r.group}/${r.version}` : r.version;
}

/** `deployments.apps`, `configmaps`: how the API server names a resource in messages. */
export function qualifiedName(r: ResourceDef): string {
  return r.group ? `${r.plural}.${r.group}` : r.plural;
}

export class ResourceTable {
  private readonly defs: ResourceDef[] = [];

  constructor(initial: ResourceDef[]) {
    for (const d of initial) this.add(d);
  }

  add(d: ResourceDef): void {
    this.remove(d.group, d.version, d.plural);
    this.defs.push(d);
  }

  remove(group: string, version: string, plural: string): void {
    const i = this.defs.findIndex((d) => d.group === group && d.version === version && d.plural === plural);
    if (i >= 0) this.defs.splice(i, 1);
  }

  byPlural(group: string, version: string, plural: string): ResourceDef | undefined {
    return this.defs.find((d) => d.group === group && d.version === version && d.plural === plural);
  }

  byKind(apiVersion: string, kind: string): ResourceDef | undefined {
    return this.defs.find((d) => apiVersionOf(d) === apiVersion && d.kind === kind);
  }

  groupVersions(): Map<string, string[]> {
    const groups = new Map<string, string[]>();
    for (const d of this.defs) {
      if (!d.group) continue;
      const versions = groups.get(d.group) ?? [];
      if (!versions.includes(d.version)) versions.push(d.version);
      groups.set(d.group, versions);
    }
    return groups;
  }

  hasGroupVersion(group: string, version: string): boolean {
    return this.defs.some((d) => d.group === group && d.version === version);
  }

  /** GET /api/v1 or /apis/{group}/{version}. */
  resourceList(group: string, version: string): JsonObject {
    const resources: JsonObject[] = [];
    for (const d of this.defs.filter((x) => x.group === group && x.version === version)) {
      resources.push({
        name: d.plural,
        singularName: d.singular,
        namespaced: d.namespaced,
        kind: d.kind,
        verbs: ['create', 'delete', 'get', 'list', 'patch', 'update'],
        ...(d.shortNames ? { shortNames: [...d.shortNames] } : {}),
      });
      for (const sub of d.subresources) {
        resources.push({
          name: `${d.plural}/${sub}`,
          singularName: '',
          namespaced: d.namespaced,
          kind: sub === 'scale' ? 'Scale' : sub === 'log' ? 'Pod' : d.kind,
          ...(sub === 'scale' ? { group: 'autoscaling', version: 'v1' } : {}),
          verbs: sub === 'log' ? ['get'] : ['get', 'patch', 'update'],
        });
      }
    }
    return {
      kind: 'APIResourceList',
      apiVersion: 'v1',
      groupVersion: apiVersionOf({ group, version }),
      resources,
    };
  }
}
