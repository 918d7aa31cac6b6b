import { createHash } from 'node:crypto';
import type {
  V1Container,
  V1ContainerPort,
  V1Deployment,
  V1PersistentVolumeClaim,
  V1PodSpec,
  V1Probe,
  V1ResourceRequirements,
  V1Secret,
  V1Service,
  V1ServicePort,
  V1StatefulSet,
  V1Volume,
} from '@kubernetes/client-node';
import type {
  Endpoint,
  ResourceSpec,
  ServiceRole,
  ServiceSpec,
  WorkloadKind,
} from '../../domain/instance.ts';
import { orderByDependencies } from '../../domain/service-order.ts';
import { PermanentProviderError, type ProvisionRequest } from '../provider.ts';
import { ANNOTATION, envSecretName, instanceLabels, LABEL, providerRef, resourceName } from './names.ts';
import { cpuQuantity, memoryQuantity } from './quantity.ts';

/** What `provision` applies for a services source. */
export interface WorkloadPlan {
  namespace: string;
  name: string;
  kind: WorkloadKind;
  /**
   * One Secret `<name>-<service>-env` per service with env (after secret resolution env may hold secret values, so
   * it never goes into a ConfigMap). The pod template's config-hash annotation is set by the caller from the applied
   * Secrets' resourceVersions, never from their values.
   */
  secrets: V1Secret[];
  workload: V1Deployment | V1StatefulSet;
  /** Absent for a Deployment none of whose services has ports. */
  service?: V1Service;
  endpoints: Endpoint[];
  serviceRefs: Record<string, string>;
  providerRef: string;
}

export interface PlanSettings {
  namespace: string;
  labels: Record<string, string>;
  imagePullSecrets: string[];
  /** The non-root UID (and GID) the pods run as. */
  runAsUser: number;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const PROTOCOLS: Record<string, string> = { tcp: 'TCP', udp: 'UDP', sctp: 'SCTP' };
const ENV_KEY = /^[-._a-zA-Z0-9]+$/;
/** Go durations are nanoseconds. */
const NS_PER_S = 1e9;

export function roleOf(service: Pick<ServiceSpec, 'role'>): ServiceRole {
  return service.role === undefined || service.role === '' ? 'main' : service.role;
}

function protocolOf(protocol: string | undefined): string | undefined {
  return PROTOCOLS[(protocol || 'tcp').toLowerCase()];
}

/** Rejects (permanently) what the API server would refuse anyway, before anything is written. */
export function validateServices(services: readonly ServiceSpec[] | undefined): void {
  if (!services || services.length === 0) {
    throw new PermanentProviderError('an instance needs at least one service');
  }
  const mains = services.filter((s) => roleOf(s) === 'main');
  if (mains.length !== 1) {
    throw new PermanentProviderError(
      `an instance needs exactly one main service (role "main" or empty), found ${mains.length}`,
    );
  }
  const seen = new Set<string>();
  for (const service of services) {
    const name = service.name ?? '';
    if (!DNS_LABEL.test(name) || name.length > 63) {
      throw new PermanentProviderError(
        `service name "${name}" is not valid on Kubernetes: use at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit`,
      );
    }
    if (seen.has(name)) throw new PermanentProviderError(`service name ${name} is used twice`);
    seen.add(name);
    if (!service.image?.trim()) throw new PermanentProviderError(`service ${name} has no image`);
    const role = roleOf(service);
    if (role !== 'main' && role !== 'sidecar' && role !== 'init') {
      throw new PermanentProviderError(`service ${name} has an unknown role "${String(service.role)}"`);
    }
    for (const port of service.ports ?? []) {
      if (!Number.isInteger(port.container) || port.container < 1 || port.container > 65535) {
        throw new PermanentProviderError(`service ${name}: container port ${port.container} is not valid`);
      }
      if (!protocolOf(port.protocol)) {
        throw new PermanentProviderError(`service ${name}: port protocol "${port.protocol}" is not valid`);
      }
    }
    for (const key of Object.keys(service.env ?? {})) {
      if (!ENV_KEY.test(key)) {
        throw new PermanentProviderError(
          `service ${name}: env key "${key}" is not valid on Kubernetes (letters, digits, '-', '_' and '.')`,
        );
      }
    }
    for (const volume of service.volumes ?? []) {
      if (!DNS_LABEL.test(volume.name ?? '')) {
        throw new PermanentProviderError(`service ${name}: volume name "${volume.name}" is not a DNS label`);
      }
      if (!volume.mount_path?.startsWith('/')) {
        throw new PermanentProviderError(
          `service ${name}: volume ${volume.name} needs an absolute mount_path`,
        );
      }
    }
  }
}

/** Requests and limits: cpu in millicores and memory in MiB when > 0; undefined when neither is set. */
export function resourceRequirements(
  resources: Partial<ResourceSpec> | undefined,
): V1ResourceRequirements | undefined {
  const quantities: Record<string, string> = {};
  if ((resources?.cpu_millis ?? 0) > 0) quantities.cpu = cpuQuantity(resources?.cpu_millis ?? 0);
  if ((resources?.memory_mb ?? 0) > 0) quantities.memory = memoryQuantity(resources?.memory_mb ?? 0);
  const limits: Record<string, string> = { ...quantities };
  if ((resources?.gpu ?? 0) > 0) limits['nvidia.com/gpu'] = String(resources?.gpu);
  if (Object.keys(limits).length === 0) return undefined;
  return { requests: quantities, limits };
}

function readinessProbe(service: ServiceSpec): V1Probe | undefined {
  const check = service.health_check;
  if (!check?.port) return undefined;
  const probe: V1Probe = check.path
    ? { httpGet: { path: check.path, port: check.port } }
    : { tcpSocket: { port: check.port } };
  if (check.interval && check.interval > 0)
    probe.periodSeconds = Math.max(1, Math.round(check.interval / NS_PER_S));
  if (check.timeout && check.timeout > 0)
    probe.timeoutSeconds = Math.max(1, Math.round(check.timeout / NS_PER_S));
  if (check.retries && check.retries > 0) probe.failureThreshold = check.retries;
  return probe;
}

function container(instanceId: string, service: ServiceSpec): V1Container {
  const c: V1Container = {
    name: service.name,
    image: service.image,
    securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
  };
  if (service.command?.length) c.command = [...service.command];
  if (service.args?.length) c.args = [...service.args];
  if (Object.keys(service.env ?? {}).length > 0) {
    c.envFrom = [{ secretRef: { name: envSecretName(instanceId, service.name) } }];
  }
  const ports: V1ContainerPort[] = (service.ports ?? []).map((p, i) => ({
    name: `port-${i}`,
    containerPort: p.container,
    protocol: protocolOf(p.protocol) ?? 'TCP',
  }));
  if (ports.length > 0) c.ports = ports;
  const resources = resourceRequirements(service.resources);
  if (resources) c.resources = resources;
  if (service.volumes?.length) {
    c.volumeMounts = service.volumes.map((v) => ({ name: v.name, mountPath: v.mount_path }));
  }
  if (roleOf(service) !== 'init') {
    const probe = readinessProbe(service);
    if (probe) c.readinessProbe = probe;
  }
  return c;
}

/** The largest size asked for each distinct volume name across the services (0 = no size). */
function volumeSizes(services: readonly ServiceSpec[]): Map<string, number> {
  const sizes = new Map<string, number>();
  for (const service of services) {
    for (const v of service.volumes ?? [])
      sizes.set(v.name, Math.max(sizes.get(v.name) ?? 0, v.size_mb ?? 0));
  }
  return sizes;
}

export function hashOf(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 16);
}

function base64(value: string): string {
  return Buffer.from(value, 'utf8').toString('base64');
}

/** The objects of a services-source instance. Pure: no I/O. */
export function planWorkload(req: ProvisionRequest, settings: PlanSettings): WorkloadPlan {
  validateServices(req.services);
  const name = resourceName(req.instance_id);
  const namespace = settings.namespace;
  const labels = instanceLabels({
    instanceId: req.instance_id,
    tenantId: req.tenant_id,
    config: settings.labels,
    caller: req.labels,
  });
  const selector = { [LABEL.instanceId]: req.instance_id };
  const kind: WorkloadKind = req.kind === 'stateful_set' ? 'stateful_set' : 'deployment';
  const main = req.services.find((s) => roleOf(s) === 'main') as ServiceSpec;

  const secrets: V1Secret[] = req.services
    .filter((s) => Object.keys(s.env ?? {}).length > 0)
    .map((s) => ({
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'Opaque',
      metadata: {
        name: envSecretName(req.instance_id, s.name),
        namespace,
        labels: { ...labels, [LABEL.service]: s.name, [LABEL.component]: 'env' },
      },
      data: Object.fromEntries(Object.entries(s.env ?? {}).map(([k, v]) => [k, base64(String(v))])),
    }));

  const sizes = volumeSizes(req.services);
  const claims =
    kind === 'stateful_set' ? [...sizes].filter(([, size]) => size > 0).map(([volume]) => volume) : [];
  const claimNames = new Set(claims);
  const volumes: V1Volume[] = [...sizes]
    .filter(([volume]) => !claimNames.has(volume))
    .map(([volume, size]) => ({
      name: volume,
      emptyDir: size > 0 ? { sizeLimit: memoryQuantity(size) } : {},
    }));

  // Init services run one by one, each after the init services it depends on.
  const inits = orderByDependencies(req.services.filter((s) => roleOf(s) === 'init'));
  const runnable = req.services.filter((s) => roleOf(s) !== 'init');
  // Compliant with Pod Security `restricted`: non-root, seccomp RuntimeDefault, nothing added or escalated; and
  // nothing of the cluster in the pod (no ServiceAccount token, no other Services' addresses in the environment).
  const podSpec: V1PodSpec = {
    containers: runnable.map((s) => container(req.instance_id, s)),
    enableServiceLinks: false,
    automountServiceAccountToken: false,
    securityContext: {
      runAsNonRoot: true,
      runAsUser: settings.runAsUser,
      runAsGroup: settings.runAsUser,
      fsGroup: settings.runAsUser,
      seccompProfile: { type: 'RuntimeDefault' },
    },
  };
  if (inits.length > 0) podSpec.initContainers = inits.map((s) => container(req.instance_id, s));
  if (volumes.length > 0) podSpec.volumes = volumes;
  if (settings.imagePullSecrets.length > 0) {
    podSpec.imagePullSecrets = settings.imagePullSecrets.map((secret) => ({ name: secret }));
  }

  const template = {
    metadata: {
      labels,
      annotations: {
        [ANNOTATION.defaultContainer]: main.name,
        [ANNOTATION.configHash]: hashOf(secrets.map((secret) => secret.metadata?.name)),
      },
    },
    spec: podSpec,
  };
  const replicas = Math.max(1, Math.floor(main.resources?.replicas ?? 1));
  const metadata = { name, namespace, labels, annotations: { [ANNOTATION.mainService]: main.name } };

  let workload: V1Deployment | V1StatefulSet;
  if (kind === 'stateful_set') {
    const volumeClaimTemplates: V1PersistentVolumeClaim[] = claims.map((volume) => ({
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name: volume, labels },
      spec: {
        accessModes: ['ReadWriteOnce'],
        resources: { requests: { storage: memoryQuantity(sizes.get(volume) ?? 0) } },
      },
    }));
    workload = {
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata,
      spec: {
        replicas,
        serviceName: name,
        selector: { matchLabels: selector },
        template,
        ...(volumeClaimTemplates.length > 0 ? { volumeClaimTemplates } : {}),
        persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Delete', whenScaled: 'Retain' },
      },
    } satisfies V1StatefulSet;
  } else {
    workload = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata,
      spec: { replicas, selector: { matchLabels: selector }, template },
    } satisfies V1Deployment;
  }

  const servicePorts: V1ServicePort[] = [];
  const endpoints: Endpoint[] = [];
  for (const s of runnable) {
    const ports = s.ports ?? [];
    ports.forEach((p, j) => {
      servicePorts.push({
        name: `${s.name}-${j}`,
        port: p.container,
        targetPort: p.container,
        protocol: protocolOf(p.protocol) ?? 'TCP',
      });
    });
    const first = ports[0];
    if (first) {
      endpoints.push({
        service_name: s.name,
        url: `http://${name}.${namespace}.svc.cluster.local:${first.container}`,
        port: first.container,
        protocol: protocolOf(first.protocol) ?? 'TCP',
        public: false,
      });
    }
  }

  // A StatefulSet always gets its governing headless Service (spec.serviceName), ports or not.
  let service: V1Service | undefined;
  if (servicePorts.length > 0 || kind === 'stateful_set') {
    service = {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace, labels },
      spec: {
        type: 'ClusterIP',
        selector,
        ...(servicePorts.length > 0 ? { ports: servicePorts } : {}),
        ...(kind === 'stateful_set' ? { clusterIP: 'None' } : {}),
      },
    };
  }

  const serviceRefs: Record<string, string> = {};
  for (const s of req.services) serviceRefs[s.name] = `k8s:${namespace}/${name}/${s.name}`;

  return {
    namespace,
    name,
    kind,
    secrets,
    workload,
    service,
    endpoints,
    serviceRefs,
    providerRef: providerRef(namespace, req.instance_id),
  };
}

/** Endpoints of a live workload, from its pod template (the same rule as at provision). */
export function endpointsOf(workload: V1Deployment | V1StatefulSet, namespace: string): Endpoint[] {
  const name = workload.metadata?.name ?? '';
  const endpoints: Endpoint[] = [];
  for (const c of workload.spec?.template?.spec?.containers ?? []) {
    const first = c.ports?.[0];
    if (!first) continue;
    endpoints.push({
      service_name: c.name,
      url: `http://${name}.${namespace}.svc.cluster.local:${first.containerPort}`,
      port: first.containerPort,
      protocol: first.protocol ?? 'TCP',
      public: false,
    });
  }
  return endpoints;
}
