import { type KubeConfig, VersionApi } from '@kubernetes/client-node';
import type { ResourceSpec } from '../../domain/instance.ts';
import type {
  CallOptions,
  Capability,
  ExecRequest,
  ExecResult,
  HealthStatus,
  InstanceStatus,
  LogLine,
  LogOptions,
  Provider,
  ProviderInfo,
  ProvisionRequest,
  ProvisionResult,
  ResourceUsage,
} from '../provider.ts';
import { KubernetesArgo } from './argo-engine.ts';
import { KubernetesCluster } from './cluster.ts';
import { buildKubeConfig, type KubernetesProviderLogger, type KubernetesProviderOptions } from './config.ts';
import { errorMessage } from './errors.ts';
import { KubernetesHelm } from './helm-engine.ts';
import { callOptions } from './kube-client.ts';
import { KubernetesChangeFeed } from './kubernetes-change-feed.ts';
import { KubernetesManifests } from './manifests-engine.ts';
import { ServicesWorkload } from './services-workload.ts';
import { resolveSettings } from './settings.ts';
import type { TenantIdentity } from './tenant-namespace.ts';

const HEALTH_TIMEOUT_MS = 2000;

const noopLogger: KubernetesProviderLogger = { info: () => {}, warn: () => {} };

/**
 * Instances on Kubernetes: the services source (services-workload.ts) on the provider's own methods, and the
 * manifests, helm and argocd sources on its `engines` (manifests-engine.ts, helm-engine.ts, argo-engine.ts), all
 * sharing one KubernetesCluster (cluster.ts). Every object is written with server-side apply (object-writes.ts),
 * so a call retried after a crash converges instead of failing with AlreadyExists.
 *
 * Tenants are untrusted, and the cluster is the boundary: each tenant has its namespace (Pod Security, quota,
 * limits, default-deny network; tenant-namespace.ts), and its objects are written by impersonating its own
 * ServiceAccount, bound to a Role of that namespace only. On top of that nothing a tenant sends leaves the instance's
 * namespace (manifests, helm and Argo CD destinations alike), no cluster-scoped object is written for a tenant, no
 * pod reaches the host or another instance's Secrets (pod-policy.ts), and no object of another instance (or no
 * object ctrlplane does not manage) is taken over or deleted.
 */
export class KubernetesProvider implements Provider {
  readonly kubeConfig: KubeConfig;
  readonly engines: {
    readonly manifests: KubernetesManifests;
    readonly helm: KubernetesHelm;
    readonly argocd: KubernetesArgo;
  };
  private readonly cluster: KubernetesCluster;
  private readonly services: ServicesWorkload;
  private readonly versionApi: VersionApi;
  readonly changeFeed: KubernetesChangeFeed;

  constructor(options: KubernetesProviderOptions = {}) {
    const { kc } = buildKubeConfig(options);
    this.kubeConfig = kc;
    this.versionApi = kc.makeApiClient(VersionApi);
    this.changeFeed = new KubernetesChangeFeed(kc);
    this.cluster = new KubernetesCluster(kc, resolveSettings(options), options.logger ?? noopLogger);
    this.services = new ServicesWorkload(this.cluster);
    const manifests = new KubernetesManifests(this.cluster);
    this.engines = {
      manifests,
      helm: new KubernetesHelm(this.cluster, manifests),
      argocd: new KubernetesArgo(this.cluster),
    };
  }

  info(): ProviderInfo {
    return { name: 'kubernetes', version: '0.1.0', region: this.cluster.settings.region };
  }

  /** The argocd engine is advertised even while no repository is allowed (it then refuses, naming why). */
  capabilities(): Capability[] {
    const caps: Capability[] = [
      'provision',
      'deploy',
      'scale',
      'logs',
      'exec',
      'volumes',
      'strategy:rolling',
      'source:manifests',
      'source:argocd',
    ];
    if (this.engines.helm.binary()) caps.push('source:helm');
    return caps;
  }

  /** The namespace of a tenant's instances. */
  namespaceFor(tenantId: string): string {
    return this.cluster.namespaceFor(tenantId);
  }

  /**
   * The identity a tenant's objects are written as (a ServiceAccount of the system namespace bound to a Role of the
   * tenant namespace only); undefined in the shared namespace, where the control plane writes them itself.
   */
  tenantIdentity(tenantId: string): TenantIdentity | undefined {
    return this.cluster.tenantIdentity(tenantId);
  }

  // --- services source (services-workload.ts) --------------------------------------------------------------

  provision(req: ProvisionRequest, opts?: CallOptions): Promise<ProvisionResult> {
    return this.services.provision(req, opts);
  }

  deprovision(instanceId: string, opts?: CallOptions): Promise<void> {
    return this.services.deprovision(instanceId, opts);
  }

  /** Scales to 0, recording the replica count in `ctrlplane.io/replicas-before-stop`. Nothing there: nothing to do. */
  stop(instanceId: string, opts?: CallOptions): Promise<void> {
    return this.services.stop(instanceId, opts);
  }

  /** Restores the replica count `stop` recorded (1 when none was). */
  start(instanceId: string, opts?: CallOptions): Promise<void> {
    return this.services.start(instanceId, opts);
  }

  /** A rolling restart, as `kubectl rollout restart` does. */
  restart(instanceId: string, opts?: CallOptions): Promise<void> {
    return this.services.restart(instanceId, opts);
  }

  scale(instanceId: string, resources: ResourceSpec, opts?: CallOptions): Promise<void> {
    return this.services.scale(instanceId, resources, opts);
  }

  status(instanceId: string, opts?: CallOptions): Promise<InstanceStatus> {
    return this.services.status(instanceId, opts);
  }

  logs(instanceId: string, options?: LogOptions, opts?: CallOptions): AsyncGenerator<LogLine> {
    return this.services.logs(instanceId, options, opts);
  }

  /**
   * No restartService: an instance's services are containers of one pod, and deleting it would restart all of
   * them. No stop signal or timeout either: stop scales to 0 and the kubelet sends the image's STOPSIGNAL after
   * the pod's terminationGracePeriodSeconds.
   */
  exec(instanceId: string, request: ExecRequest, opts?: CallOptions): Promise<ExecResult> {
    return this.services.exec(instanceId, request, opts);
  }

  resources(instanceId: string, opts?: CallOptions): Promise<ResourceUsage> {
    return this.services.resources(instanceId, opts);
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
}
