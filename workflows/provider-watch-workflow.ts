import { type ActivityOptions, continueAsNew, proxyActivities } from '@temporalio/workflow';
import type { ProviderWatchActivities } from '../activities/provider-watch-activities.ts';
import type { ProviderWatchInput } from './provider-watch-messages.ts';

/** Each watch returns after a while (activities/provider-watch-activities.ts); this many make one run. */
const WATCHES_PER_RUN = 100;

/**
 * A worker that dies is noticed after the heartbeat timeout; the next attempt, on any worker, resumes from the
 * cursor the last heartbeat carried. The provider being away is retried without end: watching is all this does.
 */
const WATCH_OPTIONS: ActivityOptions = {
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '20 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '10 seconds' },
};
const { watchProvider } = proxyActivities<ProviderWatchActivities>(WATCH_OPTIONS);

/**
 * The one watcher of a provider: follows the provider's change feed in a long, heartbeating activity and
 * signals the instances whose objects changed. Its history grows by one activity per watch, whatever the
 * fleet does.
 */
export async function providerWatchWorkflow(input: ProviderWatchInput): Promise<void> {
  let cursor = input.cursor;
  for (let i = 0; i < WATCHES_PER_RUN; i++) {
    const next = await watchProvider.executeWithOptions(
      {
        ...WATCH_OPTIONS,
        ...(input.task_queue ? { taskQueue: input.task_queue } : {}),
        summary: `watch ${input.provider_name}'s changes${cursor ? ` from ${cursor}` : ''}`,
      },
      [{ provider_name: input.provider_name, ...(cursor ? { cursor } : {}) }],
    );
    cursor = next ?? cursor;
  }
  await continueAsNew<typeof providerWatchWorkflow>({
    provider_name: input.provider_name,
    ...(cursor ? { cursor } : {}),
    ...(input.task_queue ? { task_queue: input.task_queue } : {}),
  });
}
