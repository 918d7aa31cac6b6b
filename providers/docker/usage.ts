import type { ResourceUsage } from '../provider.ts';

const MIB = 1024 * 1024;

/** The parts of a `GET /containers/{id}/stats?stream=false` answer that usage is computed from. */
export interface StatsSample {
  cpu_stats?: CpuStats;
  precpu_stats?: CpuStats;
  memory_stats?: {
    usage?: number;
    limit?: number;
    stats?: Record<string, number | undefined>;
  };
  networks?: Record<string, { rx_bytes?: number; tx_bytes?: number } | undefined>;
}

interface CpuStats {
  cpu_usage?: { total_usage?: number; percpu_usage?: number[] | null };
  system_cpu_usage?: number;
  online_cpus?: number;
}

export interface ContainerUsage {
  cpuPercent: number;
  memoryUsedBytes: number;
  memoryLimitBytes: number;
  rxBytes: number;
  txBytes: number;
}

/**
 * One container's usage: cpu% = Δcontainer / Δsystem × online CPUs × 100 (0 when a
 * delta is not positive); memory used = usage minus the reclaimable page cache (`total_inactive_file` on cgroup v1,
 * `inactive_file` on v2, else `cache`, as the docker CLI does); network = rx/tx bytes over all interfaces.
 */
export function containerUsage(stats: StatsSample): ContainerUsage {
  const cpu = stats.cpu_stats;
  const pre = stats.precpu_stats;
  const cpuDelta = (cpu?.cpu_usage?.total_usage ?? 0) - (pre?.cpu_usage?.total_usage ?? 0);
  const systemDelta = (cpu?.system_cpu_usage ?? 0) - (pre?.system_cpu_usage ?? 0);
  const cpus = cpu?.online_cpus || cpu?.cpu_usage?.percpu_usage?.length || 1;
  const cpuPercent = cpuDelta > 0 && systemDelta > 0 ? (cpuDelta / systemDelta) * cpus * 100 : 0;

  const memory = stats.memory_stats;
  const usage = memory?.usage ?? 0;
  const detail = memory?.stats ?? {};
  const reclaimable = detail.total_inactive_file ?? detail.inactive_file ?? detail.cache ?? 0;
  const memoryUsedBytes = reclaimable < usage ? usage - reclaimable : usage;

  let rxBytes = 0;
  let txBytes = 0;
  for (const net of Object.values(stats.networks ?? {})) {
    rxBytes += net?.rx_bytes ?? 0;
    txBytes += net?.tx_bytes ?? 0;
  }
  return { cpuPercent, memoryUsedBytes, memoryLimitBytes: memory?.limit ?? 0, rxBytes, txBytes };
}

export function zeroUsage(): ResourceUsage {
  return {
    cpu_percent: 0,
    memory_used_mb: 0,
    memory_limit_mb: 0,
    network_in_mb: 0,
    network_out_mb: 0,
  };
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/**
 * The instance's usage: the sum over its running containers. A container without a memory limit reports the
 * host's memory as its limit, so the summed limit is capped at the host's memory (`hostMemoryBytes`, when known).
 */
export function sumUsage(samples: readonly ContainerUsage[], hostMemoryBytes?: number): ResourceUsage {
  if (samples.length === 0) return zeroUsage();
  let cpu = 0;
  let used = 0;
  let limit = 0;
  let rx = 0;
  let tx = 0;
  for (const s of samples) {
    cpu += s.cpuPercent;
    if (s.memoryLimitBytes > 0) used += s.memoryUsedBytes;
    limit += s.memoryLimitBytes;
    rx += s.rxBytes;
    tx += s.txBytes;
  }
  if (hostMemoryBytes && hostMemoryBytes > 0 && limit > hostMemoryBytes) limit = hostMemoryBytes;
  return {
    cpu_percent: round(cpu, 2),
    memory_used_mb: round(used / MIB, 2),
    memory_limit_mb: round(limit / MIB, 2),
    network_in_mb: round(rx / MIB, 4),
    network_out_mb: round(tx / MIB, 4),
  };
}
