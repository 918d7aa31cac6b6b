import { join } from 'node:path';
import {
  AppsV1Api,
  KubeConfig,
  type KubernetesObject,
  PatchStrategy,
  setHeaderOptions,
  type V1ConfigMap,
  type V1Deployment,
  type V1Pod,
  type V1Secret,
  type V1StatefulSet,
  VersionApi,
} from '@kubernetes/client-node';
import type { ResourceSpec } from '../../domain/instance.ts';
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
} from '../provider.ts';
import {
  type ArgoApplication,
  argoApplication,
  argoDisabled,
  argoProject,
  argoStatusOf,
  checkArgoRepo,
} from './argo.ts';
import {
  buildKubeConfig,
  DEFAULT_TENANT_LIMITS,
  type KubernetesProviderLogger,
  type KubernetesProviderOptions,
  type PodSecurityLevel,
  type ServiceExposure,
  type TenantNamespaceLimits,
} from './config.ts';
import {
  errorMessage,
  ignoreNotFound,
  isConflict,
  isNotFound,
  kubeError,
  statusCode,
  translateError,
} from './errors.ts';
import {
  checkChartSource,
  findExecutable,
  helmUnavailable,
  offlineHelmEnv,
  runHelm,
  templateArgs,
  withTempDir,
  writePrivate,
} from './helm.ts';
import { callOptions, fromWire, KubeObjects } from './kube-client.ts';
import { streamPodLog } from './log-stream.ts';
import {
  checkKind,
  forceTemplateLabels,
  refuseClusterScoped,
  refuseForeignReferences,
  scopeSelectors,
} from './manifest-policy.ts';
import { type ManifestRef, parseManifests, parseRefs, refKey, splitApiVersion } from './manifests.ts';
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
} from './names.ts';
import {
  checkPodSpec,
  checkServiceExposure,
  hardenPodSpec,
  podReferences,
  podSpecs,
  refusePod,
} from './pod-policy.ts';
import { cpuMillicores, memoryMiB, parseQuantity } from './quantity.ts';
import { deriveStatus } from './status.ts';
import {
  instanceNetworkPolicy,
  instanceNetworkPolicyName,
  serviceExposurePolicy,
  type TenantIdentity,
  tenantIdentity,
  tenantNamespaceObjects,
} from './tenant-namespace.ts';
import { endpointsOf, hashOf, planWorkload, resourceRequirements } from './workload.ts';

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
const IN_CLUSTER_SERVER = 'https://kubernetes.default.svc';
/** How long a new tenant RoleBinding may take to reach the API server's RBAC cache. */
const RBAC_PROPAGATION_MS = 15_000;

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

function headerOf(obj: KubernetesObject): ObjectHeader {
  return header(obj.apiVersion ?? '', obj.kind ?? '', obj.metadata?.namespace, obj.metadata?.name ?? '');
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
 * Instances on Kubernetes. Every object is written with server-side
 * apply (field manager `ctrlplane`, force), so a provision retried after a crash converges instead of failing with
 * AlreadyExists. One instance = a Deployment or StatefulSet `<instance id with _ → ->`, its Service and one env
 * Secret per service, all labelled with `ctrlplane.io/instance-id`, `ctrlplane.io/tenant-id` and
 * `ctrlplane.io/managed-by=ctrlplane`.
 *
 * Tenants are untrusted, and the cluster is the boundary: each tenant has its namespace (Pod Security, quota,
 * limits, default-deny network; tenant-namespace.ts), and its objects are written by impersonating its own
 * ServiceAccount, bound to a Role of that namespace only. On top of that nothing a tenant sends leaves the instance's
 * namespace (manifests, helm and Argo CD destinations alike), no cluster-scoped object is written for a tenant, no
 * pod reaches the host or another instance's Secrets (pod-policy.ts), and no object of another instance (or no
 * object ctrlplane does not manage) is taken over or deleted.
 */
export class KubernetesProvider implements Provider, ManifestEngine, ArgoEngine, HelmEngine {
  readonly kubeConfig: KubeConfig;
  private readonly objects: KubeObjects;
  private readonly apps: AppsV1Api;
  private readonly versionApi: VersionApi;
  private readonly namespace: string;
  private readonly namespacePerTenant: boolean;
  private readonly namespacePrefix: string;
  private readonly systemNamespace: string;
  private readonly podSecurity: PodSecurityLevel;
  private readonly runAsUser: number;
  private readonly tenantLimits: TenantNamespaceLimits;
  private readonly serviceExposure: readonly ServiceExposure[];
  private readonly tenantApiGroups: readonly string[];
  private readonly labels: Record<string, string>;
  private readonly imagePullSecrets: string[];
  private readonly argoRepos: readonly string[];
  private readonly argoNamespace: string;
  private readonly argoDestServer: string;
  private readonly region: string;
  private readonly helmCommand: string | false;
  private readonly helmRepos: readonly string[];
  /** Clients acting as a tenant's ServiceAccount (impersonation), by its user name. */
  private readonly tenantClients = new Map<string, KubeObjects>();
  private readonly log: KubernetesProviderLogger;
  /** instance id → namespace, learned at provision or by lookup (only consulted with namespacePerTenant). */
  private readonly knownNamespaces = new Map<string, string>();
  /** Tenant namespaces this process has already applied. */
  private readonly ensuredNamespaces = new Set<string>();
  /** The system namespace and the Service admission policy, applied once per process. */
  private clusterPolicyApplied = false;

  constructor(options: KubernetesProviderOptions = {}) {
    const { kc } = buildKubeConfig(options);
    this.kubeConfig = kc;
    this.objects = KubeObjects.create(kc);
    this.apps = kc.makeApiClient(AppsV1Api);
    this.versionApi = kc.makeApiClient(VersionApi);
    this.namespacePerTenant = options.namespacePerTenant ?? true;
    if (this.namespacePerTenant && options.namespace !== undefined) {
      throw new Error(
        'invalid kubernetes provider configuration: `namespace` is the namespace shared by all tenants, which needs namespacePerTenant: false',
      );
    }
    this.namespace = options.namespace ?? 'default';
    validateNamespaceName(this.namespace, 'namespace');
    this.namespacePrefix = options.namespacePrefix ?? 'ctrlplane';
    if (this.namespacePerTenant) validateNamespaceName(this.namespacePrefix, 'namespace prefix');
    this.systemNamespace = options.systemNamespace ?? 'ctrlplane-system';
    validateNamespaceName(this.systemNamespace, 'system namespace');
    this.podSecurity = options.podSecurity ?? 'restricted';
    this.runAsUser = options.runAsUser ?? 65532;
    if (!Number.isInteger(this.runAsUser) || this.runAsUser < 1) {
      throw new Error(
        `invalid kubernetes provider configuration: runAsUser ${this.runAsUser} is not a non-root UID`,
      );
    }
    this.tenantLimits = options.tenantLimits ?? DEFAULT_TENANT_LIMITS;
    this.serviceExposure = [...(options.serviceExposure ?? [])];
    this.tenantApiGroups = [...(options.tenantApiGroups ?? [])];
    this.labels = { ...options.labels };
    this.imagePullSecrets = [...(options.imagePullSecrets ?? [])];
    this.argoRepos = [...(options.argoRepos ?? [])];
    this.argoNamespace = options.argoNamespace ?? 'argocd';
    validateNamespaceName(this.argoNamespace, 'argo namespace');
    this.argoDestServer = options.argoDestServer?.trim() || IN_CLUSTER_SERVER;
    this.region = options.region ?? 'local';
    this.helmCommand = options.helm ?? 'helm';
    this.helmRepos = [...(options.helmRepos ?? [])];
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

  /**
   * The identity a tenant's objects are written as (a ServiceAccount of the system namespace bound to a Role of the
   * tenant namespace only); undefined in the shared namespace, where the control plane writes them itself.
   */
  tenantIdentity(tenantId: string): TenantIdentity | undefined {
    return this.namespacePerTenant
      ? tenantIdentity(this.systemNamespace, this.namespaceFor(tenantId))
      : undefined;
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
      runAsUser: this.runAsUser,
    });
    await this.ensureNamespace(api, namespace, req.tenant_id);
    // Reads as the control plane, writes as the tenant.
    const writer = this.writerFor(namespace, opts.signal);

    // Nothing of another instance is taken over (an unlabelled object, as a plain create of an earlier attempt
    // leaves it, is adopted).
    const otherKind: WorkloadKindName = plan.kind === 'stateful_set' ? 'Deployment' : 'StatefulSet';
    const other = await ignoreNotFound(api.read(header('apps/v1', otherKind, namespace, plan.name)));
    const planned: KubernetesObject[] = [
      plan.workload,
      ...plan.secrets,
      ...(plan.service ? [plan.service] : []),
    ];
    for (const obj of planned) {
      const existing = await ignoreNotFound(api.read(headerOf(obj)));
      refuseForeignOwner(existing, obj, req.instance_id, { adoptUnlabelled: true });
    }
    refuseForeignOwner(other, header('apps/v1', otherKind, namespace, plan.name), req.instance_id, {
      adoptUnlabelled: true,
    });

    // The kind of an instance does not change in practice; if it did, the old workload and its Service go first
    // (a Service cannot switch between ClusterIP and headless in place).
    if (other) {
      await this.deleteIfPresent(writer, header('apps/v1', otherKind, namespace, plan.name), 'Foreground');
      await this.deleteIfPresent(writer, header('v1', 'Service', namespace, plan.name));
      progress(`removed ${otherKind} ${plan.name} of the previous kind`);
    }

    try {
      const applied: V1Secret[] = [];
      for (const secret of plan.secrets) {
        applied.push(await this.apply(writer, secret));
        progress(`applied Secret ${secret.metadata?.name}`);
      }
      // An env change rolls the pods: the hash follows the Secrets' versions, never their values.
      const annotations = plan.workload.spec?.template.metadata?.annotations;
      if (annotations) {
        annotations[ANNOTATION.configHash] = hashOf(
          applied.map((s) => [s.metadata?.name, s.metadata?.uid, s.metadata?.resourceVersion]),
        );
      }
      if (this.namespacePerTenant) {
        await this.apply(
          writer,
          instanceNetworkPolicy(req.instance_id, namespace, plan.workload.metadata?.labels ?? {}),
        );
      }
      await this.apply(writer, plan.workload);
      progress(`applied ${plan.workload.kind} ${plan.name}`);
      if (plan.service) {
        await this.apply(writer, plan.service);
        progress(`applied Service ${plan.name}`);
      } else {
        await this.deleteIfPresent(writer, header('v1', 'Service', namespace, plan.name));
      }
    } catch (err) {
      // A tenant namespace deleted behind our back is re-created by the retry.
      if (isNotFound(err)) this.ensuredNamespaces.delete(namespace);
      throw err;
    }

    // Env Secrets of services that no longer have env (or no longer exist), and the env ConfigMaps of earlier
    // versions (env is no longer kept in ConfigMaps).
    const envSelector = `${instanceSelector(req.instance_id)},${LABEL.component}=env`;
    const wanted = new Set(plan.secrets.map((secret) => secret.metadata?.name));
    const envSecrets = await this.listLabelled<V1Secret>(api, 'Secret', namespace, envSelector);
    for (const secret of envSecrets.items) {
      const name = secret.metadata?.name ?? '';
      if (wanted.has(name)) continue;
      await this.deleteIfPresent(writer, header('v1', 'Secret', namespace, name));
      progress(`removed Secret ${name}`);
    }
    const envMaps = await this.listLabelled<V1ConfigMap>(api, 'ConfigMap', namespace, envSelector);
    for (const cm of envMaps.items) {
      const name = cm.metadata?.name ?? '';
      await this.deleteIfPresent(writer, header('v1', 'ConfigMap', namespace, name));
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
    await this.deleteIfPresent(
      api,
      header('networking.k8s.io/v1', 'NetworkPolicy', namespace, instanceNetworkPolicyName(instanceId)),
    );
    opts.progress?.(`deleted workload and Service ${name}`);

    // Env Secrets, and env ConfigMaps of earlier versions (not a manifests source's tracking record, which
    // deleteManifests owns).
    const selector = instanceSelector(instanceId);
    const secrets = await this.listLabelled<V1Secret>(
      api,
      'Secret',
      namespace,
      `${selector},${LABEL.component}=env`,
    );
    for (const secret of secrets.items) {
      await this.deleteIfPresent(api, header('v1', 'Secret', namespace, secret.metadata?.name ?? ''));
    }
    const maps = await this.listLabelled<V1ConfigMap>(
      api,
      'ConfigMap',
      namespace,
      `${selector},${LABEL.component}!=manifests`,
    );
    for (const cm of maps.items) {
      await this.deleteIfPresent(api, header('v1', 'ConfigMap', namespace, cm.metadata?.name ?? ''));
    }
    // Claims of a StatefulSet's volumeClaimTemplates carry the selector labels.
    const claims = await this.listLabelled<KubernetesObject>(
      api,
      'PersistentVolumeClaim',
      namespace,
      selector,
    );
    for (const pvc of claims.items) {
      await this.deleteIfPresent(
        api,
        header('v1', 'PersistentVolumeClaim', namespace, pvc.metadata?.name ?? ''),
      );
    }
    opts.progress?.(
      `deleted ${secrets.items.length} Secret(s), ${maps.items.length} ConfigMap(s) and ${claims.items.length} claim(s)`,
    );
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
   * Applies every object (server-side apply), labelled, into the instance namespace, records them in the ConfigMap
   * `<name>-manifests`, and prunes what an earlier apply created and this one no longer has. The record is written
   * before the objects (holding old and new) and after (holding the new set), so a crash at any point leaves nothing
   * untracked.
   *
   * Refused before anything is written (invalid_spec): a namespace other than the instance's (in `req.namespace` or
   * an object's metadata), a cluster-scoped kind, an object that exists and is not this instance's (another
   * instance's, or not managed by ctrlplane: foreign objects are never adopted), a reference to another instance's or
   * tenant's reserved labels, the kinds manifest-policy.ts refuses, and the pod templates and Services pod-policy.ts
   * refuses (naming the object, the path and the rule). The reserved labels win on the objects and on their pod
   * templates; Service, NetworkPolicy and PodDisruptionBudget selectors are narrowed to the instance's pods; pod
   * templates get the restricted Pod Security defaults where they set nothing. In a tenant namespace the objects are
   * written as the tenant (impersonated), beside a NetworkPolicy opening the default deny within the instance.
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
    if (req.namespace && req.namespace !== instanceNamespace) {
      throw new PermanentProviderError(
        `a manifests source is applied in its instance's namespace ${instanceNamespace}, not in ${req.namespace}`,
        'invalid_spec',
      );
    }
    const objects = parseManifests(req.docs ?? []);
    if (objects.length === 0) throw new PermanentProviderError('the manifests source has no objects');

    const own = { instanceId: req.instance_id, tenantId: req.tenant_id };
    const reserved = instanceLabels(own);
    const trackingName = trackingConfigMapName(req.instance_id);
    const refs: ManifestRef[] = [];
    const seen = new Set<string>();
    for (const obj of objects) {
      const apiVersion = obj.apiVersion ?? '';
      const kind = obj.kind ?? '';
      const { group, version } = splitApiVersion(apiVersion);
      checkKind(obj, !this.namespacePerTenant);
      checkServiceExposure(obj, this.serviceExposure);
      for (const at of podSpecs(obj)) {
        checkPodSpec(obj, at);
        hardenPodSpec(at.spec, this.runAsUser);
      }
      const info = await this.resourceInfo(api, apiVersion, kind);
      if (!info) {
        throw new PermanentProviderError(
          `the cluster does not serve ${kind} in ${apiVersion}`,
          'invalid_spec',
        );
      }
      if (!info.namespaced) refuseClusterScoped(obj);
      const metadata = obj.metadata ?? {};
      if (metadata.namespace && metadata.namespace !== instanceNamespace) {
        throw new PermanentProviderError(
          `${kind} ${metadata.name} names namespace ${metadata.namespace}: a manifests source may only write to its instance's namespace ${instanceNamespace}`,
          'invalid_spec',
        );
      }
      metadata.namespace = instanceNamespace;
      delete metadata.resourceVersion;
      if (group === '' && kind === 'ConfigMap' && metadata.name === trackingName) {
        throw new PermanentProviderError(
          `ConfigMap ${trackingName} is the instance's tracking record; a manifest may not write it`,
          'invalid_spec',
        );
      }
      // The object's own labels, then the configured ones, the caller's, and the reserved ones (which win), on the
      // object and on its pod templates.
      metadata.labels = { ...metadata.labels, ...this.labels, ...req.labels, ...reserved };
      obj.metadata = metadata;
      forceTemplateLabels(obj, reserved);
      refuseForeignReferences(obj, own);
      scopeSelectors(obj, req.instance_id);
      const ref: ManifestRef = {
        apiVersion,
        kind,
        group,
        version,
        resource: info.plural,
        namespaced: true,
        namespace: instanceNamespace,
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

    await this.refuseForeignPodReferences(api, objects, instanceNamespace, req.instance_id);
    // Nothing is taken over: an existing object must already be this instance's (checked here for all of them,
    // before anything is written, and again right before each apply).
    for (const obj of objects) {
      refuseForeignOwner(await ignoreNotFound(api.read(headerOf(obj))), obj, req.instance_id, {
        adoptUnlabelled: false,
      });
    }

    await this.ensureNamespace(api, instanceNamespace, req.tenant_id);
    // Reads as the control plane, writes as the tenant.
    const writer = this.writerFor(instanceNamespace, opts.signal);
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
    await this.writeTracking(writer, instanceNamespace, trackingName, trackingLabels, [...stale, ...refs]);
    if (this.namespacePerTenant) {
      await this.apply(writer, instanceNetworkPolicy(req.instance_id, instanceNamespace, trackingLabels));
    }

    for (const obj of objects) {
      try {
        await this.applyOwned(writer, obj, req.instance_id);
      } catch (err) {
        if (isNotFound(err)) {
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
      if (await this.deleteOwnedRef(writer, ref, req.instance_id))
        opts.progress?.(`pruned ${ref.kind} ${ref.name}`);
    }
    await this.writeTracking(writer, instanceNamespace, trackingName, trackingLabels, refs);

    this.knownNamespaces.set(req.instance_id, instanceNamespace);
    this.log.info(
      { instance_id: req.instance_id, objects: refs.length, pruned: stale.length },
      'kubernetes manifests applied',
    );
    return {
      provider_ref: providerRef(instanceNamespace, req.instance_id),
      endpoints: [],
      metadata: { objects: String(refs.length), namespace: instanceNamespace },
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
      if (await this.deleteOwnedRef(api, ref, instanceId)) opts.progress?.(`deleted ${ref.kind} ${ref.name}`);
    }
    await this.deleteIfPresent(
      api,
      header('networking.k8s.io/v1', 'NetworkPolicy', namespace, instanceNetworkPolicyName(instanceId)),
    );
    await this.deleteIfPresent(api, header('v1', 'ConfigMap', namespace, trackingName));
    this.knownNamespaces.delete(instanceId);
    this.log.info({ instance_id: instanceId, objects: refs.length }, 'kubernetes manifests deleted');
  }

  /** Existence of every recorded object: no readiness is judged. */
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
    if (this.argoRepos.length === 0) throw argoDisabled();
    const api = this.objects.withSignal(opts.signal);
    const instanceNamespace = this.namespaceFor(req.tenant_id);
    // One AppProject per tenant, named like its namespace: Argo CD's own rights are bounded by it alone.
    const project = tenantNamespace(this.namespacePrefix, req.tenant_id);
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
      project,
      destinationServer: this.argoDestServer,
      destinationNamespace: instanceNamespace,
    });
    checkArgoRepo(req.app.repo_url, this.argoRepos);
    await this.ensureNamespace(api, instanceNamespace, req.tenant_id);
    try {
      await this.apply(
        api,
        argoProject({
          name: project,
          namespace: this.argoNamespace,
          labels: { ...this.labels, [LABEL.managedBy]: MANAGED_BY, [LABEL.tenantId]: req.tenant_id },
          repos: this.argoRepos,
          destinationServer: this.argoDestServer,
          destinationNamespace: instanceNamespace,
        }),
      );
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
    // The release goes to the instance namespace, whatever the source asks for (a different one is refused).
    const namespace = this.namespaceFor(req.tenant_id);
    for (const asked of [req.namespace, req.chart?.namespace]) {
      if (asked && asked !== namespace) {
        throw new PermanentProviderError(
          `a helm source is installed in its instance's namespace ${namespace}, not in ${asked}`,
          'invalid_spec',
        );
      }
    }
    checkChartSource(req.chart, this.helmRepos);
    const release = resourceName(req.instance_id);
    const rendered = await withTempDir(async (dir) => {
      const values = req.chart.values ?? {};
      const valuesFile =
        Object.keys(values).length > 0
          ? await writePrivate(join(dir, 'values.json'), JSON.stringify(values))
          : undefined;
      opts.progress?.(`helm template ${release}`);
      try {
        return await runHelm(
          { binary, signal: opts.signal },
          templateArgs(release, namespace, req.chart, valuesFile),
          offlineHelmEnv(dir),
        );
      } catch (err) {
        const text = errorMessage(err);
        if (
          /not found|no chart|invalid|parse error|unable to parse|failed to parse|template: |execution error|yaml/i.test(
            text,
          )
        ) {
          throw new PermanentProviderError(text, 'invalid_spec');
        }
        throw err;
      }
    });
    // What the chart rendered goes through the manifests policy and apply path, as the tenant.
    const applied = await this.applyManifests(
      { instance_id: req.instance_id, tenant_id: req.tenant_id, docs: [rendered] },
      opts,
    );
    this.log.info({ instance_id: req.instance_id, release, namespace }, 'helm chart rendered and applied');
    return {
      provider_ref: `helm:${namespace}/${release}`,
      endpoints: [],
      metadata: { ...applied.metadata, release },
    };
  }

  async helmUninstall(instanceId: string, opts: CallOptions = {}): Promise<void> {
    await this.deleteManifests(instanceId, opts);
  }

  async helmStatus(instanceId: string, opts: CallOptions = {}): Promise<InstanceStatus> {
    const status = await this.manifestStatus(instanceId, opts);
    if (status.message === 'no manifests applied') {
      return { state: 'destroyed', ready: false, restarts: 0, endpoints: [], message: 'no helm release' };
    }
    return status;
  }

  // --- internals -------------------------------------------------------------------------------------------

  private helmBinary(): string | undefined {
    return this.helmCommand === false ? undefined : findExecutable(this.helmCommand);
  }

  /** Server-side apply, field manager `ctrlplane`, force: create or converge, never AlreadyExists. */
  private async apply<T extends KubernetesObject>(api: KubeObjects, obj: T): Promise<T> {
    try {
      return await api.patch(
        fromWire(obj),
        undefined,
        undefined,
        FIELD_MANAGER,
        true,
        PatchStrategy.ServerSideApply,
      );
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

  /**
   * Deletes a recorded object if it is still this instance's (a record is only a list of names: an object that now
   * carries another instance's label, or none, is left alone). True when it was deleted.
   */
  private async deleteOwnedRef(api: KubeObjects, ref: ManifestRef, instanceId: string): Promise<boolean> {
    api.remember(ref.apiVersion, ref.kind, { plural: ref.resource, namespaced: ref.namespaced });
    const target = header(ref.apiVersion, ref.kind, ref.namespace, ref.name);
    const live = await ignoreNotFound(api.read(target));
    if (!live) return false;
    if (live.metadata?.labels?.[LABEL.instanceId] !== instanceId) {
      this.log.warn(
        { instance_id: instanceId, kind: ref.kind, namespace: ref.namespace, name: ref.name },
        'recorded object is not this instance’s any more; left alone',
      );
      return false;
    }
    await this.deleteIfPresent(api, target);
    return true;
  }

  /**
   * Server-side apply of a tenant's object that must not take over anything: re-read right before, refused when it
   * is not this instance's, and conditional on the version read (a change in between is a 409, retried with a fresh
   * read).
   */
  private async applyOwned(api: KubeObjects, obj: KubernetesObject, instanceId: string): Promise<void> {
    await this.withConflictRetry(async () => {
      const existing = await ignoreNotFound(api.read(headerOf(obj)));
      refuseForeignOwner(existing, obj, instanceId, { adoptUnlabelled: false });
      const rv = existing?.metadata?.resourceVersion;
      await this.apply(api, rv ? { ...obj, metadata: { ...obj.metadata, resourceVersion: rv } } : obj);
    });
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

  /**
   * The client a tenant namespace's objects are written with: one that impersonates the tenant's ServiceAccount
   * (so the API server's RBAC and Pod Security judge what the tenant asked for), or in the shared namespace the
   * control plane's own.
   */
  private writerFor(namespace: string, signal: AbortSignal | undefined): KubeObjects {
    if (!this.namespacePerTenant) return this.objects.withSignal(signal);
    const { username } = tenantIdentity(this.systemNamespace, namespace);
    let client = this.tenantClients.get(username);
    if (!client) {
      client = KubeObjects.create(impersonating(this.kubeConfig, username));
      this.tenantClients.set(username, client);
    }
    return client.withSignal(signal);
  }

  /**
   * With namespacePerTenant, applies the tenant namespace and what makes it a boundary (tenant-namespace.ts), once
   * per process, and waits until the tenant's RoleBinding is in effect; otherwise nothing.
   */
  private async ensureNamespace(api: KubeObjects, namespace: string, tenantId: string): Promise<void> {
    if (!this.namespacePerTenant || namespace !== this.namespaceFor(tenantId)) return;
    if (this.ensuredNamespaces.has(namespace)) return;
    if (!this.clusterPolicyApplied) {
      const systemLabels = { ...this.labels, [LABEL.managedBy]: MANAGED_BY };
      await this.apply(api, {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: this.systemNamespace, labels: systemLabels },
      });
      for (const obj of serviceExposurePolicy(this.systemNamespace, this.serviceExposure, systemLabels)) {
        await this.apply(api, obj);
      }
      this.clusterPolicyApplied = true;
    }
    const objects = tenantNamespaceObjects({
      namespace,
      tenantId,
      identity: tenantIdentity(this.systemNamespace, namespace),
      podSecurity: this.podSecurity,
      limits: this.tenantLimits,
      apiGroups: this.tenantApiGroups,
      labels: this.labels,
    });
    for (const obj of objects) await this.apply(api, obj);
    const writer = this.writerFor(namespace, undefined);
    const deadline = Date.now() + RBAC_PROPAGATION_MS;
    for (;;) {
      try {
        await writer.list(
          'v1',
          'ConfigMap',
          namespace,
          undefined,
          undefined,
          undefined,
          undefined,
          undefined,
          1,
        );
        break;
      } catch (err) {
        if (statusCode(err) !== 403 || Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    await this.awaitServicePolicy(writer, namespace, deadline);
    this.ensuredNamespaces.add(namespace);
  }

  /**
   * Waits until the API server enforces the Service admission policy in the namespace (a new policy or binding takes
   * effect a moment after it is written): a dry-run create of a refused Service, as the tenant, must be refused.
   */
  private async awaitServicePolicy(writer: KubeObjects, namespace: string, deadline: number): Promise<void> {
    const spec: Record<string, unknown> = { ports: [{ port: 80 }] };
    if (!this.serviceExposure.includes('NodePort')) spec.type = 'NodePort';
    else if (!this.serviceExposure.includes('LoadBalancer')) spec.type = 'LoadBalancer';
    else if (!this.serviceExposure.includes('ExternalIPs')) spec.externalIPs = ['192.0.2.1'];
    else return;
    const probe = {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'ctrlplane-admission-probe', namespace },
      spec,
    } as KubernetesObject;
    for (;;) {
      try {
        await writer.create(fromWire(probe), undefined, 'All');
      } catch (err) {
        if (statusCode(err) === 403) return;
        throw err;
      }
      if (Date.now() > deadline) {
        throw new Error(`the Service admission policy is not in effect in namespace ${namespace} yet`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /**
   * Refuses a pod that reads a Secret, ConfigMap or claim the instance does not own: one of the same source, or an
   * existing one labelled as this instance's. Another instance's (of this tenant, or of any tenant in a shared
   * namespace) is refused, and so is a name that does not exist yet (someone else could create it).
   */
  private async refuseForeignPodReferences(
    api: KubeObjects,
    objects: KubernetesObject[],
    namespace: string,
    instanceId: string,
  ): Promise<void> {
    const inSource = new Set(
      objects.filter((o) => o.apiVersion === 'v1').map((o) => `${o.kind}/${o.metadata?.name}`),
    );
    for (const obj of objects) {
      for (const at of podSpecs(obj)) {
        for (const ref of podReferences(at)) {
          if (inSource.has(`${ref.kind}/${ref.name}`)) continue;
          const live = await ignoreNotFound(api.read(header('v1', ref.kind, namespace, ref.name)));
          if (live?.metadata?.labels?.[LABEL.instanceId] === instanceId) continue;
          refusePod(
            obj,
            ref.path,
            'foreign-reference',
            `${ref.kind} ${ref.name} is not this instance's (${live ? 'it exists and belongs to another instance or to no one' : 'it is neither in this source nor an object of the instance'})`,
          );
        }
      }
    }
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
      ['v1', 'Secret'],
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

  /** The objects of a core (v1) kind in `namespace` that match a label selector. */
  private async listLabelled<T extends KubernetesObject>(
    api: KubeObjects,
    kind: string,
    namespace: string,
    labelSelector: string,
  ): Promise<{ items: T[] }> {
    return api.list<T>('v1', kind, namespace, undefined, undefined, undefined, undefined, labelSelector);
  }

  private async pods(api: KubeObjects, namespace: string, instanceId: string): Promise<V1Pod[]> {
    const list = await this.listLabelled<V1Pod>(api, 'Pod', namespace, instanceSelector(instanceId));
    return list.items;
  }
}

/** The same cluster and credentials, every request made as `username` (Impersonate-User). */
function impersonating(kc: KubeConfig, username: string): KubeConfig {
  const current = kc.getCurrentUser()?.name;
  const copy = new KubeConfig();
  copy.loadFromOptions({
    clusters: kc.getClusters(),
    contexts: kc.getContexts(),
    currentContext: kc.getCurrentContext(),
    users: kc.getUsers().map((u) => (u.name === current ? { ...u, impersonateUser: username } : u)),
  });
  return copy;
}

interface PodMetrics extends KubernetesObject {
  containers?: Array<{ name?: string; usage?: { cpu?: string; memory?: string } }>;
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

/**
 * Refuses (invalid_spec) to write over `existing` unless it is the instance's own: it carries another instance's
 * `ctrlplane.io/instance-id`, or (unless `adoptUnlabelled`) no ctrlplane label at all, i.e. an object ctrlplane
 * does not manage.
 */
function refuseForeignOwner(
  existing: KubernetesObject | undefined,
  wanted: KubernetesObject,
  instanceId: string,
  opts: { adoptUnlabelled: boolean },
): void {
  if (!existing) return;
  const owner = existing.metadata?.labels?.[LABEL.instanceId];
  if (owner === instanceId) return;
  const what = `${wanted.kind} ${wanted.metadata?.namespace ? `${wanted.metadata.namespace}/` : ''}${wanted.metadata?.name}`;
  if (owner !== undefined) {
    throw new PermanentProviderError(
      `${what} already exists and is owned by another instance`,
      'invalid_spec',
    );
  }
  if (opts.adoptUnlabelled) return;
  throw new PermanentProviderError(
    `${what} already exists and is not managed by ctrlplane (owned by another instance or by no one); it is not adopted`,
    'invalid_spec',
  );
}
