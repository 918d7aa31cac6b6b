import type Dockerode from 'dockerode';
import type { InstanceState } from '../../domain/instance-state.ts';

/** Exit codes of a process ended by SIGKILL / SIGTERM, i.e. by `docker stop` (docker-init reports 128+signal). */
const STOP_EXIT_CODES = new Set([137, 143]);

export interface ContainerCondition {
  state: InstanceState;
  message?: string;
}

/**
 * One container's state: running → running, restarting → starting, dead or OOM-killed → failed, exited with a
 * non-zero code → failed (except the codes a `docker stop` produces), anything else → stopped.
 */
export function containerCondition(info: Dockerode.ContainerInspectInfo): ContainerCondition {
  const s = info.State;
  const error = s.Error || undefined;
  if (s.Status === 'running' || (s.Running && !s.Restarting && !s.Paused)) {
    return { state: 'running', message: error };
  }
  if (s.Status === 'restarting' || s.Restarting) {
    return { state: 'starting', message: error ?? `restarting (exit code ${s.ExitCode})` };
  }
  if (s.Status === 'dead' || s.Dead) return { state: 'failed', message: error ?? 'container is dead' };
  if (s.OOMKilled) return { state: 'failed', message: error ?? 'killed: out of memory' };
  if (s.Status === 'exited' && s.ExitCode !== 0 && !STOP_EXIT_CODES.has(s.ExitCode)) {
    return { state: 'failed', message: error ?? `exited with code ${s.ExitCode}` };
  }
  return { state: 'stopped', message: error };
}

const SEVERITY: Partial<Record<InstanceState, number>> = { running: 0, stopped: 1, starting: 2, failed: 3 };

/** Worst-of: failed > starting > stopped > running. */
export function worstState(states: readonly InstanceState[]): InstanceState {
  let worst: InstanceState = 'running';
  for (const state of states) {
    if ((SEVERITY[state] ?? 0) > (SEVERITY[worst] ?? 0)) worst = state;
  }
  return worst;
}

export interface ContainerReadiness {
  ready: boolean;
  /** Why a running container is not ready (its health check). */
  message?: string;
}

/**
 * Whether a container is ready: it runs and, if it has a health check, Docker reports it `healthy`
 * (`starting` and `unhealthy` are not ready). The check's output is the workload's: `redact` takes the
 * instance's secrets out of it before it is cut to the message.
 */
export function containerReadiness(
  info: Dockerode.ContainerInspectInfo,
  condition: ContainerCondition = containerCondition(info),
  redact: (text: string) => string = (text) => text,
): ContainerReadiness {
  if (condition.state !== 'running') return { ready: false };
  const health = info.State.Health;
  const status = health?.Status;
  if (!status || status === 'none' || status === 'healthy') return { ready: true };
  if (status === 'starting') return { ready: false, message: 'health check starting' };
  const last = health.Log?.[health.Log.length - 1];
  const output = redact(last?.Output ?? '')
    .trim()
    .split('\n')
    .slice(-3)
    .join(' ')
    .slice(0, 300);
  return {
    ready: false,
    message: `health check ${status}${last ? ` (exit ${last.ExitCode}${output ? `: ${output}` : ''})` : ''}`,
  };
}
