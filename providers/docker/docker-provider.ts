import Dockerode from 'dockerode';
import type { Endpoint, ServiceSpec } from '../../domain/instance';
import type { InstanceState } from '../../domain/instance-state';
import {
  type CallOptions,
  type HealthStatus,
  type InstanceStatus,
  PermanentProviderError,
  type Provider,
  type ProviderInfo,
  type ProvisionRequest,
  type ProvisionResult,
  type ServiceStatus,
} from '../provider';
import { buildContainerConfig, validateService } from './container-config';
import { containerCondition, worstState } from './container-state';
import { errorMessage, hasStatus, ignoreStatus } from './docker-errors';
import { endpointsFromInspect } from './endpoints';
import { LABEL, type LabelContext, projectFilter, projectLabels, roleOf, serviceLabels } from './labels';
import { logLines } from './log-lines';
import { containerName, networkName, projectName, providerRef } from './naming';
import { orderServices } from './service-order';

type LogFn = (obj: Record<string, unknown>, msg: string) => void;

export interface DockerProviderLogger {
  info: LogFn;
  warn: LogFn;
}

export interface DockerProviderOptions {
  /** Defaults to `new Dockerode()`, which honours DOCKER_HOST or uses /var/run/docker.sock. */
  docker?: Dockerode;
  /** Seconds `stop` lets a container handle SIGTERM before it is killed. Default 10. */
  stopTimeoutSeconds?: number;
  /** How long provision waits for an init service to exit. Default 600 (10 minutes). */
  initTimeoutSeconds?: number;
  logger?: DockerProviderLogger;
}

const HEALTH_TIMEOUT_MS = 2000;
const INIT_LOG_TAIL = 20;
const ROLE_ORDER: Record<string, number> = { init: 0, main: 1, sidecar: 2 };

const noopLogger: DockerProviderLogger = { info: () => {}, warn: () => {} };

/** A fresh options object per call: docker-modem deletes `abortSignal` from the object it is given. */
function abortable(signal: AbortSignal | undefined): { abortSignal?: AbortSignal } {
  return signal ? { abortSignal: signal } : {};
}

/**
 * One instance = one compose-like project of plain Docker objects (reference-behaviour.md §6): a bridge network
 * `cp-<id>-net` and one container `cp-<id>-<service>` per service, all labelled `ctrlplane.*`.
 */
export class DockerProvider implements Provider {
  private readonly docker: Dockerode;
  private readonly stopTimeoutSeconds: number;
  private readonly initTimeoutMs: number;
  private readonly log: DockerProviderLogger;

  constructor(options: DockerProviderOptions = {}) {
    this.docker = options.docker ?? new Dockerode();
    this.stopTimeoutSeconds = options.stopTimeoutSeconds ?? 10;
    this.initTimeoutMs = (options.initTimeoutSeconds ?? 600) * 1000;
    this.log = options.logger ?? noopLogger;
  }

  info(): ProviderInfo {
    return { name: 'docker', version: '1.0.0', region: 'local' };
  }

  async provision(req: ProvisionRequest, opts: CallOptions = {}): Promise<ProvisionResult> {
    validateRequest(req);
    const { signal } = opts;
    const progress = (detail: string) => opts.progress?.(detail);
    const ctx: LabelContext = { instanceId: req.instance_id, tenantId: req.tenant_id, labels: req.labels };

    await this.ensureNetwork(ctx, signal);
    progress(`network ${networkName(req.instance_id)} ready`);

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
    this.log.info({ instance_id: instanceId, containers: containers.length }, 'docker project deprovisioned');
  }

  async start(instanceId: string, opts: CallOptions = {}): Promise<void> {
    const containers = await this.listRunnable(instanceId, opts.signal);
    for (const c of containers) {
      await ignoreStatus(this.docker.getContainer(c.Id).start(abortable(opts.signal)), 304);
      opts.progress?.(`started container ${containerLabel(c)}`);
    }
  }

  async stop(instanceId: string, opts: CallOptions = {}): Promise<void> {
    // Sidecars first, then mains: the reverse of the start order.
    const containers = (await this.listRunnable(instanceId, opts.signal)).reverse();
    for (const c of containers) {
      await ignoreStatus(
        this.docker.getContainer(c.Id).stop({ t: this.stopTimeoutSeconds, ...abortable(opts.signal) }),
        304,
        404,
      );
      opts.progress?.(`stopped container ${containerLabel(c)}`);
    }
  }

  async status(instanceId: string, opts: CallOptions = {}): Promise<InstanceStatus> {
    const { signal } = opts;
    const containers = sortByRole(await this.listProject(instanceId, signal));
    const services: Record<string, ServiceStatus> = {};
    const endpoints: Endpoint[] = [];
    const counted: InstanceState[] = [];
    const failures: string[] = [];
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
      const restartCount = info.RestartCount ?? 0;
      services[service] = {
        state: condition.state,
        ready: condition.state === 'running',
        restarts: restartCount,
        provider_ref: info.Id,
        message: condition.message,
      };
      restarts += restartCount;
      if (role === 'init') {
        if (!info.State.Running && info.State.ExitCode === 0) continue;
      } else {
        endpoints.push(...endpointsFromInspect(service, info));
      }
      counted.push(condition.state);
      if (condition.state === 'failed') failures.push(`${service}: ${condition.message ?? 'failed'}`);
      if (role === 'main' && condition.state === 'running' && !startedAt) startedAt = info.State.StartedAt;
    }

    if (inspected === 0) return { state: 'destroyed', ready: false, restarts: 0, endpoints: [] };
    const state = counted.length > 0 ? worstState(counted) : 'stopped';
    const result: InstanceStatus = {
      state,
      ready: counted.length > 0 && counted.every((s) => s === 'running'),
      restarts,
      endpoints,
      services,
    };
    if (startedAt) result.started_at = startedAt;
    if (failures.length > 0) result.message = failures.join('; ');
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

  // --- provision steps ---------------------------------------------------------------------------------------

  private async ensureNetwork(ctx: LabelContext, signal: AbortSignal | undefined): Promise<string> {
    const name = networkName(ctx.instanceId);
    const existing = await ignoreStatus(this.docker.getNetwork(name).inspect(), 404);
    if (existing) return existing.Id;
    try {
      const network = await this.docker.createNetwork({
        Name: name,
        Driver: 'bridge',
        CheckDuplicate: true,
        Labels: projectLabels(ctx),
        ...abortable(signal),
      });
      this.log.info({ instance_id: ctx.instanceId, network: name }, 'docker network created');
      return network.id;
    } catch (err) {
      // A concurrent attempt created it first.
      if (!hasStatus(err, 409)) throw err;
      const raced = await this.docker.getNetwork(name).inspect();
      return raced.Id;
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

  /** Inspects the image; pulls it if absent. Neither present nor pullable → PermanentProviderError. */
  private async ensureImage(ref: string, opts: CallOptions): Promise<void> {
    const { signal } = opts;
    try {
      await this.docker.getImage(ref).inspect();
      return;
    } catch (err) {
      if (!hasStatus(err, 404)) throw err;
    }
    opts.progress?.(`pulling image ${ref}`);
    try {
      const stream = await this.docker.pull(ref, abortable(signal));
      await this.followPull(stream, opts);
    } catch (err) {
      if (signal?.aborted) throw err;
      throw new PermanentProviderError(
        `image ${ref} is not present and could not be pulled: ${errorMessage(err)}`,
        'image_not_found',
      );
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
          if (failed) return reject(new Error(failed.errorDetail?.message ?? failed.error ?? 'pull failed'));
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

  /** Runs an init service to completion: (re)create, start, wait for it to exit; non-zero → permanent failure. */
  private async runInit(ctx: LabelContext, service: ServiceSpec, opts: CallOptions): Promise<void> {
    const { signal } = opts;
    const name = containerName(ctx.instanceId, service.name);
    await ignoreStatus(
      this.docker.getContainer(name).remove({ force: true, v: true, ...abortable(signal) }),
      404,
    );
    await this.ensureImage(service.image, opts);
    const config = buildContainerConfig({
      service,
      containerName: name,
      networkName: networkName(ctx.instanceId),
      labels: serviceLabels(ctx, service),
    });
    const container = await this.docker.createContainer({ ...config, ...abortable(signal) });
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

    let tail = '';
    try {
      const raw = await container.logs({
        stdout: true,
        stderr: true,
        tail: INIT_LOG_TAIL,
        ...abortable(signal),
      });
      tail = logLines(raw).slice(-INIT_LOG_TAIL).join('\n');
    } catch (err) {
      tail = `(logs unavailable: ${errorMessage(err)})`;
    }
    if (!tail && result.Error?.Message) tail = result.Error.Message;
    throw new PermanentProviderError(`init service ${service.name} exited with code ${code}: ${tail}`);
  }

  /**
   * Makes a main or sidecar container match the spec: adopts an existing one whose spec hash is unchanged (starting
   * it if needed), otherwise replaces it. Returns the running container's inspect data.
   */
  private async ensureService(
    ctx: LabelContext,
    service: ServiceSpec,
    opts: CallOptions,
  ): Promise<Dockerode.ContainerInspectInfo> {
    const { signal } = opts;
    const name = containerName(ctx.instanceId, service.name);
    const network = networkName(ctx.instanceId);
    const config = buildContainerConfig({
      service,
      containerName: name,
      networkName: network,
      labels: serviceLabels(ctx, service),
    });
    const hash = config.Labels?.[LABEL.specHash];

    const existing = await ignoreStatus(this.docker.getContainer(name).inspect(abortable(signal)), 404);
    if (existing) {
      const sameSpec = existing.Config?.Labels?.[LABEL.specHash] === hash;
      if (sameSpec && existing.NetworkSettings?.Networks?.[network]) {
        const container = this.docker.getContainer(existing.Id);
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

    await this.ensureImage(service.image, opts);
    const container = await this.docker.createContainer({ ...config, ...abortable(signal) });
    opts.progress?.(`created container ${name}`);
    try {
      await ignoreStatus(container.start(abortable(signal)), 304);
    } catch (err) {
      await ignoreStatus(container.remove({ force: true, v: true }), 404).catch((removeErr: unknown) => {
        this.log.warn(
          { container: name, err: errorMessage(removeErr) },
          'could not remove a container that failed',
        );
      });
      throw err;
    }
    this.log.info({ instance_id: ctx.instanceId, container: name, id: container.id }, 'container started');
    return container.inspect(abortable(signal));
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

  /** The project's containers except inits, mains before sidecars. */
  private async listRunnable(instanceId: string, signal: AbortSignal | undefined) {
    const all = await this.listProject(instanceId, signal);
    return sortByRole(all.filter((c) => c.Labels?.[LABEL.role] !== 'init'));
  }
}

function validateRequest(req: ProvisionRequest): void {
  if (!req.services || req.services.length === 0) {
    throw new PermanentProviderError('an instance needs at least one service');
  }
  if (!req.services.some((s) => roleOf(s) === 'main')) {
    throw new PermanentProviderError('an instance needs a main service (role "main" or empty)');
  }
  const seen = new Set<string>();
  for (const service of req.services) {
    validateService(service);
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
