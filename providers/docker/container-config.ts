import type Dockerode from 'dockerode';
import { formatPortRange } from '../../config/port-range.ts';
import type { PortSpec, ResourceSpec, ServiceSpec } from '../../domain/instance.ts';
import { PermanentProviderError } from '../provider.ts';
import { configFilesDigest, configFilesOf, type RenderedConfigFile } from './config-files.ts';
import { dockerHealthcheck } from './health-check.ts';
import { type DockerHostLimits, resourceProblems, serviceLimitProblems } from './host-limits.ts';
import { LABEL, roleOf } from './labels.ts';
import { isValidServiceName } from './naming.ts';
import { type SpecHashKey, specHash } from './spec-hash.ts';
import { validateVolumes, volumeMounts } from './volumes.ts';

const PROTOCOLS = new Set(['tcp', 'udp', 'sctp']);
const MIB = 1024 * 1024;

export function portProtocol(port: PortSpec): string {
  return (port.protocol || 'tcp').toLowerCase();
}

/** The Docker limits of a ResourceSpec. MemorySwap = Memory: no swap on top of the limit. Never 0 (unlimited). */
export interface ResourceLimits {
  Memory: number;
  MemorySwap: number;
  NanoCpus: number;
}

/** A ResourceSpec's limits; 0 or absent memory_mb / cpu_millis take the operator's defaults. */
export function resourceLimits(
  resources: Partial<ResourceSpec> | undefined,
  limits: DockerHostLimits,
): ResourceLimits {
  const memory = Math.round((resources?.memory_mb || limits.defaultMemoryMb) * MIB);
  return {
    Memory: memory,
    MemorySwap: memory,
    NanoCpus: Math.round((resources?.cpu_millis || limits.defaultCpuMillis) * 1_000_000),
  };
}

/**
 * Checks cpu_millis and memory_mb against the operator's limits (host-limits.ts) and, if `replicas` is checked,
 * that it is 1: on Docker one instance is one replica. Returns a message, or undefined when valid.
 */
export function resourceProblem(
  resources: Partial<ResourceSpec> | undefined,
  checkReplicas: boolean,
  limits: DockerHostLimits,
): string | undefined {
  if (!resources) return undefined;
  const [problem] = resourceProblems(resources, limits);
  if (problem) return `${problem.path.join('.')} ${problem.message}`;
  const { replicas } = resources;
  if (checkReplicas && replicas !== undefined && replicas !== null && replicas !== 1) {
    return `replicas must be 1 on the docker provider: one instance is one replica (got ${String(replicas)})`;
  }
  return undefined;
}

/** Rejects (permanently) what Docker would refuse anyway, so a bad spec is not retried forever. */
export function validateService(service: ServiceSpec, limits: DockerHostLimits): void {
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
  const problem = resourceProblem(service.resources, role === 'main', limits);
  if (problem) throw new PermanentProviderError(`service ${service.name}: ${problem}`);
  const [limitProblem] = serviceLimitProblems(service, limits);
  if (limitProblem) {
    throw new PermanentProviderError(
      `service ${service.name}: ${limitProblem.path.join('.')} ${limitProblem.message}`,
    );
  }
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
  /** The operator's limits: pids, defaults, log rotation, where ports are published. */
  limits: DockerHostLimits;
  /** Signs the spec hash (spec-hash.ts). */
  specHashKey: SpecHashKey;
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
  const { service, containerName, networkName, limits } = input;
  const isInit = roleOf(service) === 'init';

  const exposedPorts: Record<string, Record<string, never>> = {};
  const portBindings: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
  if (!isInit) {
    for (const port of service.ports ?? []) {
      const key = `${port.container}/${portProtocol(port)}`;
      exposedPorts[key] = {};
      const bindings = portBindings[key] ?? [];
      // Without a host port, Docker takes the first free one of the range.
      bindings.push({
        HostIp: limits.hostPortAddress,
        HostPort: port.host ? String(port.host) : formatPortRange(limits.hostPortRange),
      });
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
    PidsLimit: limits.pidsLimit,
    // setuid binaries in the image cannot raise a process's privileges.
    SecurityOpt: ['no-new-privileges:true'],
    LogConfig: {
      Type: 'json-file',
      Config: { 'max-size': limits.logMaxSize, 'max-file': String(limits.logMaxFile) },
    },
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
  const hash = specHash(input.specHashKey, { config, files: configFilesDigest(files) });
  config.Labels = { ...config.Labels, [LABEL.specHash]: hash };

  const resources = resourceLimits(service.resources, limits);
  hostConfig.Memory = resources.Memory;
  hostConfig.MemorySwap = resources.MemorySwap;
  hostConfig.NanoCpus = resources.NanoCpus;
  return { config, files, limits: resources };
}

/**
 * What `container.update` must send to bring a container's limits to `wanted`, or `undefined` if they already
 * match. Both limits are always set (0 takes the operator's default), so a container never has to lose one.
 */
export function limitsUpdate(
  current: Pick<Dockerode.HostConfig, 'Memory' | 'MemorySwap' | 'NanoCpus'> | undefined,
  wanted: ResourceLimits,
): Partial<ResourceLimits> | undefined {
  const update: Partial<ResourceLimits> = {};
  if (wanted.Memory !== (current?.Memory ?? 0) || wanted.MemorySwap !== (current?.MemorySwap ?? 0)) {
    update.Memory = wanted.Memory;
    update.MemorySwap = wanted.MemorySwap;
  }
  if (wanted.NanoCpus !== (current?.NanoCpus ?? 0)) update.NanoCpus = wanted.NanoCpus;
  return Object.keys(update).length > 0 ? update : undefined;
}
