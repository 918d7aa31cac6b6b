import type { IncomingMessage } from 'node:http';
import type Dockerode from 'dockerode';
import { type NetworkPoolSettings, parseNetworkPool } from '../../config/network-pool.ts';
import type { Endpoint, ResourceSpec, ServiceSpec } from '../../domain/instance.ts';
import type { InstanceState } from '../../domain/instance-state.ts';
import {
  type CallOptions,
  type Capability,
  type CapacitySnapshot,
  type ExecRequest,
  type ExecResult,
  type HealthStatus,
  type HostCapacity,
  type InstanceStatus,
  type LogLine,
  type LogOptions,
  PermanentProviderError,
  type Provider,
  type ProviderInfo,
  type ProvisionRequest,
  type ProvisionResult,
  type ResourceUsage,
  type ServiceStatus,
  type SpecProblem,
  type StopOptions,
} from '../provider.ts';
import { configFilesArchive } from './config-files.ts';
import {
  buildContainerConfig,
  type ContainerPlan,
  limitsUpdate,
  resourceLimits,
  resourceProblem,
  validateService,
} from './container-config.ts';
import { containerCondition, containerReadiness, worstState } from './container-state.ts';
import { DockerChangeFeed } from './docker-change-feed.ts';
import { errorMessage, hasStatus, ignoreStatus, statusCodeOf } from './docker-errors.ts';
import { endpointsFromInspect } from './endpoints.ts';
import { execInContainer } from './exec.ts';
import {
  DEFAULT_HOST_LIMITS,
  type DockerHostLimits,
  resourceProblems,
  serviceLimitProblems,
} from './host-limits.ts';
import { ImageAllowlist, parseImageName } from './image-allowlist.ts';
import { type PullAuth, pullAuthFor, type RegistryAuth, registryHost, serverAddress } from './images.ts';
import { LABEL, type LabelContext, projectFilter, roleOf, serviceLabels } from './labels.ts';
import { demuxAll, dockerSince, LogDemuxer } from './log-stream.ts';
import { containerName, networkName, projectName, providerRef } from './naming.ts';
import { type NetworkUsage, ProjectNetworks } from './project-networks.ts';
import { orderServices } from './service-order.ts';
import { RUNNING_RESTART_POLICY, stopWithSignal } from './signal-stop.ts';
import { ephemeralSpecHashKey, type SpecHashKey } from './spec-hash.ts';
import { SubnetPool } from './subnet-pool.ts';
import type { TenantRegistryCredentials } from './tenant-credentials.ts';
import { type ContainerUsage, containerUsage, type StatsSample, sumUsage, zeroUsage } from './usage.ts';
import { distinctVolumes, volumeLabels, volumeName } from './volumes.ts';

type LogFn = (obj: Record<string, unknown>, msg: string) => void;

export interface DockerProviderLogger {
  info: LogFn;
  warn: LogFn;
}

export interface DockerProviderOptions {
  /** The engine's client: build it with dockerClient(), whose calls always settle. */
  docker: Dockerode;
  /** Seconds `stop` lets a container handle SIGTERM before it is killed. Default 10. */
  stopTimeoutSeconds?: number;
  /** How long provision waits for an init service to exit. Default 600 (10 minutes). */
  initTimeoutSeconds?: number;
  logger?: DockerProviderLogger;
  /**
   * The platform's credentials for pulls, by registry host (`docker.io` for Docker Hub), e.g. from configuration.
   * Used only for images of `allowedImages`.
   */
  registryAuth?: RegistryAuth;
  /**
   * Images any tenant may run (image-allowlist.ts). Default none: every image must then be pullable with the
   * tenant's own credentials (or anonymously), even one already on the host.
   */
  allowedImages?: readonly string[];
  /** Each tenant's own registry credentials (a tenant sets them through the API; db/registry-credentials). */
  tenantCredentials?: TenantRegistryCredentials;
  /** The operator's per-container limits and defaults. Default DEFAULT_HOST_LIMITS. */
  limits?: DockerHostLimits;
  /** Key of the spec-hash HMAC; the same for every worker of an installation. Default: random per process. */
  specHashKey?: SpecHashKey;
  /** Where instance networks get their subnets. Default 10.210.0.0/16 in /27s (config/env.ts). */
  networkPool?: NetworkPoolSettings;
  /** Most instances this host runs at once. Default 1000. */
  maxInstances?: number;
  /** How the host is named in capacity reports (DOCKER_HOST). Default `unix:///var/run/docker.sock`. */
  hostName?: string;
}

function defaultNetworkPool(): NetworkPoolSettings {
  const parsed = parseNetworkPool('10.210.0.0/16', 27);
  if (!('pool' in parsed)) throw new Error(parsed.problem);
  return parsed.pool;
}

const HEALTH_TIMEOUT_MS = 2000;
const INIT_LOG_TAIL = 20;
const ROLE_ORDER: Record<string, number> = { init: 0, main: 1, sidecar: 2 };

/** What this provider honours. No GPUs. */
const CAPABILITIES: readonly Capability[] = [
  'provision',
  'deploy',
  'scale',
  'logs',
  'volumes',
  'exec',
  'restart:service',
  'stop:signal',
  'stop:timeout',
];

const noopLogger: DockerProviderLogger = { info: () => {}, warn: () => {} };

/** A fresh options object per call: docker-modem deletes `abortSignal` from the object it is given. */
function abortable(signal: AbortSignal | undefined): { abortSignal?: AbortSignal } {
  return signal ? { abortSignal: signal } : {};
}

/**
 * One instance = one compose-like project of plain Docker objects: a bridge network
 * `cp-<id>-net` on its own subnet of the operator's pool (project-networks.ts) and one container
 * `cp-<id>-<service>` per service, all labelled `ctrlplane.*`.
 */
export class DockerProvider implements Provider {
  private readonly docker: Dockerode;
  private readonly stopTimeoutSeconds: number;
  private readonly initTimeoutMs: number;
  private readonly log: DockerProviderLogger;
  private readonly registryAuth: RegistryAuth | undefined;
  private readonly allowedImages: ImageAllowlist;
  private readonly tenantCredentials: TenantRegistryCredentials | undefined;
  private readonly limits: DockerHostLimits;
  private readonly specHashKey: SpecHashKey;
  private readonly networks: ProjectNetworks;
  private readonly maxInstances: number;
  private readonly hostName: string;
  readonly changeFeed: DockerChangeFeed;
  private hostMemoryBytes: number | undefined;
  private snapshotInFlight: Promise<CapacitySnapshot> | undefined;

  constructor(options: DockerProviderOptions) {
    this.docker = options.docker;
    this.stopTimeoutSeconds = options.stopTimeoutSeconds ?? 10;
    this.initTimeoutMs = (options.initTimeoutSeconds ?? 600) * 1000;
    this.log = options.logger ?? noopLogger;
    this.registryAuth = options.registryAuth;
    this.allowedImages = new ImageAllowlist(options.allowedImages ?? []);
    this.tenantCredentials = options.tenantCredentials;
    this.limits = options.limits ?? DEFAULT_HOST_LIMITS;
    this.specHashKey = options.specHashKey ?? ephemeralSpecHashKey();
    this.networks = new ProjectNetworks(
      this.docker,
      new SubnetPool(options.networkPool ?? defaultNetworkPool()),
      this.log,
    );
    this.maxInstances = options.maxInstances ?? 1000;
    this.hostName = options.hostName ?? 'unix:///var/run/docker.sock';
    this.changeFeed = new DockerChangeFeed(this.docker);
  }

  info(): ProviderInfo {
    return { name: 'docker', version: '1.0.0', region: 'local' };
  }

  capabilities(): Capability[] {
    return [...CAPABILITIES];
  }

  specProblems(services: readonly ServiceSpec[]): SpecProblem[] {
    return services.flatMap((service, i) =>
      serviceLimitProblems(service, this.limits).map((p) => ({ path: [i, ...p.path], message: p.message })),
    );
  }

  resourceProblems(resources: Partial<ResourceSpec>): SpecProblem[] {
    return resourceProblems(resources, this.limits);
  }

  async provision(req: ProvisionRequest, opts: CallOptions = {}): Promise<ProvisionResult> {
    validateRequest(req, this.limits);
    const { signal } = opts;
    const progress = (detail: string) => opts.progress?.(detail);
    const ctx: LabelContext = { instanceId: req.instance_id, tenantId: req.tenant_id, labels: req.labels };

    await this.networks.ensure(ctx, signal);
    progress(`network ${networkName(req.instance_id)} ready`);
    await this.ensureVolumes(ctx, distinctVolumes(req.services), signal);

    await this.removeStrayContainers(req, signal);

    const { inits, mains, sidecars } = orderServices(req.services);
    for (const service of inits) {
      signal?.throwIfAborted();
      await this.runInit(ctx, service, opts);
      progress(`init service ${service.name} completed`);
    }

    const serviceRefs: Record<string, string> = {};
    const endpoints: Endpoint[] = [];
    for (const service of [...mains, ...sidecars]) {
      signal?.throwIfAborted();
      const info = await this.ensureService(ctx, service, opts);
      serviceRefs[service.name] = info.Id;
      endpoints.push(...endpointsFromInspect(service.name, info));
      progress(`service ${service.name} running`);
    }

    return { provider_ref: providerRef(req.instance_id), service_refs: serviceRefs, endpoints };
  }

  async deprovision(instanceId: string, opts: CallOptions = {}): Promise<void> {
    const { signal } = opts;
    const containers = await this.listProject(instanceId, signal);
    for (const c of containers) {
      await ignoreStatus(
        this.docker.getContainer(c.Id).remove({ force: true, v: true, ...abortable(signal) }),
        404,
      );
      opts.progress?.(`removed container ${containerLabel(c)}`);
    }
    // The legacy single-container layout of older versions.
    await ignoreStatus(
      this.docker
        .getContainer(projectName(instanceId))
        .remove({ force: true, v: true, ...abortable(signal) }),
      404,
    );

    const networks = await this.docker.listNetworks({
      filters: projectFilter(instanceId),
      ...abortable(signal),
    });
    for (const n of networks) {
      await ignoreStatus(this.docker.getNetwork(n.Id).remove(abortable(signal)), 404);
    }
    await ignoreStatus(this.docker.getNetwork(networkName(instanceId)).remove(abortable(signal)), 404);
    opts.progress?.(`removed network ${networkName(instanceId)}`);

    const { Volumes: volumes } = await this.docker.listVolumes({
      filters: projectFilter(instanceId),
      ...abortable(signal),
    });
    for (const v of volumes ?? []) {
      await ignoreStatus(this.docker.getVolume(v.Name).remove(abortable(signal)), 404);
      opts.progress?.(`removed volume ${v.Name}`);
    }
    this.log.info({ instance_id: instanceId, containers: containers.length }, 'docker project deprovisioned');
  }

  async start(instanceId: string, opts: CallOptions = {}): Promise<void> {
    const containers = await this.listRunnable(instanceId, opts.signal);
    for (const c of containers) {
      const container = this.docker.getContainer(c.Id);
      // A stop with a chosen signal left the policy at `no` (signal-stop.ts).
      if (c.State !== 'running') await container.update({ RestartPolicy: RUNNING_RESTART_POLICY });
      await ignoreStatus(container.start(abortable(opts.signal)), 304);
      opts.progress?.(`started container ${containerLabel(c)}`);
    }
  }

  /**
   * Without a signal the daemon sends the container's own StopSignal (the image's STOPSIGNAL, else SIGTERM);
   * without a timeout it waits the configured one.
   */
  async stop(instanceId: string, opts: CallOptions = {}, options: StopOptions = {}): Promise<void> {
    const t = options.timeout_seconds ?? this.stopTimeoutSeconds;
    // Sidecars first, then mains: the reverse of the start order.
    const containers = (await this.listRunnable(instanceId, opts.signal)).reverse();
    for (const c of containers) {
      const container = this.docker.getContainer(c.Id);
      if (options.signal) await stopWithSignal(container, options.signal, t, opts.signal);
      else await ignoreStatus(container.stop({ t, ...abortable(opts.signal) }), 304, 404);
      opts.progress?.(`stopped container ${containerLabel(c)}`);
    }
  }

  async restart(instanceId: string, opts: CallOptions = {}): Promise<void> {
    const containers = await this.listRunnable(instanceId, opts.signal);
    for (const c of containers) {
      await ignoreStatus(
        this.docker.getContainer(c.Id).restart({ t: this.stopTimeoutSeconds, ...abortable(opts.signal) }),
        404,
      );
      opts.progress?.(`restarted container ${containerLabel(c)}`);
    }
  }

  /** Restarts the one container of `service` (stop with the configured timeout, then start); the others run on. */
  async restartService(instanceId: string, service: string, opts: CallOptions = {}): Promise<void> {
    const target = await this.serviceContainer(instanceId, service, opts.signal);
    await this.docker
      .getContainer(target.Id)
      .restart({ t: this.stopTimeoutSeconds, ...abortable(opts.signal) });
    this.log.info({ instance_id: instanceId, service }, 'service restarted');
    opts.progress?.(`restarted container ${containerLabel(target)}`);
  }

  /** Runs a command in one service's container (default: the main one); see exec.ts for what it may do. */
  async exec(instanceId: string, request: ExecRequest, opts: CallOptions = {}): Promise<ExecResult> {
    const containers = await this.listRunnable(instanceId, opts.signal);
    const target = request.service_name
      ? await this.serviceContainer(instanceId, request.service_name, opts.signal)
      : containers.find((c) => (c.Labels?.[LABEL.role] || 'main') === 'main');
    if (!target) {
      throw new PermanentProviderError(`instance ${instanceId} has no main container`, 'invalid_state');
    }
    const result = await execInContainer(this.docker, target.Id, request, opts.signal);
    return { ...result, service: target.Labels?.[LABEL.service] ?? '' };
  }

  /**
   * Changes the CPU and memory limits of the main container in place (`docker update`, the container is not
   * recreated). Only one replica exists on Docker: any other `replicas` is refused. The spec hash leaves limits
   * out, so a later provision with the scaled resources adopts the container (and one with other resources
   * updates it in place too).
   */
  async scale(instanceId: string, resources: ResourceSpec, opts: CallOptions = {}): Promise<void> {
    const { signal } = opts;
    const problem = resourceProblem(resources, true, this.limits);
    if (problem)
      throw new PermanentProviderError(`cannot scale instance ${instanceId}: ${problem}`, 'invalid_request');
    const wanted = resourceLimits(resources, this.limits);

    const mains = (await this.listProject(instanceId, signal)).filter(
      (c) => (c.Labels?.[LABEL.role] || 'main') === 'main',
    );
    if (mains.length === 0) {
      throw new PermanentProviderError(
        `cannot scale instance ${instanceId}: it has no main container (not provisioned, or deleted)`,
        'invalid_request',
      );
    }
    for (const c of mains) {
      const container = this.docker.getContainer(c.Id);
      const info = await container.inspect(abortable(signal));
      const change = limitsUpdate(info.HostConfig, wanted);
      if (change === undefined) continue;
      await this.updateLimits(container, change, signal, (msg) => {
        return new PermanentProviderError(`cannot scale instance ${instanceId}: ${msg}`, 'invalid_request');
      });
      this.log.info({ instance_id: instanceId, container: containerLabel(c), ...change }, 'container scaled');
      opts.progress?.(`scaled container ${containerLabel(c)}`);
    }
  }

  /**
   * Lines of one service's log (default: the main service). With `follow`, new lines keep coming until
   * `opts.signal` aborts (the iterable then just ends) or the container stops. An unknown service →
   * PermanentProviderError('invalid_request'); it surfaces on the first `next()`.
   */
  async *logs(instanceId: string, options: LogOptions = {}, opts: CallOptions = {}): AsyncGenerator<LogLine> {
    const { signal } = opts;
    if (signal?.aborted) return;
    const query = logQuery(options);
    const target = await this.logTarget(instanceId, options.service_name, signal);
    if (!target) return;

    let stream: IncomingMessage;
    try {
      stream = await this.openLogStream(target, query, signal);
    } catch (err) {
      if (signal?.aborted) return;
      throw err;
    }
    const onAbort = () => stream.destroy();
    signal?.addEventListener('abort', onAbort, { once: true });
    const demuxer = new LogDemuxer();
    try {
      for await (const chunk of stream) {
        for (const line of demuxer.push(chunk as Buffer)) yield line;
      }
      for (const line of demuxer.end()) yield line;
    } catch (err) {
      if (signal?.aborted) return;
      yield {
        ts: new Date().toISOString(),
        stream: 'stderr',
        line: `ctrlplane/docker: log stream ended: ${errorMessage(err)}`,
      };
    } finally {
      signal?.removeEventListener('abort', onAbort);
      stream.destroy();
    }
  }

  /** One stats sample per running project container, summed. Zero usage when nothing runs or nothing exists. */
  async resources(instanceId: string, opts: CallOptions = {}): Promise<ResourceUsage> {
    const { signal } = opts;
    const running = await this.docker.listContainers({
      filters: { ...projectFilter(instanceId), status: ['running'] },
      ...abortable(signal),
    });
    if (running.length === 0) return zeroUsage();
    const samples = await Promise.all(
      running.map(async (c): Promise<ContainerUsage | undefined> => {
        // stream=false waits for a second sample, so precpu_stats is filled and cpu% is meaningful.
        const stats = await ignoreStatus(
          this.docker.getContainer(c.Id).stats({ stream: false, ...abortable(signal) }),
          404,
          409,
        );
        return stats ? containerUsage(stats as unknown as StatsSample) : undefined;
      }),
    );
    return sumUsage(
      samples.filter((s): s is ContainerUsage => s !== undefined),
      await this.hostMemory(signal),
    );
  }

  async status(instanceId: string, opts: CallOptions = {}): Promise<InstanceStatus> {
    const { signal } = opts;
    const containers = sortByRole(await this.listProject(instanceId, signal));
    const services: Record<string, ServiceStatus> = {};
    const endpoints: Endpoint[] = [];
    const counted: InstanceState[] = [];
    const failures: string[] = [];
    const unready: string[] = [];
    let allReady = true;
    let restarts = 0;
    let inspected = 0;
    let startedAt: string | undefined;

    for (const c of containers) {
      const info = await ignoreStatus(this.docker.getContainer(c.Id).inspect(abortable(signal)), 404);
      if (!info) continue;
      inspected++;
      const labels = info.Config?.Labels ?? {};
      const service = labels[LABEL.service] ?? info.Name.replace(/^\//, '');
      const role = labels[LABEL.role] || 'main';
      const condition = containerCondition(info);
      const readiness = containerReadiness(info, condition, opts.redact);
      const restartCount = info.RestartCount ?? 0;
      services[service] = {
        state: condition.state,
        ready: readiness.ready,
        restarts: restartCount,
        provider_ref: info.Id,
        message: readiness.message ?? condition.message,
      };
      restarts += restartCount;
      if (role === 'init') {
        if (!info.State.Running && info.State.ExitCode === 0) continue;
      } else {
        endpoints.push(...endpointsFromInspect(service, info));
      }
      counted.push(condition.state);
      allReady &&= readiness.ready;
      if (condition.state === 'failed') failures.push(`${service}: ${condition.message ?? 'failed'}`);
      else if (condition.state === 'running' && readiness.message)
        unready.push(`${service}: ${readiness.message}`);
      if (role === 'main' && condition.state === 'running' && !startedAt) startedAt = info.State.StartedAt;
    }

    if (inspected === 0) return { state: 'destroyed', ready: false, restarts: 0, endpoints: [] };
    const state = counted.length > 0 ? worstState(counted) : 'stopped';
    const result: InstanceStatus = {
      state,
      ready: counted.length > 0 && counted.every((s) => s === 'running') && allReady,
      restarts,
      endpoints,
      services,
    };
    if (startedAt) result.started_at = startedAt;
    if (failures.length > 0) result.message = failures.join('; ');
    else if (unready.length > 0) result.message = unready.join('; ');
    return result;
  }

  async healthCheck(): Promise<HealthStatus> {
    const started = performance.now();
    const timeout = AbortSignal.timeout(HEALTH_TIMEOUT_MS);
    let timer: NodeJS.Timeout | undefined;
    try {
      // dockerode 5 takes an abortSignal for ping; @types/dockerode 4 does not declare it.
      const ping = this.docker.ping as unknown as (opts: { abortSignal: AbortSignal }) => Promise<unknown>;
      await Promise.race([
        ping.call(this.docker, { abortSignal: timeout }),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no answer within ${HEALTH_TIMEOUT_MS}ms`)),
            HEALTH_TIMEOUT_MS,
          );
        }),
      ]);
      return {
        healthy: true,
        message: 'docker daemon reachable',
        latency_ms: Math.round(performance.now() - started),
        checked_at: new Date().toISOString(),
      };
    } catch (err) {
      return {
        healthy: false,
        message: `docker daemon unreachable: ${errorMessage(err)}`,
        latency_ms: Math.round(performance.now() - started),
        checked_at: new Date().toISOString(),
      };
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * One listing of the engine's networks, shared by the callers that ask while it is under way (a burst of
   * creates makes one listing, not one each). Counted from it: the free subnets of the pool and the free
   * instance slots; a pending instance whose network the listing does not show holds one of each.
   */
  capacitySnapshot(opts: CallOptions = {}): Promise<CapacitySnapshot> {
    this.snapshotInFlight ??= (async () => {
      const takenAt = new Date();
      const usage = await this.networks.usage(opts.signal);
      return { taken_at: takenAt, count: (pending: readonly string[]) => this.countCapacity(usage, pending) };
    })().finally(() => {
      this.snapshotInFlight = undefined;
    });
    return this.snapshotInFlight;
  }

  /** The capacity left now, counting `pending` instances without a network as taken. */
  async capacity(pending: readonly string[], opts: CallOptions = {}): Promise<HostCapacity> {
    return (await this.capacitySnapshot(opts)).count(pending);
  }

  private countCapacity(usage: NetworkUsage, pending: readonly string[]): HostCapacity {
    const reserved = pending.filter((id) => !usage.instanceNetworks.has(networkName(id))).length;
    const networksTotal = this.networks.poolSize;
    const networksUsed = Math.min(networksTotal, usage.usedSubnets.size + reserved);
    const networksFree = networksTotal - networksUsed;
    const instancesUsed = usage.instanceNetworks.size + reserved;
    return {
      host: this.hostName,
      networks: { total: networksTotal, used: networksUsed, free: networksFree },
      instances: {
        total: this.maxInstances,
        used: instancesUsed,
        free: Math.max(0, Math.min(this.maxInstances - instancesUsed, networksFree)),
      },
    };
  }

  // --- provision steps ---------------------------------------------------------------------------------------

  /**
   * Creates the project's named volumes `cp-<id>-<volume>` (labelled like the project, plus `ctrlplane.volume`).
   * Creating an existing volume returns it unchanged, so this is idempotent and keeps the data.
   */
  private async ensureVolumes(
    ctx: LabelContext,
    names: string[],
    signal: AbortSignal | undefined,
  ): Promise<void> {
    for (const name of names) {
      await this.docker.createVolume({
        Name: volumeName(ctx.instanceId, name),
        Labels: volumeLabels(ctx, name),
        ...abortable(signal),
      });
    }
  }

  /** Removes project containers of services no longer in the spec, so an update never leaves two sets. */
  private async removeStrayContainers(req: ProvisionRequest, signal: AbortSignal | undefined): Promise<void> {
    const wanted = new Set(req.services.map((s) => containerName(req.instance_id, s.name)));
    for (const c of await this.listProject(req.instance_id, signal)) {
      const name = containerLabel(c);
      if (wanted.has(name)) continue;
      await ignoreStatus(
        this.docker.getContainer(c.Id).remove({ force: true, v: true, ...abortable(signal) }),
        404,
      );
      this.log.info(
        { instance_id: req.instance_id, container: name },
        'removed container of a dropped service',
      );
    }
  }

  /**
   * Makes sure the tenant may run the image and that it is on the host. An image of the operator's allowlist is
   * used as it is on the host, or pulled with the platform's credentials for its registry. Any other image is
   * pulled every time with the tenant's own credentials for its registry (anonymously if it has none), even when
   * it is on the host already: the registry decides whether this tenant may have it, so an image another tenant
   * pulled with its credentials never runs for one that could not pull it. A pull the daemon refuses →
   * PermanentProviderError naming the image (`image_not_allowed` outside the allowlist); a failure to reach the
   * daemon stays an ordinary (retryable) error, and so does a registry rate limit.
   */
  private async ensureImage(ref: string, tenantId: string, opts: CallOptions): Promise<void> {
    const { signal } = opts;
    if (this.allowedImages.allows(ref)) {
      try {
        await this.docker.getImage(ref).inspect();
        return;
      } catch (err) {
        if (!hasStatus(err, 404)) throw err;
      }
      await this.pull(ref, pullAuthFor(ref, this.registryAuth), opts, (message) => {
        return new PermanentProviderError(
          `image ${ref} is not present and could not be pulled: ${message}`,
          'image_not_found',
        );
      });
      return;
    }
    const registry = registryHost(ref);
    if (!parseImageName(ref)) {
      throw new PermanentProviderError(
        `image ${ref} is not an image name (an image id runs only when the operator allows it by name)`,
        'image_not_allowed',
      );
    }
    const own = await this.tenantCredentials?.lookup(tenantId, registry, signal);
    const authconfig = own ? { ...own, serveraddress: serverAddress(registry) } : undefined;
    await this.pull(ref, authconfig, opts, (message) => {
      const how = own
        ? `with tenant ${tenantId}'s registry credentials for ${registry}`
        : `anonymously (tenant ${tenantId} has no registry credentials for ${registry})`;
      return new PermanentProviderError(
        `image ${ref} is not on the operator's image allowlist, so it runs only if it can be pulled ${how}; ` +
          `the pull failed: ${message}`,
        'image_not_allowed',
      );
    });
  }

  private async pull(
    ref: string,
    authconfig: PullAuth | undefined,
    opts: CallOptions,
    refused: (message: string) => PermanentProviderError,
  ): Promise<void> {
    const { signal } = opts;
    opts.progress?.(`pulling image ${ref}`);
    try {
      const stream = await this.docker.pull(ref, {
        ...(authconfig ? { authconfig } : {}),
        ...abortable(signal),
      });
      await this.followPull(stream, opts);
    } catch (err) {
      const answered = err instanceof PullFailed || statusCodeOf(err) !== undefined;
      if (signal?.aborted || !answered || /toomanyrequests|rate limit/i.test(errorMessage(err))) throw err;
      throw refused(errorMessage(err));
    }
    this.log.info({ image: ref }, 'docker image pulled');
  }

  private followPull(stream: NodeJS.ReadableStream, opts: CallOptions): Promise<void> {
    return new Promise((resolve, reject) => {
      let last = 0;
      this.docker.modem.followProgress(
        stream,
        (err: Error | null, events: Array<{ error?: string; errorDetail?: { message?: string } }>) => {
          if (err) return reject(err);
          // The daemon reports a failed pull inside the stream, not as an HTTP error.
          const failed = events.find((e) => e.error || e.errorDetail);
          if (failed) {
            return reject(new PullFailed(failed.errorDetail?.message ?? failed.error ?? 'pull failed'));
          }
          resolve();
        },
        (event: { status?: string; id?: string; progress?: string }) => {
          const now = Date.now();
          if (now - last < 1000) return;
          last = now;
          opts.progress?.(`pull: ${[event.id, event.status, event.progress].filter(Boolean).join(' ')}`);
        },
      );
    });
  }

  private plan(ctx: LabelContext, service: ServiceSpec): ContainerPlan {
    return buildContainerConfig({
      instanceId: ctx.instanceId,
      service,
      containerName: containerName(ctx.instanceId, service.name),
      networkName: networkName(ctx.instanceId),
      labels: serviceLabels(ctx, service),
      limits: this.limits,
      specHashKey: this.specHashKey,
    });
  }

  /**
   * Creates a service's container and writes its config files into it (it is not started). A config the daemon
   * refuses (400) → PermanentProviderError; if writing the files fails the container is removed again.
   */
  private async createFromPlan(
    service: ServiceSpec,
    plan: ContainerPlan,
    signal: AbortSignal | undefined,
  ): Promise<Dockerode.Container> {
    let container: Dockerode.Container;
    try {
      container = await this.docker.createContainer({ ...plan.config, ...abortable(signal) });
    } catch (err) {
      if (hasStatus(err, 400)) {
        throw new PermanentProviderError(
          `service ${service.name}: Docker refused the container: ${errorMessage(err)}`,
          'invalid_spec',
        );
      }
      throw err;
    }
    if (plan.files.length === 0) return container;
    try {
      await container.putArchive(configFilesArchive(plan.files), { path: '/', ...abortable(signal) });
    } catch (err) {
      await this.removeQuietly(container, plan.config.name ?? container.id);
      if (hasStatus(err, 400, 403)) {
        throw new PermanentProviderError(
          `service ${service.name}: could not write its config files: ${errorMessage(err)}`,
          'invalid_spec',
        );
      }
      throw err;
    }
    return container;
  }

  private async removeQuietly(container: Dockerode.Container, name: string): Promise<void> {
    await ignoreStatus(container.remove({ force: true, v: true }), 404).catch((removeErr: unknown) => {
      this.log.warn({ container: name, err: errorMessage(removeErr) }, 'could not remove a failed container');
    });
  }

  private async updateLimits(
    container: Dockerode.Container,
    change: Partial<ReturnType<typeof resourceLimits>>,
    signal: AbortSignal | undefined,
    refused: (message: string) => Error,
  ): Promise<void> {
    try {
      await container.update({ ...change, ...abortable(signal) });
    } catch (err) {
      if (hasStatus(err, 400)) throw refused(`Docker refused the limits: ${errorMessage(err)}`);
      throw err;
    }
  }

  /** Runs an init service to completion: (re)create, start, wait for it to exit; non-zero → permanent failure. */
  private async runInit(ctx: LabelContext, service: ServiceSpec, opts: CallOptions): Promise<void> {
    const { signal } = opts;
    const name = containerName(ctx.instanceId, service.name);
    await ignoreStatus(
      this.docker.getContainer(name).remove({ force: true, v: true, ...abortable(signal) }),
      404,
    );
    await this.ensureImage(service.image, ctx.tenantId ?? '', opts);
    const container = await this.createFromPlan(service, this.plan(ctx, service), signal);
    await ignoreStatus(container.start(abortable(signal)), 304);
    opts.progress?.(`init service ${service.name} started`);

    const timeout = AbortSignal.timeout(this.initTimeoutMs);
    const waitSignal = signal ? AbortSignal.any([signal, timeout]) : timeout;
    let result: { StatusCode?: number; Error?: { Message?: string } | null };
    try {
      result = await container.wait({ condition: 'not-running', abortSignal: waitSignal });
    } catch (err) {
      if (timeout.aborted && !signal?.aborted) {
        throw new Error(`init service ${service.name} did not exit within ${this.initTimeoutMs / 1000}s`);
      }
      throw err;
    }
    const code = result.StatusCode ?? 0;
    if (code === 0) return;

    // The workload's own output: redacted (opts.redact) as a whole before it is quoted.
    const redact = opts.redact ?? ((text: string) => text);
    let tail = '';
    try {
      const raw = await container.logs({
        stdout: true,
        stderr: true,
        tail: INIT_LOG_TAIL,
        ...abortable(signal),
      });
      const lines = demuxAll(raw).map((l) => l.line);
      tail = redact(lines.join('\n')).split('\n').slice(-INIT_LOG_TAIL).join('\n');
    } catch (err) {
      tail = `(logs unavailable: ${errorMessage(err)})`;
    }
    if (!tail && result.Error?.Message) tail = redact(result.Error.Message);
    throw new PermanentProviderError(`init service ${service.name} exited with code ${code}: ${tail}`);
  }

  /**
   * Makes a main or sidecar container match the spec: adopts an existing one whose spec hash is unchanged (updating
   * its CPU/memory limits in place if they differ, starting it if needed), otherwise replaces it. Returns the
   * container's inspect data.
   */
  private async ensureService(
    ctx: LabelContext,
    service: ServiceSpec,
    opts: CallOptions,
  ): Promise<Dockerode.ContainerInspectInfo> {
    const { signal } = opts;
    const name = containerName(ctx.instanceId, service.name);
    const network = networkName(ctx.instanceId);
    const plan = this.plan(ctx, service);
    const hash = plan.config.Labels?.[LABEL.specHash];

    const existing = await ignoreStatus(this.docker.getContainer(name).inspect(abortable(signal)), 404);
    if (existing) {
      const sameSpec = existing.Config?.Labels?.[LABEL.specHash] === hash;
      const change = limitsUpdate(existing.HostConfig, plan.limits);
      // A container that was never started may be one a crashed attempt created but did not finish (its
      // config files are written between create and start): make it again rather than adopt it.
      const finished = existing.State.Status !== 'created';
      if (sameSpec && finished && existing.NetworkSettings?.Networks?.[network]) {
        const container = this.docker.getContainer(existing.Id);
        if (change) {
          await this.updateLimits(container, change, signal, (msg) => {
            return new PermanentProviderError(`service ${service.name}: ${msg}`, 'invalid_spec');
          });
          opts.progress?.(`updated the limits of container ${name}`);
        }
        if (!existing.State.Running) await ignoreStatus(container.start(abortable(signal)), 304);
        this.log.info({ instance_id: ctx.instanceId, container: name }, 'adopted existing container');
        opts.progress?.(`adopted container ${name}`);
        return container.inspect(abortable(signal));
      }
      await ignoreStatus(
        this.docker.getContainer(existing.Id).remove({ force: true, v: true, ...abortable(signal) }),
        404,
      );
      this.log.info(
        { instance_id: ctx.instanceId, container: name },
        'removed container with an outdated spec',
      );
      opts.progress?.(`removed outdated container ${name}`);
    }

    await this.ensureImage(service.image, ctx.tenantId ?? '', opts);
    const container = await this.createFromPlan(service, plan, signal);
    opts.progress?.(`created container ${name}`);
    try {
      await ignoreStatus(container.start(abortable(signal)), 304);
    } catch (err) {
      await this.removeQuietly(container, name);
      throw err;
    }
    this.log.info({ instance_id: ctx.instanceId, container: name, id: container.id }, 'container started');
    return container.inspect(abortable(signal));
  }

  // --- logs and usage -------------------------------------------------------------------------------------------

  /**
   * The container whose log to read: the named service's, else the main one, else the first non-init one.
   * Undefined when the instance has no containers and no service was named.
   */
  private async logTarget(
    instanceId: string,
    serviceName: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<string | undefined> {
    const containers = sortByRole(await this.listProject(instanceId, signal));
    if (serviceName) {
      const found = containers.find((c) => c.Labels?.[LABEL.service] === serviceName);
      if (found) return found.Id;
      const known = containers.map((c) => c.Labels?.[LABEL.service]).filter(Boolean);
      throw new PermanentProviderError(
        `instance ${instanceId} has no service "${serviceName}"` +
          (known.length > 0 ? ` (its services: ${known.join(', ')})` : ''),
        'invalid_request',
      );
    }
    const main = containers.find((c) => (c.Labels?.[LABEL.role] || 'main') === 'main');
    return (main ?? containers.find((c) => c.Labels?.[LABEL.role] !== 'init'))?.Id;
  }

  /** `GET /containers/{id}/logs` as a stream (dockerode buffers the whole body unless following). */
  private openLogStream(
    containerId: string,
    query: Record<string, unknown>,
    signal: AbortSignal | undefined,
  ): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      this.docker.modem.dial(
        {
          path: `/containers/${encodeURIComponent(containerId)}/logs?`,
          method: 'GET',
          options: { ...query },
          isStream: true,
          statusCodes: { 200: true, 404: 'no such container', 500: 'server error' },
          ...abortable(signal),
        } as Parameters<typeof this.docker.modem.dial>[0],
        (err, data) => (err ? reject(err) : resolve(data as IncomingMessage)),
      );
    });
  }

  /** The host's memory (cached): the memory "limit" a container without one reports. */
  private async hostMemory(signal: AbortSignal | undefined): Promise<number | undefined> {
    if (this.hostMemoryBytes === undefined) {
      // dockerode 5 takes an abortSignal for info; @types/dockerode 4 does not declare it.
      const info = this.docker.info as unknown as (opts: object) => Promise<{ MemTotal?: number }>;
      const answer = await info.call(this.docker, abortable(signal));
      this.hostMemoryBytes = answer.MemTotal ?? 0;
    }
    return this.hostMemoryBytes || undefined;
  }

  // --- listing -------------------------------------------------------------------------------------------------

  private listProject(
    instanceId: string,
    signal: AbortSignal | undefined,
  ): Promise<Dockerode.ContainerInfo[]> {
    return this.docker.listContainers({
      all: true,
      filters: projectFilter(instanceId),
      ...abortable(signal),
    });
  }

  /** The container of a service that runs (not an init); an unknown service → invalid_request naming the known. */
  private async serviceContainer(
    instanceId: string,
    service: string,
    signal: AbortSignal | undefined,
  ): Promise<Dockerode.ContainerInfo> {
    const containers = await this.listRunnable(instanceId, signal);
    const found = containers.find((c) => c.Labels?.[LABEL.service] === service);
    if (found) return found;
    const known = containers.map((c) => c.Labels?.[LABEL.service]).filter(Boolean);
    throw new PermanentProviderError(
      `instance ${instanceId} has no service "${service}" that runs` +
        (known.length > 0 ? ` (its services: ${known.join(', ')})` : ''),
      'invalid_request',
    );
  }

  /** The project's containers except inits, mains before sidecars. */
  private async listRunnable(instanceId: string, signal: AbortSignal | undefined) {
    const all = await this.listProject(instanceId, signal);
    return sortByRole(all.filter((c) => c.Labels?.[LABEL.role] !== 'init'));
  }
}

function validateRequest(req: ProvisionRequest, limits: DockerHostLimits): void {
  if (!req.services || req.services.length === 0) {
    throw new PermanentProviderError('an instance needs at least one service');
  }
  if (!req.services.some((s) => roleOf(s) === 'main')) {
    throw new PermanentProviderError('an instance needs a main service (role "main" or empty)');
  }
  const seen = new Set<string>();
  for (const service of req.services) {
    validateService(service, limits);
    if (seen.has(service.name))
      throw new PermanentProviderError(`service name ${service.name} is used twice`);
    seen.add(service.name);
  }
}

function containerLabel(c: Dockerode.ContainerInfo): string {
  return (c.Names?.[0] ?? c.Id).replace(/^\//, '');
}

function sortByRole(containers: Dockerode.ContainerInfo[]): Dockerode.ContainerInfo[] {
  const rank = (c: Dockerode.ContainerInfo) => ROLE_ORDER[c.Labels?.[LABEL.role] || 'main'] ?? 3;
  return [...containers].sort(
    (a, b) => rank(a) - rank(b) || containerLabel(a).localeCompare(containerLabel(b)),
  );
}

/** A pull the daemon reported as failed inside its progress stream. */
class PullFailed extends Error {
  override readonly name = 'PullFailed';
}

/** The daemon's query for a LogOptions; a bad `since` or `tail` → PermanentProviderError('invalid_request'). */
function logQuery(options: LogOptions): Record<string, unknown> {
  const query: Record<string, unknown> = {
    stdout: true,
    stderr: true,
    timestamps: true,
    follow: options.follow === true,
    tail: 'all',
  };
  const tail = options.tail;
  if (tail !== undefined && tail !== null) {
    if (typeof tail !== 'number' || !Number.isInteger(tail)) {
      throw new PermanentProviderError(`tail must be an integer (got ${String(tail)})`, 'invalid_request');
    }
    if (tail > 0) query.tail = tail;
  }
  if (options.since) {
    try {
      query.since = dockerSince(options.since);
    } catch (err) {
      throw new PermanentProviderError(`since: ${errorMessage(err)}`, 'invalid_request');
    }
  }
  return query;
}
