import { type ActivityOptions, proxyActivities } from '@temporalio/workflow';
import type { InstanceActivities } from '../activities/instance-activity-types.ts';
import { PROVIDER_ACTIVITY_NAMES } from '../activities/provider-activity-names.ts';
import { ACTIVITY_SUMMARIES } from './activity-summaries.ts';
import type { AgentPickup } from './agent-pickup.ts';

/**
 * Provider calls: Docker and Kubernetes hiccups (daemon restarting, API server 5xx, a network blip) are worth
 * about two minutes of retries with backoff (1s, 2s, 4s … capped at 30s, 8 attempts) before the instance is
 * marked failed. The activity heartbeats every few seconds, so a worker that dies mid-call is noticed after
 * the 15 s heartbeat timeout and the call is retried on another worker; the provider adopts what the dead
 * attempt created. Errors no retry can fix are raised non-retryable by the activity itself.
 */
const PROVIDER_CALL: ActivityOptions = {
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '15 seconds',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '30 seconds',
    maximumAttempts: 8,
  },
};

/**
 * Read-model writes: PostgreSQL being away must never lose a transition, so these retry without limit
 * (capped at 30 s between attempts). They are idempotent: the write is guarded by the sequence number.
 */
const READ_MODEL: ActivityOptions = {
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '500 milliseconds', backoffCoefficient: 2, maximumInterval: '30 seconds' },
};

/**
 * The drift check only looks: a failed look is retried a few times and then skipped until the next check, so
 * a provider that is away for a while never fails the instance through the drift check alone.
 */
const OBSERVATION: ActivityOptions = {
  startToCloseTimeout: '30 seconds',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '10 seconds',
    maximumAttempts: 3,
  },
};

const proxies = proxyActivities<InstanceActivities>(PROVIDER_CALL);

type Call = (options: ActivityOptions, input: unknown) => Promise<unknown>;

/**
 * The activity `name` with `options`, and its summary (workflows/activity-summaries.ts) on each call; a
 * provider call of an instance with an agent runs through `pickup` (workflows/agent-pickup.ts).
 */
function summarised<K extends keyof InstanceActivities>(
  name: K,
  options: ActivityOptions,
  pickup?: AgentPickup,
): InstanceActivities[K] {
  const summary = ACTIVITY_SUMMARIES[name] as (input: unknown) => string;
  const activity = proxies[name] as unknown as {
    executeWithOptions(options: ActivityOptions, args: [unknown]): Promise<unknown>;
  };
  const execute: Call = (opts, input) => activity.executeWithOptions(opts, [input]);
  // Provider calls go to the agent's task queue; the rest stays on the workflow's.
  const routed = pickup && (PROVIDER_ACTIVITY_NAMES as readonly string[]).includes(name);
  const call = (input: unknown) => {
    const opts = { ...options, summary: summary(input) };
    return routed ? pickup.run(name, opts, (o) => execute(o, input)) : execute(opts, input);
  };
  return call as InstanceActivities[K];
}

/** The instance workflow's activities; `pickup` when its provider has an agent (its own task queue). */
export function instanceActivities(pickup?: AgentPickup): InstanceActivities {
  return {
    provisionInstance: summarised('provisionInstance', PROVIDER_CALL, pickup),
    startInstance: summarised('startInstance', PROVIDER_CALL, pickup),
    stopInstance: summarised('stopInstance', PROVIDER_CALL, pickup),
    restartInstance: summarised('restartInstance', PROVIDER_CALL, pickup),
    restartService: summarised('restartService', PROVIDER_CALL, pickup),
    scaleInstance: summarised('scaleInstance', PROVIDER_CALL, pickup),
    deprovisionInstance: summarised('deprovisionInstance', PROVIDER_CALL, pickup),
    observeInstance: summarised('observeInstance', OBSERVATION, pickup),
    recordTransition: summarised('recordTransition', READ_MODEL),
    reserveSlug: summarised('reserveSlug', READ_MODEL),
    loadRelease: summarised('loadRelease', READ_MODEL),
  };
}
