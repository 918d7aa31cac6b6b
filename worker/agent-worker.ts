import { hostname } from 'node:os';
import { type NativeConnection, Worker } from '@temporalio/worker';
import type { InstanceActivities } from '../activities/instance-activity-types.ts';
import type { ProviderActivities } from '../activities/provider-activities.ts';
import { PROVIDER_ACTIVITY_NAMES } from '../activities/provider-activity-names.ts';
import type { ProviderWatchActivities } from '../activities/provider-watch-activities.ts';

/** The activities a host agent runs: its provider's calls and its provider's watch; nothing that writes the read model. */
export type AgentActivities = ProviderActivities & Partial<ProviderWatchActivities>;

export function agentActivities(all: InstanceActivities & Partial<ProviderWatchActivities>): AgentActivities {
  const calls = Object.fromEntries(
    PROVIDER_ACTIVITY_NAMES.map((name) => [name, all[name]]),
  ) as ProviderActivities;
  return { ...calls, ...(all.watchProvider ? { watchProvider: all.watchProvider } : {}) };
}

export interface AgentWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  /** The provider's own task queue. */
  taskQueue: string;
  provider: string;
  activities: AgentActivities;
  shutdownGraceTimeMs: number;
}

/**
 * A worker with no workflows, polling one provider's task queue. Its registry holds that provider alone, so a
 * call naming any other fails at once (non-retryable) instead of running on the wrong host. The identity names
 * the provider: the Temporal UI shows it on every activity the agent ran.
 */
export function createAgentWorker(options: AgentWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: options.taskQueue,
    activities: options.activities,
    identity: `agent:${options.provider}@${hostname()}/${process.pid}`,
    shutdownGraceTime: options.shutdownGraceTimeMs,
  });
}
