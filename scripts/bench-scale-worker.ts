/**
 * The scale bench's worker, in a process of its own so that its memory (RSS) is the worker's alone: the
 * instance workflows with their real activities (read model, billing) and the no-I/O provider as the only
 * provider. Started by scripts/bench-scale.ts with the run's environment; prints `ready` once it polls and
 * stops on SIGTERM.
 */
import { Client } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { createActivities } from '../activities/index.ts';
import { loadConfig } from '../config/env.ts';
import { openOrm } from '../db/database.ts';
import { ProviderRegistry } from '../providers/registry.ts';
import { secretStoreFor } from '../providers/secret-store.ts';
import { createInstanceWorker } from '../worker/create-worker.ts';
import { NO_IO_PROVIDER, NoIoProvider } from './bench-no-io-provider.ts';

const config = loadConfig(process.env);
Runtime.install({ logger: new DefaultLogger('WARN'), shutdownSignals: ['SIGINT', 'SIGTERM'] });
const connection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
const client = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });
const orm = await openOrm(config.DATABASE_URL);
try {
  const providers = new ProviderRegistry(NO_IO_PROVIDER).register(NO_IO_PROVIDER, new NoIoProvider());
  const worker = await createInstanceWorker({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.CTRLPLANE_TASK_QUEUE,
    activities: createActivities({
      providers,
      orm,
      client,
      secrets: secretStoreFor(config.CTRLPLANE_SECRET_STORE, process.env),
    }),
    workflowBundlePath: config.CTRLPLANE_WORKFLOW_BUNDLE,
    shutdownGraceTimeMs: 1_000,
    maxCachedWorkflows: config.CTRLPLANE_WORKER_MAX_CACHED_WORKFLOWS,
  });
  const running = worker.run();
  process.stdout.write('ready\n');
  await running;
} finally {
  await orm.close();
  await connection.close();
}
