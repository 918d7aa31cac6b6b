import type { V1ContainerStatus, V1Deployment, V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import type { Endpoint } from '../../domain/instance.ts';
import type { InstanceState } from '../../domain/instance-state.ts';
import type { InstanceStatus, ServiceStatus } from '../provider.ts';

/** Waiting reasons no amount of waiting fixes: the instance is `failed`, and the reason is named. */
export const FAILURE_REASONS = new Set([
  'CrashLoopBackOff',
  'ErrImagePull',
  'ImagePullBackOff',
  'InvalidImageName',
  'ErrImageNeverPull',
  'CreateContainerConfigError',
  'CreateContainerError',
  'RunContainerError',
]);

function toIso(value: Date | string | undefined): string | undefined {
  if (!value) return undefined;
  return value instanceof Date ? value.toISOString() : value;
}

function isPodReady(pod: V1Pod): boolean {
  return (pod.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
}

interface ContainerCondition {
  state: InstanceState;
  ready: boolean;
  restarts: number;
  message?: string;
}

function containerCondition(pod: V1Pod, status: V1ContainerStatus, init: boolean): ContainerCondition {
  const podName = pod.metadata?.name ?? '?';
  const restarts = status.restartCount ?? 0;
  const waiting = status.state?.waiting;
  const terminated = status.state?.terminated;
  if (waiting?.reason && FAILURE_REASONS.has(waiting.reason)) {
    const detail = waiting.message ? `: ${waiting.message}` : '';
    return {
      state: 'failed',
      ready: false,
      restarts,
      message: `${waiting.reason}: container ${status.name} of pod ${podName}${detail}`,
    };
  }
  if (init) {
    if (terminated && terminated.exitCode === 0) return { state: 'stopped', ready: false, restarts };
    if (terminated) {
      return {
        state: 'failed',
        ready: false,
        restarts,
        message: `init container ${status.name} of pod ${podName} exited with code ${terminated.exitCode}${terminated.reason ? ` (${terminated.reason})` : ''}`,
      };
    }
    return { state: 'starting', ready: false, restarts, message: waiting?.reason };
  }
  if (status.ready) return { state: 'running', ready: true, restarts };
  if (status.state?.running) return { state: 'starting', ready: false, restarts, message: 'not ready yet' };
  if (terminated) {
    return {
      state: 'starting',
      ready: false,
      restarts,
      message: `terminated: ${terminated.reason ?? `exit code ${terminated.exitCode}`}`,
    };
  }
  return { state: 'starting', ready: false, restarts, message: waiting?.reason };
}

const RANK: Record<InstanceState, number> = {
  failed: 0,
  destroying: 1,
  stopping: 2,
  provisioning: 3,
  starting: 4,
  running: 5,
  stopped: 6,
  destroyed: 7,
};

/**
 * An instance's status from its workload and the pods it selects:
 * - a workload being deleted → destroying; spec.replicas 0 → stopped (stopping while any pod remains, terminating
 *   ones included);
 * - any container waiting for a reason that does not heal (CrashLoopBackOff, ErrImagePull, ImagePullBackOff, …)
 *   or a Progressing=False condition → failed, with the reason and the container named in the message;
 * - all desired replicas ready → running; some pods or some ready → starting; nothing yet → provisioning.
 */
export function deriveStatus(
  workload: V1Deployment | V1StatefulSet,
  pods: V1Pod[],
  endpoints: Endpoint[],
): InstanceStatus {
  const live = pods.filter((p) => !p.metadata?.deletionTimestamp);
  const desired = workload.spec?.replicas ?? 1;
  const services: Record<string, ServiceStatus> = {};
  const failures: string[] = [];
  let restarts = 0;
  let startedAt: string | undefined;

  const containerNames = (workload.spec?.template?.spec?.containers ?? []).map((c) => c.name);
  const initNames = (workload.spec?.template?.spec?.initContainers ?? []).map((c) => c.name);

  for (const pod of live) {
    const statuses: Array<[V1ContainerStatus, boolean]> = [
      ...(pod.status?.initContainerStatuses ?? []).map((s): [V1ContainerStatus, boolean] => [s, true]),
      ...(pod.status?.containerStatuses ?? []).map((s): [V1ContainerStatus, boolean] => [s, false]),
    ];
    for (const [status, init] of statuses) {
      const condition = containerCondition(pod, status, init);
      restarts += condition.restarts;
      if (condition.state === 'failed' && condition.message) failures.push(condition.message);
      const previous = services[status.name];
      // Per service, the worst condition across the pods wins; restarts add up.
      if (!previous || RANK[condition.state] < RANK[previous.state]) {
        services[status.name] = {
          state: condition.state,
          ready: condition.ready,
          restarts: (previous?.restarts ?? 0) + condition.restarts,
          provider_ref: `pod/${pod.metadata?.name ?? ''}`,
          ...(condition.message ? { message: condition.message } : {}),
        };
      } else {
        previous.restarts += condition.restarts;
      }
    }
    if (isPodReady(pod)) {
      const started = toIso(pod.status?.startTime);
      if (started && (!startedAt || started < startedAt)) startedAt = started;
    }
  }
  for (const name of [...initNames, ...containerNames]) {
    if (!services[name])
      services[name] = { state: desired === 0 ? 'stopped' : 'provisioning', ready: false, restarts: 0 };
  }

  const readyPods = live.filter(isPodReady).length;
  const result = (state: InstanceState, message?: string): InstanceStatus => {
    const status: InstanceStatus = {
      state,
      ready: readyPods > 0 && (state === 'running' || state === 'starting'),
      restarts,
      endpoints,
      services,
    };
    if (startedAt) status.started_at = startedAt;
    if (message) status.message = message;
    return status;
  };

  if (workload.metadata?.deletionTimestamp) return result('destroying', 'the workload is being deleted');
  if (desired === 0) {
    // A terminating pod's containers run until their grace period ends: not stopped while any pod is left.
    return pods.length > 0
      ? result('stopping', `${pods.length} pod(s) still terminating`)
      : result('stopped', 'scaled to 0 replicas');
  }
  if (failures.length > 0) return result('failed', failures.join('; '));
  const progressing = (workload.status?.conditions ?? []).find((c) => c.type === 'Progressing');
  if (progressing?.status === 'False') {
    return result(
      'failed',
      `${progressing.reason ?? 'ProgressDeadlineExceeded'}: ${progressing.message ?? ''}`.trim(),
    );
  }
  if (readyPods >= desired) return result('running', `${readyPods}/${desired} replicas ready`);
  if (live.length > 0 || readyPods > 0) return result('starting', `${readyPods}/${desired} replicas ready`);
  return result('provisioning', `0/${desired} replicas ready, no pods yet`);
}
