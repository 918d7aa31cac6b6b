import { Client } from '@temporalio/client';
import { NativeConnection, Runtime } from '@temporalio/worker';
import { createActivities } from '../activities/index.ts';
import type { Config } from '../config/env.ts';
import type { Logger } from '../config/logger.ts';
import { type Orm, openOrm } from '../db/database.ts';
import type { ProviderRegistry } from '../providers/registry.ts';
import type { SecretStore } from '../providers/secret-store.ts';
import { tracedProviders } from '../telemetry/traced-providers.ts';
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
}: RunWorkerOptions): Promise<void> {
  Runtime.install({
    logger: new PinoTemporalLogger(logger.child({ component: 'temporal' })),
    shutdownSignals: ['SIGINT', 'SIGTERM'],
  });
  const connection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
  const added = await registerSearchAttributes(connection, config.TEMPORAL_NAMESPACE);
  if (added.length > 0) logger.info({ added }, 'registered search attributes');
  const client = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });
  await setUpBillingSchedule(client, config, logger);
  const orm = opened ?? (await openOrm(config.DATABASE_URL));
  try {
    const worker = await createInstanceWorker({
      connection,
      namespace: config.TEMPORAL_NAMESPACE,
      taskQueue: config.CTRLPLANE_TASK_QUEUE,
      activities: createActivities({
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
      }),
      workflowBundlePath,
      shutdownGraceTimeMs: config.CTRLPLANE_WORKER_SHUTDOWN_GRACE_MS,
      maxCachedWorkflows: config.CTRLPLANE_WORKER_MAX_CACHED_WORKFLOWS,
    });
    logger.info(
      {
        taskQueue: config.CTRLPLANE_TASK_QUEUE,
        namespace: config.TEMPORAL_NAMESPACE,
        providers: providers.names(),
      },
      'worker polling',
    );
    if (config.CTRLPLANE_PROVIDER_WATCH) {
      await startProviderWatchers(client, providers, config.CTRLPLANE_TASK_QUEUE, logger);
    }
    const stopSweeper = startUnstartedInstanceSweeper({
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
