import { proxyActivities } from '@temporalio/workflow';
import type { InstanceActivities } from '../activities/instance-activity-types.ts';

/**
 * Provider calls: Docker and Kubernetes hiccups (daemon restarting, API server 5xx, a network blip) are worth
 * about two minutes of retries with backoff (1s, 2s, 4s … capped at 30s, 8 attempts) before the instance is
 * marked failed. The activity heartbeats every few seconds, so a worker that dies mid-call is noticed after
 * the 15 s heartbeat timeout and the call is retried on another worker; the provider adopts what the dead
 * attempt created. Errors no retry can fix are raised non-retryable by the activity itself.
 */
const providerCalls = proxyActivities<
  Pick<
    InstanceActivities,
    | 'provisionInstance'
    | 'startInstance'
    | 'stopInstance'
    | 'restartInstance'
    | 'scaleInstance'
    | 'deprovisionInstance'
  >
>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '15 seconds',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '30 seconds',
    maximumAttempts: 8,
  },
});

/**
 * Read-model writes: PostgreSQL being away must never lose a transition, so these retry without limit
 * (capped at 30 s between attempts). They are idempotent: the write is guarded by the sequence number.
 */
const readModel = proxyActivities<Pick<InstanceActivities, 'recordTransition' | 'reserveSlug'>>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '500 milliseconds', backoffCoefficient: 2, maximumInterval: '30 seconds' },
});

/**
 * The drift check only looks: a failed look is retried a few times and then skipped until the next check, so
 * a provider that is away for a while never fails the instance through the drift check alone.
 */
const observation = proxyActivities<Pick<InstanceActivities, 'observeInstance'>>({
  startToCloseTimeout: '30 seconds',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '10 seconds',
    maximumAttempts: 3,
  },
});

// proxyActivities returns a Proxy, which cannot be spread: name each activity.
export const instanceActivities: InstanceActivities = {
  provisionInstance: providerCalls.provisionInstance,
  startInstance: providerCalls.startInstance,
  stopInstance: providerCalls.stopInstance,
  restartInstance: providerCalls.restartInstance,
  scaleInstance: providerCalls.scaleInstance,
  deprovisionInstance: providerCalls.deprovisionInstance,
  observeInstance: observation.observeInstance,
  recordTransition: readModel.recordTransition,
  reserveSlug: readModel.reserveSlug,
};
