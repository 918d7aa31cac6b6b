import type { PortRange } from '../../config/port-range.ts';
import { formatPortRange } from '../../config/port-range.ts';
import type { ResourceSpec, ServiceSpec } from '../../domain/instance.ts';
import type { SpecProblem } from '../provider.ts';

/**
 * What the operator allows one Docker container (config/env.ts, CTRLPLANE_DOCKER_*): the limits every container
 * gets, the defaults for a spec that gives none, the ceilings a spec may not go above, and where host ports are
 * published. The provider applies them; the API checks a spec against them before anything is written.
 */
export interface DockerHostLimits {
  /** HostConfig.PidsLimit of every container. */
  pidsLimit: number;
  /** Memory of a service whose memory_mb is absent or 0. */
  defaultMemoryMb: number;
  /** CPU (thousandths) of a service whose cpu_millis is absent or 0. */
  defaultCpuMillis: number;
  maxMemoryMb: number;
  maxCpuMillis: number;
  /** json-file log rotation: size of one file (`10m`) and how many are kept. */
  logMaxSize: string;
  logMaxFile: number;
  /** Host ports a service may ask for; one without a host port gets a free one from the range. */
  hostPortRange: PortRange;
  /** The host address published ports listen on. */
  hostPortAddress: string;
}

export const DEFAULT_HOST_LIMITS: DockerHostLimits = {
  pidsLimit: 512,
  defaultMemoryMb: 512,
  defaultCpuMillis: 1000,
  maxMemoryMb: 8192,
  maxCpuMillis: 4000,
  logMaxSize: '10m',
  logMaxFile: 3,
  hostPortRange: { first: 30000, last: 32767 },
  hostPortAddress: '127.0.0.1',
};

/** Docker refuses memory limits below 6 MiB. */
export const MIN_MEMORY_MB = 6;

/**
 * Problems of cpu_millis and memory_mb against the operator's limits: non-negative integers (0 or absent: the
 * default), memory 0 or ≥ 6 MiB, neither above its ceiling. Paths are relative to the resources object.
 */
export function resourceProblems(
  resources: Partial<ResourceSpec> | undefined,
  limits: DockerHostLimits,
): SpecProblem[] {
  if (!resources) return [];
  const problems: SpecProblem[] = [];
  const { cpu_millis = 0, memory_mb = 0 } = resources;
  if (!Number.isInteger(cpu_millis) || cpu_millis < 0) {
    problems.push({
      path: ['cpu_millis'],
      message: `must be a non-negative integer (got ${String(cpu_millis)})`,
    });
  } else if (cpu_millis > limits.maxCpuMillis) {
    problems.push({
      path: ['cpu_millis'],
      message: `must be at most ${limits.maxCpuMillis}, this Docker host's ceiling (got ${cpu_millis})`,
    });
  }
  if (!Number.isInteger(memory_mb) || memory_mb < 0) {
    problems.push({
      path: ['memory_mb'],
      message: `must be a non-negative integer (got ${String(memory_mb)})`,
    });
  } else if (memory_mb > 0 && memory_mb < MIN_MEMORY_MB) {
    problems.push({
      path: ['memory_mb'],
      message: `must be 0 (the default, ${limits.defaultMemoryMb}) or at least ${MIN_MEMORY_MB} (got ${memory_mb})`,
    });
  } else if (memory_mb > limits.maxMemoryMb) {
    problems.push({
      path: ['memory_mb'],
      message: `must be at most ${limits.maxMemoryMb}, this Docker host's ceiling (got ${memory_mb})`,
    });
  }
  return problems;
}

/**
 * Problems of one service against the operator's limits: its resources, its host ports (only from the
 * operator's range) and its volumes (a size cannot be enforced: the local volume driver has no size limit, so
 * `size_mb` is refused rather than silently ignored). Paths are relative to the service.
 */
export function serviceLimitProblems(service: ServiceSpec, limits: DockerHostLimits): SpecProblem[] {
  const problems: SpecProblem[] = resourceProblems(service.resources, limits).map((p) => ({
    path: ['resources', ...p.path],
    message: p.message,
  }));
  const range = limits.hostPortRange;
  (service.ports ?? []).forEach((port, i) => {
    const host = port.host;
    if (host === undefined || host === null || host === 0) return;
    if (!Number.isInteger(host) || host < range.first || host > range.last) {
      problems.push({
        path: ['ports', i, 'host'],
        message:
          `must be in this Docker host's port range ${formatPortRange(range)}, or left out for a free port ` +
          `from it (got ${String(host)})`,
      });
    }
  });
  (service.volumes ?? []).forEach((volume, i) => {
    if (volume?.size_mb !== undefined && volume.size_mb !== null && volume.size_mb !== 0) {
      problems.push({
        path: ['volumes', i, 'size_mb'],
        message:
          'cannot be enforced on Docker: the local volume driver has no size limit; leave size_mb out ' +
          '(the volume then has no size limit of its own)',
      });
    }
  });
  return problems;
}
