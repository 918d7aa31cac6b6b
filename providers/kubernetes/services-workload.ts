import {
  AppsV1Api,
  type KubernetesObject,
  PatchStrategy,
  setHeaderOptions,
  type V1ConfigMap,
  type V1Deployment,
  type V1Pod,
  type V1Secret,
  type V1StatefulSet,
} from '@kubernetes/client-node';
import type { ResourceSpec } from '../../domain/instance.ts';
import {
  type CallOptions,
  type ExecRequest,
  type ExecResult,
  type InstanceStatus,
  type LogLine,
  type LogOptions,
  PermanentProviderError,
  type ProvisionRequest,
  type ProvisionResult,
  type ResourceUsage,
} from '../provider.ts';
import type { KubernetesCluster } from './cluster.ts';
import {
  errorMessage,
  ignoreNotFound,
  isConflict,
  isNotFound,
  statusCode,
  translateError,
} from './errors.ts';
import { callOptions, type KubeObjects } from './kube-client.ts';
import { streamPodLog } from './log-stream.ts';
import { ANNOTATION, FIELD_MANAGER, instanceSelector, LABEL, resourceName } from './names.ts';
import {
  applyObject,
  deleteIfPresent,
  header,
  headerOf,
  refuseForeignOwner,
  withConflictRetry,
} from './object-writes.ts';
import { execInPod } from './pod-exec.ts';
import { cpuMillicores, memoryMiB, parseQuantity } from './quantity.ts';
import { deriveStatus } from './status.ts';
import { instanceNetworkPolicy, instanceNetworkPolicyName } from './tenant-namespace.ts';
import { endpointsOf, hashOf, planWorkload, resourceRequirements } from './workload.ts';

type Workload = V1Deployment | V1StatefulSet;
type WorkloadKindName = 'Deployment' | 'StatefulSet';

interface Located {
  namespace: string;
  name: string;
  kind: WorkloadKindName;
  workload: Workload;
}

const WORKLOAD_KINDS: readonly WorkloadKindName[] = ['Deployment', 'StatefulSet'];

const ZERO_USAGE: ResourceUsage = {
  cpu_percent: 0,
  memory_used_mb: 0,
  memory_limit_mb: 0,
  network_in_mb: 0,
  network_out_mb: 0,
};

function secondPrecisionNow(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function round(value: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/**
 * The services source on Kubernetes: one instance = a Deployment or StatefulSet `<instance id with _ → ->`
 * (workload.ts plans it), its Service and one env Secret per service, all labelled with
 * `ctrlplane.io/instance-id`, `ctrlplane.io/tenant-id` and `ctrlplane.io/managed-by=ctrlplane`, and in a tenant
 * namespace a NetworkPolicy opening the default deny within the instance. Start, stop, restart and scale act on
 * the workload; status, logs and usage read it and its pods.
 */
export class ServicesWorkload {
  private readonly apps: AppsV1Api;

  constructor(private readonly cluster: KubernetesCluster) {
    this.apps = cluster.kubeConfig.makeApiClient(AppsV1Api);
  }

  async provision(req: ProvisionRequest, opts: CallOptions = {}): Promise<ProvisionResult> {
    const api = this.cluster.reader(opts.signal);
    const progress = (detail: string) => opts.progress?.(detail);
    const namespace = this.cluster.namespaceFor(req.tenant_id);
    const plan = planWorkload(req, {
      namespace,
      labels: this.cluster.settings.labels,
      imagePullSecrets: this.cluster.settings.imagePullSecrets,
      runAsUser: this.cluster.settings.runAsUser,
    });
    await this.cluster.ensureNamespace(api, namespace, req.tenant_id);
    // Reads as the control plane, writes as the tenant.
    const writer = this.cluster.writerFor(namespace, opts.signal);

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
      await deleteIfPresent(writer, header('apps/v1', otherKind, namespace, plan.name), 'Foreground');
      await deleteIfPresent(writer, header('v1', 'Service', namespace, plan.name));
      progress(`removed ${otherKind} ${plan.name} of the previous kind`);
    }

    try {
      const applied: V1Secret[] = [];
      for (const secret of plan.secrets) {
        applied.push(await applyObject(writer, secret));
        progress(`applied Secret ${secret.metadata?.name}`);
      }
      // An env change rolls the pods: the hash follows the Secrets' versions, never their values.
      const annotations = plan.workload.spec?.template.metadata?.annotations;
      if (annotations) {
        annotations[ANNOTATION.configHash] = hashOf(
          applied.map((s) => [s.metadata?.name, s.metadata?.uid, s.metadata?.resourceVersion]),
        );
      }
      if (this.cluster.settings.namespacePerTenant) {
        await applyObject(
          writer,
          instanceNetworkPolicy(req.instance_id, namespace, plan.workload.metadata?.labels ?? {}),
        );
      }
      await applyObject(writer, plan.workload);
      progress(`applied ${plan.workload.kind} ${plan.name}`);
      if (plan.service) {
        await applyObject(writer, plan.service);
        progress(`applied Service ${plan.name}`);
      } else {
        await deleteIfPresent(writer, header('v1', 'Service', namespace, plan.name));
      }
    } catch (err) {
      // A tenant namespace deleted behind our back is re-created by the retry.
      if (isNotFound(err)) this.cluster.namespaceLost(namespace);
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
      await deleteIfPresent(writer, header('v1', 'Secret', namespace, name));
      progress(`removed Secret ${name}`);
    }
    const envMaps = await this.listLabelled<V1ConfigMap>(api, 'ConfigMap', namespace, envSelector);
    for (const cm of envMaps.items) {
      const name = cm.metadata?.name ?? '';
      await deleteIfPresent(writer, header('v1', 'ConfigMap', namespace, name));
      progress(`removed ConfigMap ${name}`);
    }

    this.cluster.rememberNamespace(req.instance_id, namespace);
    this.cluster.log.info(
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
    const api = this.cluster.reader(opts.signal);
    const namespace = await this.cluster.findNamespace(api, instanceId);
    if (!namespace) return;
    const name = resourceName(instanceId);
    for (const kind of WORKLOAD_KINDS) {
      await deleteIfPresent(api, header('apps/v1', kind, namespace, name), 'Foreground');
    }
    await deleteIfPresent(api, header('v1', 'Service', namespace, name));
    await deleteIfPresent(
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
      await deleteIfPresent(api, header('v1', 'Secret', namespace, secret.metadata?.name ?? ''));
    }
    const maps = await this.listLabelled<V1ConfigMap>(
      api,
      'ConfigMap',
      namespace,
      `${selector},${LABEL.component}!=manifests`,
    );
    for (const cm of maps.items) {
      await deleteIfPresent(api, header('v1', 'ConfigMap', namespace, cm.metadata?.name ?? ''));
    }
    // Claims of a StatefulSet's volumeClaimTemplates carry the selector labels.
    const claims = await this.listLabelled<KubernetesObject>(
      api,
      'PersistentVolumeClaim',
      namespace,
      selector,
    );
    for (const pvc of claims.items) {
      await deleteIfPresent(api, header('v1', 'PersistentVolumeClaim', namespace, pvc.metadata?.name ?? ''));
    }
    opts.progress?.(
      `deleted ${secrets.items.length} Secret(s), ${maps.items.length} ConfigMap(s) and ${claims.items.length} claim(s)`,
    );
    this.cluster.forgetNamespace(instanceId);
    this.cluster.log.info({ instance_id: instanceId, namespace, name }, 'kubernetes instance deleted');
  }

  /** Scales to 0, recording the replica count in `ctrlplane.io/replicas-before-stop`. Nothing there: nothing to do. */
  async stop(instanceId: string, opts: CallOptions = {}): Promise<void> {
    const api = this.cluster.reader(opts.signal);
    await withConflictRetry(this.cluster.log, async () => {
      const found = await this.locate(api, instanceId);
      if (!found) {
        this.cluster.log.warn({ instance_id: instanceId }, 'stop: no workload, nothing to stop');
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
    const api = this.cluster.reader(opts.signal);
    await withConflictRetry(this.cluster.log, async () => {
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
    const api = this.cluster.reader(opts.signal);
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
    const api = this.cluster.reader(opts.signal);
    const quantities = resourceRequirements({
      cpu_millis: resources.cpu_millis,
      memory_mb: resources.memory_mb,
    });
    const replicas = Math.floor(resources.replicas ?? 0);
    if (!quantities && replicas <= 0) return;

    await withConflictRetry(this.cluster.log, async () => {
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
    const api = this.cluster.reader(opts.signal);
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
    const api = this.cluster.reader(opts.signal);
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
        this.cluster.kubeConfig,
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

  /**
   * A command in one service's container (default: the main service) of one pod of the instance (a ready one
   * first), through pods/exec as the control plane: the pod is the instance's own, found by its labels in its
   * namespace; the tenant names only the service. No running pod → invalid_state.
   */
  async exec(instanceId: string, request: ExecRequest, opts: CallOptions = {}): Promise<ExecResult> {
    const api = this.cluster.reader(opts.signal);
    const found = await this.requireWorkload(api, instanceId);
    const pod = pickPod(await this.pods(api, found.namespace, instanceId));
    if (!pod?.metadata?.name || pod.status?.phase !== 'Running') {
      throw new PermanentProviderError(`instance ${instanceId} has no running pod`, 'invalid_state');
    }
    const container =
      request.service_name ||
      found.workload.metadata?.annotations?.[ANNOTATION.mainService] ||
      pod.spec?.containers[0]?.name ||
      '';
    const names = (pod.spec?.containers ?? []).map((c) => c.name);
    if (!names.includes(container)) {
      throw new PermanentProviderError(
        `instance ${instanceId} has no service "${container}" that runs (services: ${names.join(', ')})`,
        'invalid_request',
      );
    }
    const result = await execInPod(
      this.cluster.kubeConfig,
      { namespace: found.namespace, pod: pod.metadata.name, container },
      request,
      opts.signal,
    );
    return { ...result, service: container };
  }

  /** Usage from metrics.k8s.io summed over the instance's pods; zero when there are none or the API is absent. */
  async resources(instanceId: string, opts: CallOptions = {}): Promise<ResourceUsage> {
    try {
      const api = this.cluster.reader(opts.signal);
      const namespace = await this.cluster.findNamespace(api, instanceId);
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
      this.cluster.log.warn(
        { instance_id: instanceId, err: errorMessage(err) },
        'resource metrics unavailable',
      );
      return { ...ZERO_USAGE };
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

  private async locate(api: KubeObjects, instanceId: string): Promise<Located | undefined> {
    const namespace = await this.cluster.findNamespace(api, instanceId);
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
    const namespace = (await this.cluster.findNamespace(api, instanceId)) ?? this.cluster.settings.namespace;
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
