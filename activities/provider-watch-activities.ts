import { ApplicationFailure, Context } from '@temporalio/activity';
import { type Client, WorkflowNotFoundError } from '@temporalio/client';
import type { Orm } from '../db/database.ts';
import { WatchedInstances } from '../db/watched-instances.ts';
import { CtrlplaneError } from '../domain/errors.ts';
import type { Provider } from '../providers/provider.ts';
import type { ProviderRegistry } from '../providers/registry.ts';
import { driftNoticeSignal } from '../workflows/drift-notice.ts';
import { instanceWorkflowId } from '../workflows/messages.ts';
import type { ProviderWatchInput } from '../workflows/provider-watch-messages.ts';
import { ProviderWatcher } from './provider-watcher.ts';

const HEARTBEAT_INTERVAL_MS = 5_000;
/** How long one watch lasts before it returns its cursor to the workflow (which calls the next one). */
const DEFAULT_WATCH_SPAN_MS = 30 * 60_000;

export interface ProviderWatchActivities {
  /** Follows the provider's changes for a while; returns the cursor the next watch continues from. */
  watchProvider(input: ProviderWatchInput): Promise<string | undefined>;
}

export interface ProviderWatchDependencies {
  providers: ProviderRegistry;
  orm: Orm;
  /** The worker's Temporal client: the watcher signals instance workflows with it. */
  client: Client;
  watchSpanMs?: number;
}

/** What a heartbeat carries: where the next attempt resumes. */
interface WatchProgress {
  cursor?: string;
}

export function createProviderWatchActivities(deps: ProviderWatchDependencies): ProviderWatchActivities {
  const readModel = new WatchedInstances(deps.orm);
  return {
    async watchProvider(input) {
      const context = Context.current();
      const provider = providerOf(deps.providers, input.provider_name);
      const feed = provider.changeFeed;
      if (!feed) return input.cursor;
      const resumed = (context.info.heartbeatDetails as WatchProgress | undefined)?.cursor ?? input.cursor;
      let cursor = resumed;
      const beat = setInterval(() => context.heartbeat({ cursor }), HEARTBEAT_INTERVAL_MS);
      const watcher = new ProviderWatcher({
        providerName: input.provider_name,
        provider,
        feed,
        readModel,
        notify: async (instanceId, notice) => {
          try {
            await deps.client.workflow
              .getHandle(instanceWorkflowId(instanceId))
              .signal(driftNoticeSignal, notice);
          } catch (err) {
            if (!(err instanceof WorkflowNotFoundError)) throw err;
          }
        },
        progress: (at) => {
          cursor = at;
        },
        warn: (err, message) => context.log.warn(message, { error: String(err) }),
      });
      const span = AbortSignal.any([
        context.cancellationSignal,
        AbortSignal.timeout(deps.watchSpanMs ?? DEFAULT_WATCH_SPAN_MS),
      ]);
      context.heartbeat({ cursor });
      try {
        return await watcher.run(resumed, span);
      } finally {
        clearInterval(beat);
      }
    },
  };
}

function providerOf(providers: ProviderRegistry, name: string): Provider {
  try {
    return providers.get(name);
  } catch (err) {
    if (err instanceof CtrlplaneError) throw ApplicationFailure.nonRetryable(err.message, err.code);
    throw err;
  }
}
