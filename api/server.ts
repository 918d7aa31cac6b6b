import type { Server } from 'node:http';
import { Client, Connection } from '@temporalio/client';
import type { Config } from '../config/env';
import type { Logger } from '../config/logger';
import { openOrm } from '../db/database';
import type { ProviderRegistry } from '../providers/registry';
import { createApp } from './app';
import { InstanceCommands } from './instance-commands';
import { InstanceStore } from './instance-store';

export interface RunningApi {
  server: Server;
  url: string;
  /** Stops accepting connections, lets in-flight requests finish, then closes the pools. */
  close(): Promise<void>;
}

export async function startApi(
  config: Config,
  logger: Logger,
  providers: ProviderRegistry,
): Promise<RunningApi> {
  const orm = await openOrm(config.DATABASE_URL);
  const connection = await Connection.connect({ address: config.TEMPORAL_ADDRESS });
  const client = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });
  const app = createApp({
    store: new InstanceStore(orm),
    commands: new InstanceCommands({
      client,
      taskQueue: config.CTRLPLANE_TASK_QUEUE,
      acceptTimeoutMs: config.CTRLPLANE_COMMAND_ACCEPT_TIMEOUT_MS,
      workflowOptions: {
        maxCommandsPerRun: config.CTRLPLANE_MAX_COMMANDS_PER_RUN,
        driftCheckIntervalMs: config.CTRLPLANE_DRIFT_CHECK_INTERVAL_MS,
      },
    }),
    providers,
    jwtSecret: config.CTRLPLANE_JWT_SECRET,
    maxWaitMs: config.CTRLPLANE_MAX_WAIT_MS,
    logger,
  });
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(config.PORT, config.HOST, () => resolve(s));
    s.once('error', reject);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.PORT;
  return {
    server,
    url: `http://127.0.0.1:${port}`,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      await orm.close();
      await connection.close();
    },
  };
}
