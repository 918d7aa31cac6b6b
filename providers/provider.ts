import type { Endpoint, ResourceSpec, ServiceSpec, WorkloadKind } from '../domain/instance.ts';
import type { InstanceState } from '../domain/instance-state.ts';
import type { StopSignal } from '../domain/schemas/stop-options.ts';
import type { ArgoCDSource, RenderedHelm } from '../domain/sources/deployment-source.ts';
import type { ChangeFeed } from './change-feed.ts';

/**
 * The provider contract (docs/providers.md). Every call must be idempotent: activities retry. The core methods
 * run a services source; the other source types run on the provider's `engines`.
 */

export interface ProvisionRequest {
  instance_id: string;
  tenant_id: string;
  name: string;
  kind: WorkloadKind;
  services: ServiceSpec[];
  labels?: Record<string, string>;
}

export interface ProvisionResult {
  provider_ref: string;
  service_refs?: Record<string, string>;
  endpoints: Endpoint[];
  metadata?: Record<string, string>;
}

export interface ServiceStatus {
  state: InstanceState;
  ready: boolean;
  restarts: number;
  provider_ref?: string;
  message?: string;
}

export interface InstanceStatus {
  state: InstanceState;
  ready: boolean;
  restarts: number;
  started_at?: string;
  message?: string;
  endpoints: Endpoint[];
  services?: Record<string, ServiceStatus>;
}

export interface ProviderInfo {
  name: string;
  version: string;
  region: string;
}

export interface HealthStatus {
  healthy: boolean;
  message: string;
  latency_ms: number;
  checked_at: string;
}

/** Passed to every call so a cancelled or timed-out activity stops its provider I/O too. */
export interface CallOptions {
  signal?: AbortSignal;
  /** Called while a long call makes progress (the activity heartbeats with it). */
  progress?: (detail: string) => void;
  /**
   * Takes the instance's secret values out of text the workload produced (log lines, health-check output). A
   * provider quoting such text in a message or status applies it to the whole text first, before cutting it.
   */
  redact?: (text: string) => string;
}

/** What a provider can do. Only the source engines are gated by capability. */
export type Capability =
  | 'provision'
  | 'deploy'
  | 'scale'
  | 'logs'
  | 'exec'
  /** Restarts one service's container, the instance's others left running. */
  | 'restart:service'
  /** A stop sends the signal it is given (else the container's own). */
  | 'stop:signal'
  /** A stop waits the timeout it is given before killing. */
  | 'stop:timeout'
  | 'volumes'
  | 'gpu'
  | 'strategy:rolling'
  | 'source:helm'
  | 'source:manifests'
  | 'source:argocd';

export interface LogOptions {
  /** A service of the instance; empty means the main service. */
  service_name?: string;
  follow?: boolean;
  /** RFC 3339 time: only lines at or after it. */
  since?: string;
  /** Only the last N lines (0 or absent: all). */
  tail?: number;
}

/** One log line, as the API serves it in NDJSON (`{ts, stream, line}`). */
export interface LogLine {
  ts: string;
  stream: 'stdout' | 'stderr';
  line: string;
}

/** How a stop ends the containers' processes; each field absent: the provider's default. */
export interface StopOptions {
  signal?: StopSignal;
  timeout_seconds?: number;
}

/** A command to run in one service's container, as its user, without a TTY. */
export interface ExecRequest {
  /** A service of the instance; empty means the main service. */
  service_name?: string;
  argv: string[];
  stdin?: string;
  timeout_ms: number;
  /** Of stdout and of stderr, each. */
  max_output_bytes: number;
}

export interface ExecResult {
  /** Absent when the command did not end by itself (timed out) or the provider could not learn it. */
  exit_code: number | null;
  stdout: string;
  stderr: string;
  stdout_truncated: boolean;
  stderr_truncated: boolean;
  timed_out: boolean;
  /** The service the command ran in. */
  service: string;
}

export interface ResourceUsage {
  cpu_percent: number;
  memory_used_mb: number;
  memory_limit_mb: number;
  disk_used_mb?: number;
  network_in_mb: number;
  network_out_mb: number;
}

/** How much more a host can take, counted before anything is written (admission, /readyz, /metrics). */
export interface HostCapacity {
  /** The host, as configured (e.g. `unix:///var/run/docker.sock`). */
  host: string;
  /** Per-instance networks: the subnets of the operator's pool. */
  networks: CapacityCount;
  /** Instances: at most one per network, and at most the host's configured maximum. */
  instances: CapacityCount;
}

/** One look at a host, taken at `taken_at`. */
export interface CapacitySnapshot {
  taken_at: Date;
  /**
   * The capacity left, given the instances admitted to the host that may have made their objects only after
   * the snapshot was taken (`pending`): those the snapshot does not show count as taken.
   */
  count(pending: readonly string[]): HostCapacity;
}

export interface CapacityCount {
  total: number;
  used: number;
  free: number;
}

/** A part of a spec the provider's operator limits refuse: where (relative to what was checked) and why. */
export interface SpecProblem {
  path: (string | number)[];
  message: string;
}

export interface Provider {
  info(): ProviderInfo;
  capabilities(): Capability[];
  provision(req: ProvisionRequest, opts?: CallOptions): Promise<ProvisionResult>;
  /** Convergent: resources already gone is a success. */
  deprovision(instanceId: string, opts?: CallOptions): Promise<void>;
  start(instanceId: string, opts?: CallOptions): Promise<void>;
  /** `options` only with the capabilities it needs (stop:signal, stop:timeout); absent: the defaults. */
  stop(instanceId: string, opts?: CallOptions, options?: StopOptions): Promise<void>;
  restart(instanceId: string, opts?: CallOptions): Promise<void>;
  /** With capability restart:service: restarts that service's container only. */
  restartService?(instanceId: string, service: string, opts?: CallOptions): Promise<void>;
  /**
   * With capability exec: runs a command in a running service's container and returns its output, cut at
   * the request's limit. An unknown service → PermanentProviderError('invalid_request').
   */
  exec?(instanceId: string, request: ExecRequest, opts?: CallOptions): Promise<ExecResult>;
  /** Applies new resources to the running instance (the merged main-service resources). */
  scale(instanceId: string, resources: ResourceSpec, opts?: CallOptions): Promise<void>;
  status(instanceId: string, opts?: CallOptions): Promise<InstanceStatus>;
  /** Lines of one service's log; with `follow` the iterable ends when the signal aborts or the service stops. */
  logs(instanceId: string, options: LogOptions, opts?: CallOptions): AsyncIterable<LogLine>;
  /** A one-shot usage sample; zero usage (never an error) when the instance has no running parts. */
  resources(instanceId: string, opts?: CallOptions): Promise<ResourceUsage>;
  healthCheck(): Promise<HealthStatus>;
  /**
   * What the operator's limits refuse in these services (paths from the service list: `[0, 'resources',
   * 'memory_mb']`). The API checks it before anything is written; the provider enforces it again. Absent: none.
   */
  specProblems?(services: readonly ServiceSpec[]): SpecProblem[];
  /** The same for the main service's resources of a scale (paths from the resources: `['memory_mb']`). */
  resourceProblems?(resources: Partial<ResourceSpec>): SpecProblem[];
  /** What the host holds now, to count its capacity from. Absent: no known limit. */
  capacitySnapshot?(opts?: CallOptions): Promise<CapacitySnapshot>;
  /** The engines of the other source types (manifests, helm, argocd). Absent: services only. */
  readonly engines?: SourceEngines;
  /** The provider's own feed of changes, which its watcher follows. Absent: nothing watches it. */
  readonly changeFeed?: ChangeFeed;
}

/** The Argo CD Application a source describes. */
export type ArgoApplicationSpec = ArgoCDSource;

export type { RenderedHelm };

/** What the manifests engine applies: the source's YAML documents, already rendered. */
export interface ManifestsRequest {
  instance_id: string;
  tenant_id: string;
  /** The namespace the caller expects; empty or absent means the instance's own. */
  namespace?: string;
  docs: string[];
  labels?: Record<string, string>;
}

/** What the helm engine installs: the rendered chart reference and values. */
export interface HelmRequest {
  instance_id: string;
  tenant_id: string;
  /** The namespace the caller expects; empty or absent means the instance's own. */
  namespace?: string;
  chart: RenderedHelm;
}

/** What the Argo CD engine applies: the Application the source describes. */
export interface ArgoRequest {
  instance_id: string;
  tenant_id: string;
  app: ArgoApplicationSpec;
  labels?: Record<string, string>;
}

/**
 * Runs the instances of one source type other than services. Like the provider, every call is idempotent:
 * `apply` converges on a retry (or a later apply with a new request), `remove` of what is already gone succeeds.
 */
export interface SourceEngine<Request> {
  apply(req: Request, opts?: CallOptions): Promise<ProvisionResult>;
  /** Removes what `apply` created. Convergent: nothing there is a success. */
  remove(instanceId: string, opts?: CallOptions): Promise<void>;
  status(instanceId: string, opts?: CallOptions): Promise<InstanceStatus>;
}

export type ManifestsEngine = SourceEngine<ManifestsRequest>;
export type HelmEngine = SourceEngine<HelmRequest>;
export type ArgoEngine = SourceEngine<ArgoRequest>;

/**
 * A provider's source engines, by source type. An engine runs a source only while the provider also advertises its
 * capability (ENGINE_CAPABILITY): a provider may have an engine it cannot use at the moment (helm without a helm
 * executable).
 */
export interface SourceEngines {
  manifests?: ManifestsEngine;
  helm?: HelmEngine;
  argocd?: ArgoEngine;
}

/** The source types an engine runs (every type but services). */
export type EngineSourceType = keyof SourceEngines;

/** The capability that makes each engine usable. */
export const ENGINE_CAPABILITY = {
  manifests: 'source:manifests',
  helm: 'source:helm',
  argocd: 'source:argocd',
} as const satisfies Record<EngineSourceType, Capability>;

/**
 * Thrown by a provider for a failure no retry can fix (bad image, invalid spec). Activities turn it into a
 * non-retryable ApplicationFailure; every other error is retried.
 */
export class PermanentProviderError extends Error {
  override readonly name = 'PermanentProviderError';
  constructor(
    message: string,
    readonly code:
      | 'invalid_spec'
      | 'image_not_found'
      | 'image_not_allowed'
      | 'unsupported_source'
      | 'invalid_request'
      | 'capacity_exhausted'
      | 'invalid_state'
      | 'not_supported'
      | 'provider_failed' = 'invalid_spec',
  ) {
    super(message);
  }
}
