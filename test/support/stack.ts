import { randomBytes, randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, type Worker } from '@temporalio/worker';
import { createActivities } from '../../activities/index.ts';
import { issueToken } from '../../api/dev-token.ts';
import { type RunningApi, startApi } from '../../api/server.ts';
import { type Config, loadConfig } from '../../config/env.ts';
import { createLogger } from '../../config/logger.ts';
import { type Orm, openOrm } from '../../db/database.ts';
import { RegistryCredentialStore } from '../../db/registry-credential-store.ts';
import { buildProviders } from '../../providers/build-providers.ts';
import type { ProviderRegistry } from '../../providers/registry.ts';
import { secretStoreFor } from '../../providers/secret-store.ts';
import { tracedProviders } from '../../telemetry/traced-providers.ts';
import { createInstanceWorker } from '../../worker/create-worker.ts';
import { startProviderWatchers } from '../../worker/provider-watchers.ts';

let runtimeInstalled = false;

export interface Stack {
  config: Config;
  /** The HS256 secret the stack's API accepts. */
  jwtSecret: string;
  api: RunningApi;
  client: Client;
  orm: Orm;
  providers: ProviderRegistry;
  /** Starts the in-process worker (tests that kill a worker start their own process instead). */
  startWorker(): Promise<void>;
  stopWorker(): Promise<void>;
  token(tenantId: string, roles?: string[]): Promise<string>;
  close(): Promise<void>;
}

/**
 * The real stack for one test file: the API and a worker in this process, against the run's Temporal dev
 * server and PostgreSQL database (scripts/run-tests.ts starts them) and the real Docker engine.
 * Each file gets its own task queue, so files never pick up each other's workflows.
 */
export async function startStack(
  options: { worker?: boolean; env?: Record<string, string> } = {},
): Promise<Stack> {
  if (!runtimeInstalled) {
    runtimeInstalled = true;
    try {
      Runtime.install({ logger: new DefaultLogger('WARN') });
    } catch {
      // Already installed in this process (the history recorder's test environment did it).
    }
  }
  const env = {
    ...process.env,
    PORT: '0',
    HOST: '127.0.0.1',
    CTRLPLANE_TASK_QUEUE: `test-${randomUUID()}`,
    CTRLPLANE_DOCKER_STOP_TIMEOUT: '2',
    CTRLPLANE_WORKER_SHUTDOWN_GRACE_MS: '1000',
    CTRLPLANE_JWT_SECRET: `test-secret-${randomUUID()}`,
    // As `npm test` sets them; also for the scripts (bench) that start a stack outside it.
    CTRLPLANE_DOCKER_ALLOWED_IMAGES:
      process.env.CTRLPLANE_DOCKER_ALLOWED_IMAGES ?? 'docker.io/ctrlplane-test/*',
    CTRLPLANE_SPEC_HASH_KEY: process.env.CTRLPLANE_SPEC_HASH_KEY ?? randomBytes(32).toString('hex'),
    CTRLPLANE_PROVIDER_WATCH: process.env.CTRLPLANE_PROVIDER_WATCH ?? 'false',
    ...options.env,
  };
  const jwtSecret = env.CTRLPLANE_JWT_SECRET;
  const config = loadConfig(env);
  const logger = createLogger('test', config.LOG_LEVEL);
  const orm = await openOrm(config.DATABASE_URL, { poolMax: 4 });
  // The worker's providers find tenants' registry credentials in the database; the API's only check specs.
  const providers = buildProviders(config, logger, {
    tenantCredentials: new RegistryCredentialStore(orm),
  });
  const api = await startApi(config, logger, providers);
  const connection = await Connection.connect({ address: config.TEMPORAL_ADDRESS });
  const client = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });

  let worker: Worker | undefined;
  let running: Promise<void> | undefined;
  let workerConnection: NativeConnection | undefined;
  let watchers: string[] = [];
  const stack: Stack = {
    config,
    jwtSecret,
    api,
    client,
    orm,
    providers,
    async startWorker() {
      workerConnection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
      worker = await createInstanceWorker({
        connection: workerConnection,
        namespace: config.TEMPORAL_NAMESPACE,
        taskQueue: config.CTRLPLANE_TASK_QUEUE,
        // Secret variables resolve from the stack's env (CTRLPLANE_SECRET_STORE and the secrets themselves).
        activities: createActivities({
          providers: tracedProviders(providers),
          orm,
          client,
          secrets: secretStoreFor(config.CTRLPLANE_SECRET_STORE, env),
          webhooks: {
            allowPrivate: config.CTRLPLANE_WEBHOOK_ALLOW_PRIVATE ?? false,
            timeoutMs: config.CTRLPLANE_WEBHOOK_TIMEOUT_MS,
            ...(config.CTRLPLANE_WEBHOOK_SECRET_KEY
              ? { secretKey: config.CTRLPLANE_WEBHOOK_SECRET_KEY }
              : {}),
          },
        }),
        workflowBundlePath: process.env.CTRLPLANE_WORKFLOW_BUNDLE,
        shutdownGraceTimeMs: config.CTRLPLANE_WORKER_SHUTDOWN_GRACE_MS,
      });
      running = worker.run();
      if (config.CTRLPLANE_PROVIDER_WATCH) {
        watchers = await startProviderWatchers(client, providers, config.CTRLPLANE_TASK_QUEUE, logger);
      }
    },
    async stopWorker() {
      if (worker && worker.getState() === 'RUNNING') worker.shutdown();
      await running;
      await workerConnection?.close();
      worker = undefined;
    },
    token: (tenantId, roles = []) =>
      issueToken(jwtSecret, { sub: `user-${tenantId}`, tenant_id: tenantId, roles }, '12h', {
        issuer: config.CTRLPLANE_JWT_ISSUER,
        audience: config.CTRLPLANE_JWT_AUDIENCE,
      }),
    async close() {
      // The watchers outlive any worker (that is their point): the file's own end with it.
      for (const id of watchers) {
        await client.workflow
          .getHandle(id)
          .terminate('test stack closed')
          .catch(() => {});
      }
      await stack.stopWorker();
      await api.close();
      await orm.close();
      await connection.close();
    },
  };
  if (options.worker !== false) await stack.startWorker();
  return stack;
}

export function uniqueTenant(label: string): string {
  return `ten_${label}_${randomUUID().slice(0, 8)}`;
}
