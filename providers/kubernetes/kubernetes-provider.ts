import { join } from 'node:path';
import {
  AppsV1Api,
  type KubeConfig,
  type KubernetesObject,
  PatchStrategy,
  setHeaderOptions,
  type V1ConfigMap,
  type V1Deployment,
  type V1Pod,
  type V1StatefulSet,
  VersionApi,
} from '@kubernetes/client-node';
import type { ResourceSpec } from '../../domain/instance';
import {
  type ArgoApplicationSpec,
  type ArgoEngine,
  type CallOptions,
  type Capability,
  type HealthStatus,
  type HelmEngine,
  type InstanceStatus,
  type LogLine,
  type LogOptions,
  type ManifestEngine,
  PermanentProviderError,
  type Provider,
  type ProviderInfo,
  type ProvisionRequest,
  type ProvisionResult,
  type RenderedHelm,
  type ResourceUsage,
} from '../provider';
import { type ArgoApplication, argoApplication, argoStatusOf } from './argo';
import { buildKubeConfig, type KubernetesProviderLogger, type KubernetesProviderOptions } from './config';
import {
  errorMessage,
  ignoreNotFound,
  isConflict,
  isNotFound,
  kubeError,
  statusCode,
  translateError,
} from './errors';
import {
  findExecutable,
  helmState,
  helmUnavailable,
  installArgs,
  isReleaseNotFound,
  parseRelease,
  runHelm,
  withTempDir,
  writePrivate,
} from './helm';
import { callOptions, KubeObjects } from './kube-client';
import { streamPodLog } from './log-stream';
import {
  kindsDefinedBy,
  type ManifestRef,
  parseManifests,
  parseRefs,
  refKey,
  splitApiVersion,
} from './manifests';
import {
  ANNOTATION,
  FIELD_MANAGER,
  instanceLabels,
  instanceSelector,
  LABEL,
  MANAGED_BY,
  providerRef,
  resourceName,
  tenantNamespace,
  trackingConfigMapName,
} from './names';
import { cpuMillicores, memoryMiB, parseQuantity } from './quantity';
import { deriveStatus } from './status';
import { endpointsOf, planWorkload, resourceRequirements } from './workload';

type Workload = V1Deployment | V1StatefulSet;
type WorkloadKindName = 'Deployment' | 'StatefulSet';

interface Located {
  namespace: string;
  name: string;
  kind: WorkloadKindName;
  workload: Workload;
}

const HEALTH_TIMEOUT_MS = 2000;
/** Read-modify-write attempts when another writer bumps the resourceVersion in between (409 Conflict). */
const CONFLICT_ATTEMPTS = 5;
const WORKLOAD_KINDS: readonly WorkloadKindName[] = ['Deployment', 'StatefulSet'];
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

const noopLogger: KubernetesProviderLogger = { info: () => {}, warn: () => {} };

const ZERO_USAGE: ResourceUsage = {
  cpu_percent: 0,
  memory_used_mb: 0,
  memory_limit_mb: 0,
  network_in_mb: 0,
  network_out_mb: 0,
};

interface ObjectHeader {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
}

function header(apiVersion: string, kind: string, namespace: string | undefined, name: string): ObjectHeader {
  return { apiVersion, kind, metadata: namespace ? { name, namespace } : { name } };
}

function secondPrecisionNow(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function round(value: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

function validateNamespaceName(name: string, what: string): void {
  if (!DNS_LABEL.test(name) || name.length > 63) {
    throw new Error(`invalid kubernetes provider configuration: ${what} "${name}" is not a DNS label`);
  }
}

/**
 * Instances on Kubernetes (reference-behaviour.md §7, with its gaps fixed). Every object is written with server-side
 * apply (field manager `ctrlplane`, force), so a provision retried after a crash converges instead of failing with
 * AlreadyExists. One instance = a Deployment or StatefulSet `<instance id with _ → ->`, its Service and one env
 * ConfigMap per service, all labelled with `ctrlplane.io/instance-id`, `ctrlplane.io/tenant-id` and
 * `ctrlplane.io/managed-by=ctrlplane`.
 */
export class KubernetesProvider implements Provider, ManifestEngine, ArgoEngine, HelmEngine {
  readonly kubeConfig: KubeConfig;
  private readonly inCluster: boolean;
  private readonly objects: KubeObjects;
  private readonly apps: AppsV1Api;
  private readonly versionApi: VersionApi;
  private readonly namespace: string;
  private readonly namespacePerTenant: boolean;
  private readonly namespacePrefix: string;
  private readonly labels: Record<string, string>;
  private readonly imagePullSecrets: string[];
  private readonly argoNamespace: string;
  private readonly region: string;
  private readonly helmCommand: string | false;
  private readonly log: KubernetesProviderLogger;
  /** instance id → namespace, learned at provision or by lookup (only consulted with namespacePerTenant). */
  private readonly knownNamespaces = new Map<string, string>();
  /** Tenant namespaces this process has already applied. */
  private readonly ensuredNamespaces = new Set<string>();

  constructor(options: KubernetesProviderOptions = {}) {
    const { kc, inCluster } = buildKubeConfig(options);
    this.kubeConfig = kc;
    this.inCluster = inCluster;
    this.objects = KubeObjects.create(kc);
    this.apps = kc.makeApiClient(AppsV1Api);
    this.versionApi = kc.makeApiClient(VersionApi);
    this.namespace = options.namespace ?? 'default';
    validateNamespaceName(this.namespace, 'namespace');
    this.namespacePerTenant = options.namespacePerTenant ?? false;
    this.namespacePrefix = options.namespacePrefix ?? 'ctrlplane';
    if (this.namespacePerTenant) validateNamespaceName(this.namespacePrefix, 'namespace prefix');
    this.labels = { ...options.labels };
    this.imagePullSecrets = [...(options.imagePullSecrets ?? [])];
    this.argoNamespace = options.argoNamespace ?? 'argocd';
    validateNamespaceName(this.argoNamespace, 'argo namespace');
    this.region = options.region ?? 'local';
    this.helmCommand = options.helm ?? 'helm';
    this.log = options.logger ?? noopLogger;
  }

  info(): ProviderInfo {
    return { name: 'kubernetes', version: '0.1.0', region: this.region };
  }

  capabilities(): Capability[] {
    const caps: Capability[] = [
      'provision',
      'deploy',
      'scale',
      'logs',
      'volumes',
      'strategy:rolling',
      'source:manifests',
      'source:argocd',
    ];
    if (this.helmBinary()) caps.push('source:helm');
    return caps;
  }

  /** The namespace of a tenant's instances. */
  namespaceFor(tenantId: string): string {
    return this.namespacePerTenant ? tenantNamespace(this.namespacePrefix, tenantId) : this.namespace;
  }

  // --- services source -------------------------------------------------------------------------------------

  async provision(req: ProvisionRequest, opts: CallOptions = {}): Promise<ProvisionResult> {
    const api = this.objects.withSignal(opts.signal);
    const progress = (detail: string) => opts.progress?.(detail);
    const namespace = this.namespaceFor(req.tenant_id);
    const plan = planWorkload(req, {
      namespace,
      labels: this.labels,
      imagePullSecrets: this.imagePullSecrets,
    });
    await this.ensureNamespace(api, namespace, req.tenant_id);

    // The kind of an instance does not change in practice; if it did, the old workload and its Service go first
    // (a Service cannot switch between ClusterIP and headless in place).
    const otherKind: WorkloadKindName = plan.kind === 'stateful_set' ? 'Deployment' : 'StatefulSet';
    const other = await ignoreNotFound(api.read(header('apps/v1', otherKind, namespace, plan.name)));
    if (other) {
      await this.deleteIfPresent(api, header('apps/v1', otherKind, namespace, plan.name), 'Foreground');
      await this.deleteIfPresent(api, header('v1', 'Service', namespace, plan.name));
      progress(`removed ${otherKind} ${plan.name} of the previous kind`);
    }

    try {
      for (const cm of plan.configMaps) {
        await this.apply(api, cm);
        progress(`applied ConfigMap ${cm.metadata?.name}`);
      }
      await this.apply(api, plan.workload);
      progress(`applied ${plan.workload.kind} ${plan.name}`);
      if (plan.service) {
        await this.apply(api, plan.service);
        progress(`applied Service ${plan.name}`);
      } else {
        await this.deleteIfPresent(api, header('v1', 'Service', namespace, plan.name));
      }
    } catch (err) {
      // A tenant namespace deleted behind our back is re-created by the retry.
      if (isNotFound(err)) this.ensuredNamespaces.delete(namespace);
      throw err;
    }

    // Env ConfigMaps of services that no longer have env (or no longer exist).
    const wanted = new Set(plan.configMaps.map((cm) => cm.metadata?.name));
    const envMaps = await api.list<V1ConfigMap>(
      'v1',
      'ConfigMap',
      namespace,
      undefined,
      undefined,
      undefined,
      undefined,
      `${instanceSelector(req.instance_id)},${LABEL.component}=env`,
    );
    for (const cm of envMaps.items) {
      const name = cm.metadata?.name ?? '';
      if (wanted.has(name)) continue;
      await this.deleteIfPresent(api, header('v1', 'ConfigMap', namespace, name));
      progress(`removed ConfigMap ${name}`);
    }

    this.knownNamespaces.set(req.instance_id, namespace);
    this.log.info(
      { instance_id: req.instance_id, namespace, kind: plan.workload.kind, name: plan.name },
      'kubernetes instance applied',
    );
    return {
      provider_ref: plan.providerRef,
      service_refs: plan.serviceRefs,
      endpoints: plan.endpoints,
      metadata: { namespace, kind: plan.workload.kind ?? '', name: plan.name },
    };
  }

  async deprovision(instanceId: string, opts: CallOptions = {}): Promise<void> {
    const api = this.objects.withSignal(opts.signal);
    const namespace = await this.findNamespace(api, instanceId);
    if (!namespace) return;
    const name = resourceName(instanceId);
    for (const kind of WORKLOAD_KINDS) {
      await this.deleteIfPresent(api, header('apps/v1', kind, namespace, name), 'Foreground');
    }
    await this.deleteIfPresent(api, header('v1', 'Service', namespace, name));
    opts.progress?.(`deleted workload and Service ${name}`);

    // Env ConfigMaps (not a manifests source's tracking record, which deleteManifests owns).
    const selector = instanceSelector(instanceId);
    const maps = await api.list<V1ConfigMap>(
      'v1',
      'ConfigMap',
      namespace,
      undefined,
      undefined,
      undefined,
      undefined,
      `${selector},${LABEL.component}!=manifests`,
    );
    for (const cm of maps.items) {
      await this.deleteIfPresent(api, header('v1', 'ConfigMap', namespace, cm.metadata?.name ?? ''));
    }
    // Claims of a StatefulSet's volumeClaimTemplates carry the selector labels.
    const claims = await api.list(
      'v1',
      'PersistentVolumeClaim',
      namespace,
      undefined,
      undefined,
      undefined,
      undefined,
      selector,
    );
    for (const pvc of claims.items) {
      await this.deleteIfPresent(
        api,
        header('v1', 'PersistentVolumeClaim', namespace, pvc.metadata?.name ?? ''),
      );
    }
    opts.progress?.(`deleted ${maps.items.length} ConfigMap(s) and ${claims.items.length} claim(s)`);
    this.knownNamespaces.delete(instanceId);
    this.log.info({ instance_id: instanceId, namespace, name }, 'kubernetes instance deleted');
  }

  /** Scales to 0, recording the replica count in `ctrlplane.io/replicas-before-stop`. Nothing there: nothing to do. */
  async stop(instanceId: string, opts: CallOptions = {}): Promise<void> {
    const api = this.objects.withSignal(opts.signal);
    await this.withConflictRetry(async () => {
      const found = await this.locate(api, instanceId);
      if (!found) {
        this.log.warn({ instance_id: instanceId }, 'stop: no workload, nothing to stop');
        return;
      }
      const replicas = found.workload.spec?.replicas ?? 1;
      if (replicas === 0) return;
      await this.mergePatch(api, found, {
        metadata: {
          resourceVersion: found.workload.metadata?.resourceVersion,
          annotations: { [ANNOTATION.replicasBeforeStop]: String(replicas) },
        },
        spec: { replicas: 0 },
      });
      opts.progress?.(`scaled ${found.kind} ${found.name} from ${replicas} to 0`);
    });
  }

  /** Restores the replica count `stop` recorded (1 when none was). */
  async start(instanceId: string, opts: CallOptions = {}): Promise<void> {
    const api = this.objects.withSignal(opts.signal);
    await this.withConflictRetry(async () => {
      const found = await this.requireWorkload(api, instanceId);
      const replicas = found.workload.spec?.replicas ?? 1;
      const recorded = found.workload.metadata?.annotations?.[ANNOTATION.replicasBeforeStop];
      if (replicas > 0) {
        if (recorded !== undefined) {
          await this.mergePatch(api, found, {
            metadata: { annotations: { [ANNOTATION.replicasBeforeStop]: null } },
          });
        }
        return;
      }
      const parsed = Number(recorded);
      const target = Number.isInteger(parsed) && parsed > 0 ? parsed : 1;
      await this.mergePatch(api, found, {
        metadata: {
          resourceVersion: found.workload.metadata?.resourceVersion,
          annotations: { [ANNOTATION.replicasBeforeStop]: null },
        },
        spec: { replicas: target },
      });
      opts.progress?.(`scaled ${found.kind} ${found.name} to ${target}`);
    });
  }

  /** A rolling restart: the pod-template annotation `ctrlplane.io/restartedAt` (what `kubectl rollout restart` does). */
  async restart(instanceId: string, opts: CallOptions = {}): Promise<void> {
    const api = this.objects.withSignal(opts.signal);
    const found = await this.requireWorkload(api, instanceId);
    await this.mergePatch(api, found, {
      spec: { template: { metadata: { annotations: { [ANNOTATION.restartedAt]: secondPrecisionNow() } } } },
    });
    opts.progress?.(`restarting ${found.kind} ${found.name}`);
  }

  /**
   * cpu/memory > 0 → the requests and limits of every non-init container; replicas > 0 → the scale subresource (or,
   * while stopped, the recorded count `start` will restore). Zero fields are left as they are.
   */
  async scale(instanceId: string, resources: ResourceSpec, opts: CallOptions = {}): Promise<void> {
    const api = this.objects.withSignal(opts.signal);
    const quantities = resourceRequirements({
      cpu_millis: resources.cpu_millis,
      memory_mb: resources.memory_mb,
    });
    const replicas = Math.floor(resources.replicas ?? 0);
    if (!quantities && replicas <= 0) return;

    await this.withConflictRetry(async () => {
      const found = await this.requireWorkload(api, instanceId);
      if (quantities) {
        const containers = (found.workload.spec?.template?.spec?.containers ?? []).map((c) => ({
          ...c,
          resources: {
            ...c.resources,
            requests: { ...c.resources?.requests, ...quantities.requests },
            limits: { ...c.resources?.limits, ...quantities.limits },
          },
        }));
        await this.mergePatch(api, found, {
          metadata: { resourceVersion: found.workload.metadata?.resourceVersion },
          spec: { template: { spec: { containers } } },
        });
        opts.progress?.(`set resources of ${containers.length} container(s)`);
      }
      if (replicas > 0) {
        const stopped =
          (found.workload.spec?.replicas ?? 1) === 0 &&
          found.workload.metadata?.annotations?.[ANNOTATION.replicasBeforeStop] !== undefined;
        if (stopped) {
          await this.mergePatch(api, found, {
            metadata: { annotations: { [ANNOTATION.replicasBeforeStop]: String(replicas) } },
          });
        } else {
          await this.scaleSubresource(found, replicas, opts.signal);
        }
        opts.progress?.(`replicas of ${found.kind} ${found.name} set to ${replicas}`);
      }
    });
  }

  async status(instanceId: string, opts: CallOptions = {}): Promise<InstanceStatus> {
    const api = this.objects.withSignal(opts.signal);
    const found = await this.locate(api, instanceId);
    if (!found) return { state: 'destroyed', ready: false, restarts: 0, endpoints: [] };
    const pods = await this.pods(api, found.namespace, instanceId);
    return deriveStatus(found.workload, pods, endpointsOf(found.workload, found.namespace));
  }

  /**
   * One service's log (default: the main service) from one pod of the instance (a ready one first), as
   * `{ts, stream: 'stdout', line}`; Kubernetes merges stdout and stderr. No pods (stopped, or gone): no lines.
   */
  async *logs(instanceId: string, options: LogOptions = {}, opts: CallOptions = {}): AsyncGenerator<LogLine> {
    const api = this.objects.withSignal(opts.signal);
    const found = await this.locate(api, instanceId);
    if (!found) return;
    const pod = pickPod(await this.pods(api, found.namespace, instanceId));
    if (!pod?.metadata?.name) return;
    const container =
      options.service_name ||
      found.workload.metadata?.annotations?.[ANNOTATION.mainService] ||
      pod.spec?.containers[0]?.name ||
      '';
    const names = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])].map((c) => c.name);
    if (!names.includes(container)) {
      throw new PermanentProviderError(
        `instance ${instanceId} has no service "${container}" (services: ${names.join(', ')})`,
        'invalid_request',
      );
    }
    const tail = options.tail && options.tail > 0 ? Math.floor(options.tail) : undefined;
    try {
      yield* streamPodLog(
        this.kubeConfig,
        { namespace: found.namespace, pod: pod.metadata.name, container },
        {
          follow: !!options.follow,
          ...(tail ? { tailLines: tail } : {}),
          ...(options.since ? { sinceTime: options.since } : {}),
        },
        opts.signal,
      );
    } catch (err) {
      if (statusCode(err) === 400) {
        throw new PermanentProviderError(
          `logs of service ${container} in pod ${pod.metadata.name} are not available (the container has not started?): ${errorMessage(err)}`,
          'invalid_request',
        );
      }
      throw err;
    }
  }

  /** Usage from metrics.k8s.io summed over the instance's pods; zero when there are none or the API is absent. */
  async resources(instanceId: string, opts: CallOptions = {}): Promise<ResourceUsage> {
    try {
      const api = this.objects.withSignal(opts.signal);
      const namespace = await this.findNamespace(api, instanceId);
      if (!namespace) return { ...ZERO_USAGE };
      const pods = (await this.pods(api, namespace, instanceId)).filter((p) => p.status?.phase === 'Running');
      if (pods.length === 0) return { ...ZERO_USAGE };
      let millicores = 0;
      let memoryBytes = 0;
      let limitMiB = 0;
      let sampled = 0;
      for (const pod of pods) {
        const name = pod.metadata?.name ?? '';
        const metrics = await ignoreNotFound(
          api.read<PodMetrics>(header('metrics.k8s.io/v1beta1', 'PodMetrics', namespace, name)),
        );
        if (!metrics) continue;
        sampled++;
        for (const c of metrics.containers ?? []) {
          millicores += cpuMillicores(c.usage?.cpu);
          memoryBytes += parseQuantity(c.usage?.memory) ?? 0;
        }
        for (const c of pod.spec?.containers ?? []) limitMiB += memoryMiB(c.resources?.limits?.memory);
      }
      if (sampled === 0) return { ...ZERO_USAGE };
      return {
        cpu_percent: round(millicores / 10),
        memory_used_mb: round(memoryBytes / 2 ** 20),
        memory_limit_mb: round(limitMiB),
        network_in_mb: 0,
        network_out_mb: 0,
      };
    } catch (err) {
      this.log.warn({ instance_id: instanceId, err: errorMessage(err) }, 'resource metrics unavailable');
      return { ...ZERO_USAGE };
    }
  }

  /** GET /version within 2 s; never throws. */
  async healthCheck(): Promise<HealthStatus> {
    const started = performance.now();
    const timeout = AbortSignal.timeout(HEALTH_TIMEOUT_MS);
    let timer: NodeJS.Timeout | undefined;
    try {
      const info = await Promise.race([
        this.versionApi.getCode({}, callOptions(timeout)),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no answer within ${HEALTH_TIMEOUT_MS}ms`)),
            HEALTH_TIMEOUT_MS,
          );
        }),
      ]);
      return {
        healthy: true,
        message: `kubernetes API reachable (${info.gitVersion || `${info.major}.${info.minor}`})`,
        latency_ms: Math.round(performance.now() - started),
        checked_at: new Date().toISOString(),
      };
    } catch (err) {
      return {
        healthy: false,
        message: `kubernetes API unreachable: ${timeout.aborted ? `no answer within ${HEALTH_TIMEOUT_MS}ms` : errorMessage(err)}`,
        latency_ms: Math.round(performance.now() - started),
        checked_at: new Date().toISOString(),
      };
    } finally {
      clearTimeout(timer);
    }
  }

  // --- manifests source ------------------------------------------------------------------------------------

  /**
   * Applies every object (server-side apply), labelled, into `req.namespace` or the instance namespace, records
   * them in the ConfigMap `<name>-manifests`, and prunes what an earlier apply created and this one no longer has.
   * The record is written before the objects (holding old and new) and after (holding the new set), so a crash at
   * any point leaves nothing untracked.
   */
  async applyManifests(
    req: {
      instance_id: string;
      tenant_id: string;
      namespace?: string;
      docs: string[];
      labels?: Record<string, string>;
    },
    opts: CallOptions = {},
  ): Promise<ProvisionResult> {
    const api = this.objects.withSignal(opts.signal);
    const instanceNamespace = this.namespaceFor(req.tenant_id);
    const targetNamespace = req.namespace || instanceNamespace;
    const objects = parseManifests(req.docs ?? []);
    if (objects.length === 0) throw new PermanentProviderError('the manifests source has no objects');
    await this.ensureNamespace(api, instanceNamespace, req.tenant_id);

    const reserved = instanceLabels({ instanceId: req.instance_id, tenantId: req.tenant_id });
    const defined = kindsDefinedBy(objects);
    this.rememberDefinedKinds(api, objects);

    const refs: ManifestRef[] = [];
    const seen = new Set<string>();
    for (const obj of objects) {
      const apiVersion = obj.apiVersion ?? '';
      const kind = obj.kind ?? '';
      const { group, version } = splitApiVersion(apiVersion);
      const info = await this.resourceInfo(api, apiVersion, kind);
      if (!info) {
        if (defined.has(`${group}/${kind}`)) {
          throw new Error(
            `${kind} (${apiVersion}) is not served yet; its CustomResourceDefinition was just applied`,
          );
        }
        throw new PermanentProviderError(
          `the cluster does not serve ${kind} in ${apiVersion}`,
          'invalid_spec',
        );
      }
      const metadata = obj.metadata ?? {};
      if (info.namespaced) metadata.namespace = metadata.namespace || targetNamespace;
      else delete metadata.namespace;
      // The object's own labels, then the configured ones, the caller's, and the reserved ones (which win).
      metadata.labels = { ...metadata.labels, ...this.labels, ...req.labels, ...reserved };
      obj.metadata = metadata;
      const ref: ManifestRef = {
        apiVersion,
        kind,
        group,
        version,
        resource: info.plural,
        namespaced: info.namespaced,
        ...(info.namespaced ? { namespace: metadata.namespace } : {}),
        name: metadata.name ?? '',
      };
      const key = refKey(ref);
      if (seen.has(key)) {
        throw new PermanentProviderError(
          `the manifests contain ${kind} ${metadata.name} twice`,
          'invalid_spec',
        );
      }
      seen.add(key);
      refs.push(ref);
    }

    const trackingName = trackingConfigMapName(req.instance_id);
    const tracking = await ignoreNotFound(
      api.read<V1ConfigMap>(header('v1', 'ConfigMap', instanceNamespace, trackingName)),
    );
    const previous = parseRefs(tracking?.data);
    const keep = new Set(refs.map(refKey));
    const stale = previous.filter((r) => !keep.has(refKey(r)));
    const trackingLabels = {
      ...this.labels,
      ...req.labels,
      ...reserved,
      [LABEL.component]: 'manifests',
    };
    await this.writeTracking(api, instanceNamespace, trackingName, trackingLabels, [...stale, ...refs]);

    for (const obj of objects) {
      try {
        await this.apply(api, obj);
      } catch (err) {
        const { group } = splitApiVersion(obj.apiVersion ?? '');
        if (isNotFound(err) && !defined.has(`${group}/${obj.kind}`)) {
          throw new PermanentProviderError(
            `cannot apply ${obj.kind} ${obj.metadata?.name}: ${errorMessage(err)}`,
            'invalid_spec',
          );
        }
        throw err;
      }
      opts.progress?.(`applied ${obj.kind} ${obj.metadata?.name}`);
    }
    for (const ref of [...stale].reverse()) {
      await this.deleteRef(api, ref);
      opts.progress?.(`pruned ${ref.kind} ${ref.name}`);
    }
    await this.writeTracking(api, instanceNamespace, trackingName, trackingLabels, refs);

    this.knownNamespaces.set(req.instance_id, instanceNamespace);
    this.log.info(
      { instance_id: req.instance_id, objects: refs.length, pruned: stale.length },
      'kubernetes manifests applied',
    );
    return {
      provider_ref: providerRef(instanceNamespace, req.instance_id),
      endpoints: [],
      metadata: { objects: String(refs.length), namespace: targetNamespace },
    };
  }

  /** Deletes every recorded object (404 is fine; the first other error stops), then the record. Absent: no-op. */
  async deleteManifests(instanceId: string, opts: CallOptions = {}): Promise<void> {
    const api = this.objects.withSignal(opts.signal);
    const namespace = await this.findNamespace(api, instanceId);
    if (!namespace) return;
    const trackingName = trackingConfigMapName(instanceId);
    const tracking = await ignoreNotFound(
      api.read<V1ConfigMap>(header('v1', 'ConfigMap', namespace, trackingName)),
    );
    if (!tracking) return;
    const refs = parseRefs(tracking.data);
    for (const ref of [...refs].reverse()) {
      await this.deleteRef(api, ref);
      opts.progress?.(`deleted ${ref.kind} ${ref.name}`);
    }
    await this.deleteIfPresent(api, header('v1', 'ConfigMap', namespace, trackingName));
    this.knownNamespaces.delete(instanceId);
    this.log.info({ instance_id: instanceId, objects: refs.length }, 'kubernetes manifests deleted');
  }

  /** Existence of every recorded object (reference-behaviour.md §7): no readiness is judged. */
  async manifestStatus(instanceId: string, opts: CallOptions = {}): Promise<InstanceStatus> {
    const api = this.objects.withSignal(opts.signal);
    const pending = (message: string): InstanceStatus => ({
      state: 'provisioning',
      ready: false,
      restarts: 0,
      endpoints: [],
      message,
    });
    const namespace = await this.findNamespace(api, instanceId);
    if (!namespace) return pending('no manifests applied');
    const tracking = await ignoreNotFound(
      api.read<V1ConfigMap>(header('v1', 'ConfigMap', namespace, trackingConfigMapName(instanceId))),
    );
    const refs = parseRefs(tracking?.data);
    if (refs.length === 0) return pending('no manifests applied');
    for (const ref of refs) {
      api.remember(ref.apiVersion, ref.kind, { plural: ref.resource, namespaced: ref.namespaced });
      const obj = await ignoreNotFound(api.read(header(ref.apiVersion, ref.kind, ref.namespace, ref.name)));
      if (!obj) return pending(`${ref.resource} ${ref.name} not found`);
    }
    return { state: 'running', ready: true, restarts: 0, endpoints: [], message: 'all manifests applied' };
  }

  // --- argocd source ---------------------------------------------------------------------------------------

  async argoApply(
    req: {
      instance_id: string;
      tenant_id: string;
      app: ArgoApplicationSpec;
      labels?: Record<string, string>;
    },
    opts: CallOptions = {},
  ): Promise<ProvisionResult> {
    const api = this.objects.withSignal(opts.signal);
    const instanceNamespace = this.namespaceFor(req.tenant_id);
    const application = argoApplication({
      instanceId: req.instance_id,
      namespace: this.argoNamespace,
      labels: instanceLabels({
        instanceId: req.instance_id,
        tenantId: req.tenant_id,
        config: this.labels,
        caller: req.labels,
      }),
      app: req.app,
      defaultDestinationNamespace: instanceNamespace,
    });
    if (!req.app.dest_namespace) await this.ensureNamespace(api, instanceNamespace, req.tenant_id);
    try {
      await this.apply(api, application);
    } catch (err) {
      if (isNotFound(err)) {
        throw new PermanentProviderError(
          `cannot create the Argo CD Application in namespace ${this.argoNamespace} (is Argo CD installed?): ${errorMessage(err)}`,
          'unsupported_source',
        );
      }
      throw err;
    }
    const name = resourceName(req.instance_id);
    opts.progress?.(`applied Application ${this.argoNamespace}/${name}`);
    return {
      provider_ref: `argocd:${this.argoNamespace}/${name}`,
      endpoints: [],
      metadata: { application: name, namespace: this.argoNamespace },
    };
  }

  async argoDelete(instanceId: string, opts: CallOptions = {}): Promise<void> {
    const api = this.objects.withSignal(opts.signal);
    await this.deleteIfPresent(
      api,
      header('argoproj.io/v1alpha1', 'Application', this.argoNamespace, resourceName(instanceId)),
    );
  }

  async argoStatus(instanceId: string, opts: CallOptions = {}): Promise<InstanceStatus> {
    const api = this.objects.withSignal(opts.signal);
    const app = await ignoreNotFound(
      api.read<ArgoApplication>(
        header('argoproj.io/v1alpha1', 'Application', this.argoNamespace, resourceName(instanceId)),
      ),
    );
    if (!app) {
      return {
        state: 'destroyed',
        ready: false,
        restarts: 0,
        endpoints: [],
        message: 'no Argo CD Application',
      };
    }
    return argoStatusOf(app);
  }

  // --- helm source -----------------------------------------------------------------------------------------

  async helmInstall(
    req: { instance_id: string; tenant_id: string; namespace?: string; chart: RenderedHelm },
    opts: CallOptions = {},
  ): Promise<ProvisionResult> {
    const binary = this.helmBinary();
    if (!binary) throw helmUnavailable();
    const api = this.objects.withSignal(opts.signal);
    const instanceNamespace = this.namespaceFor(req.tenant_id);
    const namespace = req.namespace || req.chart?.namespace || instanceNamespace;
    if (namespace === instanceNamespace) await this.ensureNamespace(api, namespace, req.tenant_id);
    const release = resourceName(req.instance_id);
    return withTempDir(async (dir) => {
      const values = req.chart.values ?? {};
      const valuesFile =
        Object.keys(values).length > 0
          ? await writePrivate(join(dir, 'values.json'), JSON.stringify(values))
          : undefined;
      const args = [...installArgs(release, namespace, req.chart, valuesFile), '--create-namespace'];
      opts.progress?.(`helm upgrade --install ${release}`);
      let out: string;
      try {
        out = await runHelm(await this.helmContext(binary, dir, opts.signal), args);
      } catch (err) {
        const text = errorMessage(err);
        if (/not found|no chart|invalid|parse error|unable to parse|failed to parse/i.test(text)) {
          throw new PermanentProviderError(text, 'invalid_spec');
        }
        throw err;
      }
      const rel = parseRelease(out, { name: release, namespace });
      this.log.info(
        { instance_id: req.instance_id, release, namespace, revision: rel.revision },
        'helm release installed',
      );
      return {
        provider_ref: `helm:${namespace}/${release}`,
        endpoints: [],
        metadata: { revision: String(rel.revision), namespace, status: rel.status },
      };
    });
  }

  async helmUninstall(instanceId: string, opts: CallOptions = {}): Promise<void> {
    const binary = this.helmBinary();
    if (!binary) throw helmUnavailable();
    const release = resourceName(instanceId);
    await withTempDir(async (dir) => {
      const ctx = await this.helmContext(binary, dir, opts.signal);
      const found = await this.findRelease(ctx, release);
      if (!found) return;
      try {
        await runHelm(ctx, ['uninstall', release, '--namespace', found.namespace]);
      } catch (err) {
        if (!isReleaseNotFound(err)) throw err;
      }
      opts.progress?.(`helm uninstall ${release}`);
    });
  }

  async helmStatus(instanceId: string, opts: CallOptions = {}): Promise<InstanceStatus> {
    const binary = this.helmBinary();
    if (!binary) throw helmUnavailable();
    const release = resourceName(instanceId);
    return withTempDir(async (dir) => {
      const ctx = await this.helmContext(binary, dir, opts.signal);
      const found = await this.findRelease(ctx, release);
      if (!found)
        return { state: 'destroyed', ready: false, restarts: 0, endpoints: [], message: 'no helm release' };
      const out = await runHelm(ctx, ['status', release, '--namespace', found.namespace, '--output', 'json']);
      const rel = parseRelease(out, { name: release, namespace: found.namespace });
      const state = helmState(rel.status);
      return {
        state,
        ready: state === 'running',
        restarts: 0,
        endpoints: [],
        message: rel.description ?? rel.status,
      };
    });
  }

  // --- internals -------------------------------------------------------------------------------------------

  private helmBinary(): string | undefined {
    return this.helmCommand === false ? undefined : findExecutable(this.helmCommand);
  }

  private async helmContext(binary: string, dir: string, signal: AbortSignal | undefined) {
    if (this.inCluster) return { binary, signal };
    const kubeconfig = await writePrivate(join(dir, 'kubeconfig'), this.kubeConfig.exportConfig());
    return { binary, kubeconfig, signal };
  }

  private async findRelease(
    ctx: { binary: string; kubeconfig?: string; signal?: AbortSignal },
    release: string,
  ): Promise<{ namespace: string } | undefined> {
    const out = await runHelm(ctx, [
      'list',
      '--all-namespaces',
      '--all',
      '--filter',
      `^${release}$`,
      '--output',
      'json',
    ]);
    const list = JSON.parse(out || '[]') as Array<{ name?: string; namespace?: string }>;
    const hit = list.find((r) => r.name === release);
    return hit?.namespace ? { namespace: hit.namespace } : undefined;
  }

  /** Server-side apply, field manager `ctrlplane`, force: create or converge, never AlreadyExists. */
  private async apply<T extends KubernetesObject>(api: KubeObjects, obj: T): Promise<T> {
    try {
      return await api.patch(obj, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
    } catch (err) {
      const ns = obj.metadata?.namespace;
      return translateError(err, `${obj.kind} ${ns ? `${ns}/` : ''}${obj.metadata?.name}`);
    }
  }

  /** A JSON merge patch of the workload (a `metadata.resourceVersion` in it makes it conditional: 409 if stale). */
  private async mergePatch(api: KubeObjects, found: Located, body: Record<string, unknown>): Promise<void> {
    const { metadata, ...rest } = body as { metadata?: Record<string, unknown> };
    const patch = {
      apiVersion: 'apps/v1',
      kind: found.kind,
      ...rest,
      metadata: { ...metadata, name: found.name, namespace: found.namespace },
    } as KubernetesObject;
    try {
      await api.patch(patch, undefined, undefined, FIELD_MANAGER, undefined, PatchStrategy.MergePatch);
    } catch (err) {
      if (isConflict(err)) throw err;
      translateError(err, `${found.kind} ${found.namespace}/${found.name}`);
    }
  }

  private async scaleSubresource(
    found: Located,
    replicas: number,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const param = { name: found.name, namespace: found.namespace, body: { spec: { replicas } } };
    const options = setHeaderOptions('Content-Type', PatchStrategy.MergePatch, callOptions(signal));
    try {
      if (found.kind === 'Deployment') await this.apps.patchNamespacedDeploymentScale(param, options);
      else await this.apps.patchNamespacedStatefulSetScale(param, options);
    } catch (err) {
      translateError(err, `scale of ${found.kind} ${found.namespace}/${found.name}`);
    }
  }

  private async withConflictRetry(fn: () => Promise<void>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (!isConflict(err) || attempt >= CONFLICT_ATTEMPTS) throw err;
        this.log.warn({ attempt, err: kubeError(err).message }, 'write conflict, retrying with a fresh read');
      }
    }
  }

  private async deleteIfPresent(
    api: KubeObjects,
    obj: KubernetesObject,
    propagationPolicy: 'Foreground' | 'Background' = 'Background',
  ): Promise<void> {
    try {
      await api.delete(obj, undefined, undefined, undefined, undefined, propagationPolicy);
    } catch (err) {
      if (isNotFound(err)) return;
      translateError(err, `delete of ${obj.kind} ${obj.metadata?.name}`);
    }
  }

  private async deleteRef(api: KubeObjects, ref: ManifestRef): Promise<void> {
    api.remember(ref.apiVersion, ref.kind, { plural: ref.resource, namespaced: ref.namespaced });
    await this.deleteIfPresent(api, header(ref.apiVersion, ref.kind, ref.namespace, ref.name));
  }

  private async writeTracking(
    api: KubeObjects,
    namespace: string,
    name: string,
    labels: Record<string, string>,
    refs: ManifestRef[],
  ): Promise<void> {
    const cm: V1ConfigMap = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name, namespace, labels },
      data: { refs: JSON.stringify(refs) },
    };
    await this.apply(api, cm);
  }

  private async resourceInfo(api: KubeObjects, apiVersion: string, kind: string) {
    try {
      return await api.resourceInfo(apiVersion, kind);
    } catch (err) {
      // Discovery answers 404 for a group/version the cluster does not serve.
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** Kinds whose CRD is in the same manifest set resolve from the CRD itself (discovery lags behind). */
  private rememberDefinedKinds(api: KubeObjects, objects: readonly KubernetesObject[]): void {
    for (const o of objects) {
      if (o.kind !== 'CustomResourceDefinition') continue;
      const spec = (o as CrdLike).spec;
      if (!spec?.group || !spec.names?.kind || !spec.names.plural) continue;
      for (const v of spec.versions ?? []) {
        if (!v.name) continue;
        api.remember(`${spec.group}/${v.name}`, spec.names.kind, {
          plural: spec.names.plural,
          namespaced: spec.scope !== 'Cluster',
        });
      }
    }
  }

  /** With namespacePerTenant, applies the tenant namespace (once per process); otherwise nothing. */
  private async ensureNamespace(api: KubeObjects, namespace: string, tenantId: string): Promise<void> {
    if (!this.namespacePerTenant || namespace !== this.namespaceFor(tenantId)) return;
    if (this.ensuredNamespaces.has(namespace)) return;
    await this.apply(api, {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: {
        name: namespace,
        labels: { ...this.labels, [LABEL.managedBy]: MANAGED_BY, [LABEL.tenantId]: tenantId },
      },
    });
    this.ensuredNamespaces.add(namespace);
  }

  /**
   * The namespace an instance lives in. With one namespace per tenant the instance id alone does not say, so its
   * objects are looked up across namespaces by the instance label (and remembered).
   */
  private async findNamespace(api: KubeObjects, instanceId: string): Promise<string | undefined> {
    if (!this.namespacePerTenant) return this.namespace;
    const known = this.knownNamespaces.get(instanceId);
    if (known) return known;
    const selector = instanceSelector(instanceId);
    for (const [apiVersion, kind] of [
      ['apps/v1', 'Deployment'],
      ['apps/v1', 'StatefulSet'],
      ['v1', 'ConfigMap'],
    ] as const) {
      const list = await api.list(
        apiVersion,
        kind,
        undefined,
        undefined,
        undefined,
        undefined,
        undefined,
        selector,
        1,
      );
      const namespace = list.items[0]?.metadata?.namespace;
      if (namespace) {
        this.knownNamespaces.set(instanceId, namespace);
        return namespace;
      }
    }
    return undefined;
  }

  private async locate(api: KubeObjects, instanceId: string): Promise<Located | undefined> {
    const namespace = await this.findNamespace(api, instanceId);
    if (!namespace) return undefined;
    const name = resourceName(instanceId);
    for (const kind of WORKLOAD_KINDS) {
      const workload = await ignoreNotFound(api.read<Workload>(header('apps/v1', kind, namespace, name)));
      if (workload) return { namespace, name, kind, workload };
    }
    return undefined;
  }

  private async requireWorkload(api: KubeObjects, instanceId: string): Promise<Located> {
    const found = await this.locate(api, instanceId);
    if (found) return found;
    const namespace = (await this.findNamespace(api, instanceId)) ?? this.namespace;
    throw new PermanentProviderError(
      `instance ${instanceId} has no Deployment or StatefulSet ${resourceName(instanceId)} in namespace ${namespace}`,
      'invalid_request',
    );
  }

  private async pods(api: KubeObjects, namespace: string, instanceId: string): Promise<V1Pod[]> {
    const list = await api.list<V1Pod>(
      'v1',
      'Pod',
      namespace,
      undefined,
      undefined,
      undefined,
      undefined,
      instanceSelector(instanceId),
    );
    return list.items;
  }
}

interface PodMetrics extends KubernetesObject {
  containers?: Array<{ name?: string; usage?: { cpu?: string; memory?: string } }>;
}

interface CrdLike {
  spec?: {
    group?: string;
    scope?: string;
    names?: { kind?: string; plural?: string };
    versions?: Array<{ name?: string }>;
  };
}

function time(value: Date | string | undefined): number {
  if (!value) return 0;
  return value instanceof Date ? value.getTime() : Date.parse(value) || 0;
}

/** The pod whose log to read: not being deleted, ready before running before anything else, newest first. */
function pickPod(pods: V1Pod[]): V1Pod | undefined {
  const rank = (p: V1Pod) => {
    if ((p.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True')) return 0;
    if (p.status?.phase === 'Running') return 1;
    return 2;
  };
  return pods
    .filter((p) => !p.metadata?.deletionTimestamp)
    .sort(
      (a, b) =>
        rank(a) - rank(b) || time(b.metadata?.creationTimestamp) - time(a.metadata?.creationTimestamp),
    )[0];
}
