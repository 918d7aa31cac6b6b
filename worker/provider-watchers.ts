import { type Client, WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import type { Logger } from '../config/logger.ts';
import type { ProviderRegistry } from '../providers/registry.ts';
import {
  PROVIDER_WATCH_WORKFLOW_TYPE,
  type ProviderWatchInput,
  providerWatchWorkflowId,
} from '../workflows/provider-watch-messages.ts';

/**
 * Makes sure each provider with a change feed has its one watcher workflow (on the shared `taskQueue`; its
 * watch runs on the provider's agent when it has one). Every worker does this at boot;
 * the fixed workflow id and USE_EXISTING make all but the first find the watcher already running, so there is
 * exactly one per provider however many workers start or die.
 */
export async function startProviderWatchers(
  client: Client,
  providers: ProviderRegistry,
  taskQueue: string,
  logger: Logger,
): Promise<string[]> {
  const started: string[] = [];
  for (const name of providers.names()) {
    if (!providers.get(name).changeFeed) continue;
    const workflowId = providerWatchWorkflowId(taskQueue, name);
    const agentQueue = providers.site(name).taskQueue;
    const input: ProviderWatchInput = {
      provider_name: name,
      ...(agentQueue ? { task_queue: agentQueue } : {}),
    };
    try {
      await client.workflow.start(PROVIDER_WATCH_WORKFLOW_TYPE, {
        workflowId,
        taskQueue,
        args: [input],
        workflowIdConflictPolicy: 'USE_EXISTING',
        staticSummary: `Watches the ${name} provider's changes and tells the instances that drifted`,
      });
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    }
    started.push(workflowId);
  }
  if (started.length > 0) logger.info({ watchers: started }, 'provider watchers running');
  return started;
}
