/** The provider watcher workflow's surface, shared by the worker that starts it and the workflow. */

export const PROVIDER_WATCH_WORKFLOW_TYPE = 'providerWatchWorkflow';

export interface ProviderWatchInput {
  provider_name: string;
  /** Where the provider's feed is followed from (the last event time, resourceVersions); absent: now. */
  cursor?: string;
  /** The task queue of the provider's host agent, which follows the feed; absent: the workflow's own. */
  task_queue?: string;
}

/**
 * One watcher per provider endpoint of a deployment (its task queue): the fixed id makes every worker that
 * starts it at boot find the one already running.
 */
export function providerWatchWorkflowId(taskQueue: string, providerName: string): string {
  return `provider-watch/${taskQueue}/${providerName}`;
}
