import type { KubernetesObject } from '@kubernetes/client-node';
import { PermanentProviderError } from '../provider.ts';
import type { ServiceExposure } from './config.ts';
import { documentNumber } from './manifests.ts';

/**
 * What a tenant's pods and Services may ask for, checked on every pod template of a manifests (or rendered helm)
 * source before anything is written. The tenant namespace's Pod Security level and the tenant Role are the
 * boundary; this is the second wall, and it names the document, the path and the rule where the API server would
 * only say "forbidden".
 */

/** The rule a refusal names. */
export type PodRule =
  | 'host-path'
  | 'host-namespaces'
  | 'host-ports'
  | 'privileged'
  | 'added-capabilities'
  | 'privilege-escalation'
  | 'service-account'
  | 'service-exposure'
  | 'foreign-reference';

/** The only ServiceAccount a tenant pod may run as: its namespace's `default`, which holds no rights. */
export const TENANT_POD_SERVICE_ACCOUNT = 'default';

type Json = Record<string, unknown>;

function isRecord(value: unknown): value is Json {
  return !!value && typeof value === 'object' && !Array.isArray(value);
}

function records(value: unknown): Json[] {
  return Array.isArray(value) ? value.filter(isRecord) : [];
}

/** `Kind name (document N)`: the object and where it is in the source. */
export function describeObject(obj: KubernetesObject): string {
  const what = `${obj.kind} ${obj.metadata?.name ?? ''}`.trim();
  const n = documentNumber(obj);
  return n ? `${what} (document ${n})` : what;
}

export function refusePod(obj: KubernetesObject, path: string, rule: PodRule, why: string): never {
  throw new PermanentProviderError(`${describeObject(obj)}: ${path}: ${why} (rule ${rule})`, 'invalid_spec');
}

/** A pod spec inside an object, with its path from the object's root. */
export interface PodSpecAt {
  path: string;
  spec: Json;
}

/**
 * Every pod spec of an object: a Pod's `spec`, a PodTemplate's `template.spec`, `spec.template.spec` of anything
 * shaped like a workload (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, ReplicationController, custom
 * workloads alike) and a CronJob's `spec.jobTemplate.spec.template.spec`.
 */
export function podSpecs(obj: KubernetesObject): PodSpecAt[] {
  const root = obj as unknown as Json;
  const found: PodSpecAt[] = [];
  const core = obj.apiVersion === 'v1';
  if (core && obj.kind === 'Pod' && isRecord(root.spec)) found.push({ path: 'spec', spec: root.spec });
  if (core && obj.kind === 'PodTemplate' && isRecord(root.template) && isRecord(root.template.spec)) {
    found.push({ path: 'template.spec', spec: root.template.spec });
  }
  const spec = root.spec;
  if (!isRecord(spec)) return found;
  if (isRecord(spec.template) && isRecord(spec.template.spec)) {
    found.push({ path: 'spec.template.spec', spec: spec.template.spec });
  }
  const job = isRecord(spec.jobTemplate) ? spec.jobTemplate.spec : undefined;
  if (isRecord(job) && isRecord(job.template) && isRecord(job.template.spec)) {
    found.push({ path: 'spec.jobTemplate.spec.template.spec', spec: job.template.spec });
  }
  return found;
}

const CONTAINER_LISTS = ['initContainers', 'containers', 'ephemeralContainers'] as const;

function containersOf(spec: Json): Array<{ path: string; container: Json }> {
  return CONTAINER_LISTS.flatMap((list) =>
    records(spec[list]).map((container, i) => ({ path: `${list}[${i}]`, container })),
  );
}

/** The host-, privilege- and identity-level rules of one pod spec. */
export function checkPodSpec(obj: KubernetesObject, at: PodSpecAt): void {
  const { spec, path } = at;
  for (const field of ['hostPID', 'hostIPC', 'hostNetwork'] as const) {
    if (spec[field] === true) {
      refusePod(
        obj,
        `${path}.${field}`,
        'host-namespaces',
        "the node's namespaces are not shared with tenant pods",
      );
    }
  }
  records(spec.volumes).forEach((volume, i) => {
    if (volume.hostPath !== undefined) {
      refusePod(obj, `${path}.volumes[${i}].hostPath`, 'host-path', 'hostPath volumes are refused');
    }
  });
  for (const field of ['serviceAccountName', 'serviceAccount'] as const) {
    const name = spec[field];
    if (name !== undefined && name !== '' && name !== TENANT_POD_SERVICE_ACCOUNT) {
      refusePod(
        obj,
        `${path}.${field}`,
        'service-account',
        `a tenant pod runs as the ServiceAccount "${TENANT_POD_SERVICE_ACCOUNT}" of its namespace, not ${JSON.stringify(name)}`,
      );
    }
  }
  for (const { path: cpath, container } of containersOf(spec)) {
    const at = `${path}.${cpath}`;
    const security = isRecord(container.securityContext) ? container.securityContext : {};
    if (security.privileged === true) {
      refusePod(obj, `${at}.securityContext.privileged`, 'privileged', 'privileged containers are refused');
    }
    if (security.allowPrivilegeEscalation === true) {
      refusePod(
        obj,
        `${at}.securityContext.allowPrivilegeEscalation`,
        'privilege-escalation',
        'privilege escalation is refused',
      );
    }
    const capabilities = isRecord(security.capabilities) ? security.capabilities : {};
    if (Array.isArray(capabilities.add) && capabilities.add.length > 0) {
      refusePod(
        obj,
        `${at}.securityContext.capabilities.add`,
        'added-capabilities',
        `capabilities cannot be added (${capabilities.add.map(String).join(', ')})`,
      );
    }
    records(container.ports).forEach((port, i) => {
      if (port.hostPort !== undefined && port.hostPort !== 0) {
        refusePod(
          obj,
          `${at}.ports[${i}].hostPort`,
          'host-ports',
          'ports of the node are not given to tenant pods',
        );
      }
    });
  }
}

/** A Service of type NodePort or LoadBalancer, or with externalIPs, unless the operator allows that exposure. */
export function checkServiceExposure(obj: KubernetesObject, allowed: readonly ServiceExposure[]): void {
  if (obj.apiVersion !== 'v1' || obj.kind !== 'Service') return;
  const spec = (obj as unknown as Json).spec;
  if (!isRecord(spec)) return;
  const type = spec.type;
  if ((type === 'NodePort' || type === 'LoadBalancer') && !allowed.includes(type)) {
    refusePod(
      obj,
      'spec.type',
      'service-exposure',
      `Services of type ${type} are not allowed by the operator (CTRLPLANE_K8S_SERVICE_EXPOSURE)`,
    );
  }
  if (Array.isArray(spec.externalIPs) && spec.externalIPs.length > 0 && !allowed.includes('ExternalIPs')) {
    refusePod(
      obj,
      'spec.externalIPs',
      'service-exposure',
      'externalIPs are not allowed by the operator (CTRLPLANE_K8S_SERVICE_EXPOSURE)',
    );
  }
}

export type ReferencedKind = 'Secret' | 'ConfigMap' | 'PersistentVolumeClaim';

/** An object of the namespace a pod spec names. */
export interface PodReference {
  kind: ReferencedKind;
  name: string;
  path: string;
}

/**
 * The Secrets, ConfigMaps and claims a pod spec reads: envFrom, env valueFrom, secret/configMap/PVC volumes,
 * projected sources and imagePullSecrets.
 */
export function podReferences(at: PodSpecAt): PodReference[] {
  const { spec, path } = at;
  const refs: PodReference[] = [];
  const add = (kind: ReferencedKind, name: unknown, where: string) => {
    if (typeof name === 'string' && name) refs.push({ kind, name, path: where });
  };
  for (const { path: cpath, container } of containersOf(spec)) {
    const at = `${path}.${cpath}`;
    records(container.envFrom).forEach((from, i) => {
      if (isRecord(from.secretRef)) add('Secret', from.secretRef.name, `${at}.envFrom[${i}].secretRef`);
      if (isRecord(from.configMapRef))
        add('ConfigMap', from.configMapRef.name, `${at}.envFrom[${i}].configMapRef`);
    });
    records(container.env).forEach((env, i) => {
      const from = isRecord(env.valueFrom) ? env.valueFrom : {};
      if (isRecord(from.secretKeyRef))
        add('Secret', from.secretKeyRef.name, `${at}.env[${i}].valueFrom.secretKeyRef`);
      if (isRecord(from.configMapKeyRef))
        add('ConfigMap', from.configMapKeyRef.name, `${at}.env[${i}].valueFrom.configMapKeyRef`);
    });
  }
  records(spec.volumes).forEach((volume, i) => {
    const at = `${path}.volumes[${i}]`;
    if (isRecord(volume.secret)) add('Secret', volume.secret.secretName, `${at}.secret`);
    if (isRecord(volume.configMap)) add('ConfigMap', volume.configMap.name, `${at}.configMap`);
    if (isRecord(volume.persistentVolumeClaim)) {
      add('PersistentVolumeClaim', volume.persistentVolumeClaim.claimName, `${at}.persistentVolumeClaim`);
    }
    const projected = isRecord(volume.projected) ? volume.projected : {};
    records(projected.sources).forEach((source, j) => {
      if (isRecord(source.secret)) add('Secret', source.secret.name, `${at}.projected.sources[${j}].secret`);
      if (isRecord(source.configMap))
        add('ConfigMap', source.configMap.name, `${at}.projected.sources[${j}].configMap`);
    });
  });
  records(spec.imagePullSecrets).forEach((ref, i) => {
    add('Secret', ref.name, `${path}.imagePullSecrets[${i}]`);
  });
  return refs;
}

/**
 * Fills in what the restricted Pod Security level asks for where the tenant's pod spec says nothing (non-root with
 * the configured UID, seccomp RuntimeDefault, every capability dropped, no privilege escalation, no service links,
 * no ServiceAccount token). What the tenant did set is left for the checks above and for Pod Security to judge.
 */
export function hardenPodSpec(spec: Json, runAsUser: number): void {
  if (spec.enableServiceLinks === undefined) spec.enableServiceLinks = false;
  if (spec.automountServiceAccountToken === undefined) spec.automountServiceAccountToken = false;
  const pod = isRecord(spec.securityContext) ? spec.securityContext : {};
  if (pod.runAsNonRoot === undefined) pod.runAsNonRoot = true;
  if (pod.runAsUser === undefined) pod.runAsUser = runAsUser;
  if (pod.seccompProfile === undefined) pod.seccompProfile = { type: 'RuntimeDefault' };
  spec.securityContext = pod;
  for (const { container } of containersOf(spec)) {
    const security = isRecord(container.securityContext) ? container.securityContext : {};
    if (security.allowPrivilegeEscalation === undefined) security.allowPrivilegeEscalation = false;
    const capabilities = isRecord(security.capabilities) ? security.capabilities : {};
    if (capabilities.drop === undefined) capabilities.drop = ['ALL'];
    security.capabilities = capabilities;
    container.securityContext = security;
  }
}
