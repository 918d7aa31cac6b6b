import type Dockerode from 'dockerode';
import type { PortSpec, ResourceSpec, ServiceSpec } from '../../domain/instance.ts';
import { PermanentProviderError } from '../provider.ts';
import { configFilesDigest, configFilesOf, type RenderedConfigFile } from './config-files.ts';
import { dockerHealthcheck } from './health-check.ts';
import { LABEL, roleOf } from './labels.ts';
import { isValidServiceName } from './naming.ts';
import { specHash } from './spec-hash.ts';
import { validateVolumes, volumeMounts } from './volumes.ts';

const PROTOCOLS = new Set(['tcp', 'udp', 'sctp']);
const MIB = 1024 * 1024;
/** Docker refuses memory limits below 6 MiB. */
export const MIN_MEMORY_MB = 6;

export function portProtocol(port: PortSpec): string {
  return (port.protocol || 'tcp').toLowerCase();
}

/** The Docker limits of a ResourceSpec; 0 means no limit. MemorySwap = Memory: no swap on top of the limit. */
export interface ResourceLimits {
  Memory: number;
  MemorySwap: number;
  NanoCpus: number;
}

export function resourceLimits(resources: Partial<ResourceSpec> | undefined): ResourceLimits {
  const memory = Math.round((resources?.memory_mb ?? 0) * MIB);
  return {
    Memory: memory,
    MemorySwap: memory,
    NanoCpus: Math.round((resources?.cpu_millis ?? 0) * 1_000_000),
  };
}

/**
 * Checks cpu_millis and memory_mb (non-negative integers, memory 0 or ≥ 6 MiB) and, if `replicas` is checked,
 * that it is 1: on Docker one instance is one replica. Returns a message, or undefined when valid.
 */
export function resourceProblem(
  resources: Partial<ResourceSpec> | undefined,
  checkReplicas: boolean,
): string | undefined {
  if (!resources) return undefined;
  const { cpu_millis = 0, memory_mb = 0, replicas } = resources;
  if (!Number.isInteger(cpu_millis) || cpu_millis < 0) {
    return `cpu_millis must be a non-negative integer (got ${String(cpu_millis)})`;
  }
  if (!Number.isInteger(memory_mb) || memory_mb < 0) {
    return `memory_mb must be a non-negative integer (got ${String(memory_mb)})`;
  }
  if (memory_mb > 0 && memory_mb < MIN_MEMORY_MB) {
    return `memory_mb must be 0 (no limit) or at least ${MIN_MEMORY_MB} (got ${memory_mb})`;
  }
  if (checkReplicas && replicas !== undefined && replicas !== null && replicas !== 1) {
    return `replicas must be 1 on the docker provider: one instance is one replica (got ${String(replicas)})`;
  }
  return undefined;
}

/** Rejects (permanently) what Docker would refuse anyway, so a bad spec is not retried forever. */
export function validateService(service: ServiceSpec): void {
  if (!isValidServiceName(service.name)) {
    throw new PermanentProviderError(
      `service name "${service.name}" is not valid: use letters, digits, '_', '.' and '-', starting with a letter or digit`,
    );
  }
  if (!service.image?.trim()) throw new PermanentProviderError(`service ${service.name} has no image`);
  const role = roleOf(service);
  if (role !== 'main' && role !== 'sidecar' && role !== 'init') {
    throw new PermanentProviderError(`service ${service.name} has an unknown role "${String(service.role)}"`);
  }
  for (const port of service.ports ?? []) {
    if (!Number.isInteger(port.container) || port.container < 1 || port.container > 65535) {
      throw new PermanentProviderError(
        `service ${service.name}: container port ${port.container} is not valid`,
      );
    }
    if (port.host !== undefined && (!Number.isInteger(port.host) || port.host < 0 || port.host > 65535)) {
      throw new PermanentProviderError(`service ${service.name}: host port ${port.host} is not valid`);
    }
    if (!PROTOCOLS.has(portProtocol(port))) {
      throw new PermanentProviderError(
        `service ${service.name}: port protocol "${port.protocol}" is not valid`,
      );
    }
  }
  const problem = resourceProblem(service.resources, role === 'main');
  if (problem) throw new PermanentProviderError(`service ${service.name}: ${problem}`);
  validateVolumes(service);
  if (role !== 'init') dockerHealthcheck(service);
  configFilesOf(service);
}

export interface ContainerConfigInput {
  instanceId: string;
  service: ServiceSpec;
  containerName: string;
  networkName: string;
  /** The container's labels without the spec hash (see labels.ts). */
  labels: Record<string, string>;
}

export interface ContainerPlan {
  /** The create config, with the `ctrlplane.spec-hash` label. */
  config: Dockerode.ContainerCreateOptions;
  /** Config files to put into the container after create and before start. */
  files: RenderedConfigFile[];
  /** The CPU and memory limits; not part of the spec hash, since `scale` changes them in place. */
  limits: ResourceLimits;
}

/**
 * The create config of a service's container. Init containers get no ports, no health check and restart policy
 * `no`; mains and sidecars restart `unless-stopped`.
 *
 * The `ctrlplane.spec-hash` label is the hash of everything that needs a new container to change — the config
 * without the CPU/memory limits, plus the config files' paths and digests. Limits are left out because Docker
 * updates them in place: a container whose limits differ from the spec is updated, not recreated.
 */
export function buildContainerConfig(input: ContainerConfigInput): ContainerPlan {
  const { service, containerName, networkName } = input;
  const isInit = roleOf(service) === 'init';

  const exposedPorts: Record<string, Record<string, never>> = {};
  const portBindings: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
  if (!isInit) {
    for (const port of service.ports ?? []) {
      const key = `${port.container}/${portProtocol(port)}`;
      exposedPorts[key] = {};
      const bindings = portBindings[key] ?? [];
      bindings.push({ HostIp: '0.0.0.0', HostPort: port.host ? String(port.host) : '' });
      portBindings[key] = bindings;
    }
  }

  const hostConfig: Dockerode.HostConfig = {
    NetworkMode: networkName,
    // docker-init as PID 1 forwards SIGTERM, so a stop does not wait out the timeout on a shell entrypoint.
    Init: true,
    RestartPolicy: { Name: isInit ? 'no' : 'unless-stopped' },
    PortBindings: portBindings,
    Mounts: volumeMounts(input.instanceId, service.volumes),
  };

  const config: Dockerode.ContainerCreateOptions = {
    name: containerName,
    Image: service.image,
    Env: Object.entries(service.env ?? {}).map(([k, v]) => `${k}=${v}`),
    Labels: { ...input.labels },
    ExposedPorts: exposedPorts,
    HostConfig: hostConfig,
    NetworkingConfig: { EndpointsConfig: { [networkName]: { Aliases: [service.name] } } },
  };
  if (service.command && service.command.length > 0) config.Entrypoint = [...service.command];
  if (service.args && service.args.length > 0) config.Cmd = [...service.args];
  const healthcheck = isInit ? undefined : dockerHealthcheck(service);
  if (healthcheck) config.Healthcheck = healthcheck;

  const files = configFilesOf(service);
  const hash = specHash({ config, files: configFilesDigest(files) });
  config.Labels = { ...config.Labels, [LABEL.specHash]: hash };

  const limits = resourceLimits(service.resources);
  if (limits.Memory > 0) {
    hostConfig.Memory = limits.Memory;
    hostConfig.MemorySwap = limits.MemorySwap;
  }
  if (limits.NanoCpus > 0) hostConfig.NanoCpus = limits.NanoCpus;
  return { config, files, limits };
}

/**
 * What `container.update` must send to bring a container's limits to `wanted`, or `undefined` if they already
 * match. Docker cannot lift a limit in place (0 is "unchanged" there and -1 is refused), so going from a limit to
 * none returns `'recreate'`.
 */
export function limitsUpdate(
  current: Pick<Dockerode.HostConfig, 'Memory' | 'MemorySwap' | 'NanoCpus'> | undefined,
  wanted: ResourceLimits,
): Partial<ResourceLimits> | 'recreate' | undefined {
  const memory = current?.Memory ?? 0;
  const swap = current?.MemorySwap ?? 0;
  const cpus = current?.NanoCpus ?? 0;
  if ((wanted.Memory === 0 && memory !== 0) || (wanted.NanoCpus === 0 && cpus !== 0)) return 'recreate';
  const update: Partial<ResourceLimits> = {};
  if (wanted.Memory !== 0 && (wanted.Memory !== memory || wanted.MemorySwap !== swap)) {
    update.Memory = wanted.Memory;
    update.MemorySwap = wanted.MemorySwap;
  }
  if (wanted.NanoCpus !== 0 && wanted.NanoCpus !== cpus) update.NanoCpus = wanted.NanoCpus;
  return Object.keys(update).length > 0 ? update : undefined;
}
