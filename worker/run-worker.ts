import { Client } from '@temporalio/client';
import { NativeConnection, Runtime } from '@temporalio/worker';
import { createActivities } from '../activities/index.ts';
import type { Config } from '../config/env.ts';
import type { Logger } from '../config/logger.ts';
import { type Orm, openOrm } from '../db/database.ts';
import type { ProviderRegistry } from '../providers/registry.ts';
import type { SecretStore } from '../providers/secret-store.ts';
import { tracedProviders } from '../telemetry/traced-providers.ts';
import { agentActivities, createAgentWorker } from './agent-worker.ts';
import { setUpBillingSchedule } from './billing-schedule.ts';
import { createInstanceWorker } from './create-worker.ts';
import { startProviderWatchers } from './provider-watchers.ts';
import { registerSearchAttributes } from './register-search-attributes.ts';
import { PinoTemporalLogger } from './temporal-logger.ts';
import { startUnstartedInstanceSweeper } from './unstarted-instance-sweeper.ts';

export interface RunWorkerOptions {
  config: Config;
  logger: Logger;
  providers: ProviderRegistry;
  /** Where secret variables are resolved (CTRLPLANE_SECRET_STORE). */
  secrets: SecretStore;
  workflowBundlePath?: string;
  /** The database, when the caller opened it already (to build its providers with); closed on shutdown. */
  orm?: Orm;
  /**
   * Run as the host agent of one provider (its registry holds only that one): poll the provider's task queue
   * for its calls and its watch, and nothing else: no workflows, no schedules, no sweeper.
   */
  agent?: { provider: string; taskQueue: string };
}

/**
 * Connects, registers search attributes, and polls until SIGINT or SIGTERM; then lets in-flight activities
 * finish (within the grace time) and closes the database pool.
 */
export async function runWorker({
  config,
  logger,
  providers,
  secrets,
  workflowBundlePath,
  orm: opened,
  agent,
}: RunWorkerOptions): Promise<void> {
  Runtime.install({
    logger: new PinoTemporalLogger(logger.child({ component: 'temporal' })),
    shutdownSignals: ['SIGINT', 'SIGTERM'],
  });
  const connection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
  const client = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });
  if (!agent) {
    const added = await registerSearchAttributes(connection, config.TEMPORAL_NAMESPACE);
    if (added.length > 0) logger.info({ added }, 'registered search attributes');
    await setUpBillingSchedule(client, config, logger);
  }
  const orm = opened ?? (await openOrm(config.DATABASE_URL));
  const taskQueue = agent?.taskQueue ?? config.CTRLPLANE_TASK_QUEUE;
  try {
    const activities = createActivities({
      providers: tracedProviders(providers),
      orm,
      client,
      secrets,
      ...(config.CTRLPLANE_KUSTOMIZE_BIN ? { kustomize: { binary: config.CTRLPLANE_KUSTOMIZE_BIN } } : {}),
      webhooks: {
        allowPrivate: config.CTRLPLANE_WEBHOOK_ALLOW_PRIVATE ?? false,
        timeoutMs: config.CTRLPLANE_WEBHOOK_TIMEOUT_MS,
        ...(config.CTRLPLANE_WEBHOOK_SECRET_KEY ? { secretKey: config.CTRLPLANE_WEBHOOK_SECRET_KEY } : {}),
      },
    });
    const worker = agent
      ? await createAgentWorker({
          connection,
          namespace: config.TEMPORAL_NAMESPACE,
          taskQueue,
          provider: agent.provider,
          activities: agentActivities(activities),
          shutdownGraceTimeMs: config.CTRLPLANE_WORKER_SHUTDOWN_GRACE_MS,
        })
      : await createInstanceWorker({
          connection,
          namespace: config.TEMPORAL_NAMESPACE,
          taskQueue,
          activities,
          workflowBundlePath,
          shutdownGraceTimeMs: config.CTRLPLANE_WORKER_SHUTDOWN_GRACE_MS,
          maxCachedWorkflows: config.CTRLPLANE_WORKER_MAX_CACHED_WORKFLOWS,
        });
    logger.info(
      {
        taskQueue,
        namespace: config.TEMPORAL_NAMESPACE,
        providers: providers.names(),
        ...(agent ? { agentOf: agent.provider } : {}),
      },
      agent ? 'agent polling' : 'worker polling',
    );
    if (config.CTRLPLANE_PROVIDER_WATCH) {
      // The watcher workflows run on the shared queue; an agent starts its own provider's.
      await startProviderWatchers(client, providers, config.CTRLPLANE_TASK_QUEUE, logger);
    }
    const stopSweeper = agent
      ? async () => {}
      : startUnstartedInstanceSweeper({
          orm,
          client,
          logger,
          intervalMs: config.CTRLPLANE_UNSTARTED_SWEEP_INTERVAL_MS,
          ageMs: config.CTRLPLANE_UNSTARTED_SWEEP_AGE_MS,
        });
    try {
      await worker.run();
    } finally {
      await stopSweeper();
    }
    logger.info('worker stopped');
  } finally {
    await orm.close();
    await connection.close();
  }
}
