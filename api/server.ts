import { setMaxListeners } from 'node:events';
import type { Server } from 'node:http';
import { Client, Connection } from '@temporalio/client';
import type { Config } from '../config/env.ts';
import type { Logger } from '../config/logger.ts';
import { BillingStore } from '../db/billing-store.ts';
import { openOrm } from '../db/database.ts';
import { DatacenterStore } from '../db/datacenter-store.ts';
import { EventStream } from '../db/event-stream.ts';
import { IdempotencyStore } from '../db/idempotency-store.ts';
import { InstanceEventStore } from '../db/instance-event-store.ts';
import { InstanceStore } from '../db/instance-store.ts';
import { RegistryCredentialStore } from '../db/registry-credential-store.ts';
import { ReleaseStore } from '../db/release-store.ts';
import { StreamTicketStore } from '../db/stream-tickets.ts';
import { WebhookStore } from '../db/webhook-store.ts';
import type { ProviderRegistry } from '../providers/registry.ts';
import { tracingClientInterceptors } from '../telemetry/temporal.ts';
import { defaultHostLookup } from '../webhooks/post.ts';
import { WebhookSecretCipher } from '../webhooks/secret-cipher.ts';
import { AgentPollers } from './agent-pollers.ts';
import { createApp } from './app.ts';
import { apiGrpcInterceptors, InstanceCommands } from './instance-commands.ts';
import { ApiMetrics } from './metrics.ts';
import { WebhookWorkflows } from './webhook-workflows.ts';

export interface RunningApi {
  server: Server;
  url: string;
  metrics: ApiMetrics;
  /**
   * Stops accepting connections, ends waits and log streams, lets in-flight requests finish (for up to
   * CTRLPLANE_API_SHUTDOWN_GRACE_MS, then closes what is left), then closes the pools.
   */
  close(): Promise<void>;
}

const IDEMPOTENCY_PURGE_INTERVAL_MS = 10 * 60_000;
/** How long a stream ticket opens the log stream after it was issued. */
const STREAM_TICKET_TTL_SECONDS = 30;

export async function startApi(
  config: Config,
  logger: Logger,
  providers: ProviderRegistry,
): Promise<RunningApi> {
  const orm = await openOrm(config.DATABASE_URL);
  const connection = await Connection.connect({
    address: config.TEMPORAL_ADDRESS,
    interceptors: apiGrpcInterceptors(),
  });
  const client = new Client({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    interceptors: tracingClientInterceptors(),
  });
  const shutdown = new AbortController();
  // Every wait and stream in flight listens for shutdown: many listeners are expected, not a leak.
  setMaxListeners(0, shutdown.signal);
  const metrics = new ApiMetrics();
  const idempotency = new IdempotencyStore(orm, {
    ttlMs: config.CTRLPLANE_IDEMPOTENCY_TTL_HOURS * 3_600_000,
    // Longer than any request can take: a claim older than this belongs to a request that died.
    lockMs: config.CTRLPLANE_COMMAND_ACCEPT_TIMEOUT_MS * 2 + config.CTRLPLANE_MAX_WAIT_MS + 30_000,
    busyWaitMs: config.CTRLPLANE_IDEMPOTENCY_WAIT_MS,
  });
  const streamTickets = new StreamTicketStore(orm, STREAM_TICKET_TTL_SECONDS);
  const app = createApp({
    store: new InstanceStore(orm, config.CTRLPLANE_LIST_TOTAL_LIMIT),
    events: new InstanceEventStore(orm),
    releases: new ReleaseStore(orm),
    eventStream: new EventStream(orm),
    webhooks: {
      store: new WebhookStore(orm, new WebhookSecretCipher(config.CTRLPLANE_WEBHOOK_SECRET_KEY)),
      workflows: new WebhookWorkflows({
        client,
        taskQueue: config.CTRLPLANE_TASK_QUEUE,
        acceptTimeoutMs: config.CTRLPLANE_COMMAND_ACCEPT_TIMEOUT_MS,
      }),
      allowPrivate: config.CTRLPLANE_WEBHOOK_ALLOW_PRIVATE ?? false,
      lookup: defaultHostLookup,
    },
    ...(config.CTRLPLANE_KUSTOMIZE_BIN ? { kustomize: { binary: config.CTRLPLANE_KUSTOMIZE_BIN } } : {}),
    commands: new InstanceCommands({
      client,
      taskQueue: config.CTRLPLANE_TASK_QUEUE,
      providerTaskQueue: (name) => (providers.has(name) ? providers.site(name).taskQueue : undefined),
      acceptTimeoutMs: config.CTRLPLANE_COMMAND_ACCEPT_TIMEOUT_MS,
      workflowOptions: {
        maxCommandsPerRun: config.CTRLPLANE_MAX_COMMANDS_PER_RUN,
        driftCheckIntervalMs: config.CTRLPLANE_DRIFT_CHECK_INTERVAL_MS,
      },
    }),
    providers,
    datacenters: new DatacenterStore(orm),
    registryCredentials: new RegistryCredentialStore(orm),
    providerHealthTimeoutMs: config.CTRLPLANE_PROVIDER_HEALTH_TIMEOUT_MS,
    placementDefaultMemoryMb: config.CTRLPLANE_DOCKER_DEFAULT_MEMORY_MB,
    agents: new AgentPollers(client, config.TEMPORAL_NAMESPACE),
    idempotency,
    streamTickets,
    auth: {
      secret: config.CTRLPLANE_JWT_SECRET,
      ...(config.CTRLPLANE_JWKS_URL ? { jwksUrl: config.CTRLPLANE_JWKS_URL } : {}),
      ...(config.CTRLPLANE_JWT_ISSUER ? { issuer: config.CTRLPLANE_JWT_ISSUER } : {}),
      ...(config.CTRLPLANE_JWT_AUDIENCE ? { audience: config.CTRLPLANE_JWT_AUDIENCE } : {}),
    },
    rateLimits: {
      perMinute: config.CTRLPLANE_RATE_LIMIT_PER_MINUTE,
      burstPerSecond: config.CTRLPLANE_RATE_LIMIT_BURST_PER_SECOND,
    },
    maxWaitMs: config.CTRLPLANE_MAX_WAIT_MS,
    ssePingMs: config.CTRLPLANE_SSE_PING_INTERVAL_MS,
    shutdown: shutdown.signal,
    metrics,
    billing: {
      accounts: new BillingStore(orm),
      client,
      scheduleId: config.CTRLPLANE_BILLING_SCHEDULE_ID,
      defaultGracePeriod: config.CTRLPLANE_BILLING_GRACE_PERIOD,
      temporalTimeoutMs: config.CTRLPLANE_COMMAND_ACCEPT_TIMEOUT_MS,
    },
    logger,
  });
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(config.PORT, config.HOST, () => resolve(s));
    s.once('error', reject);
  });
  const purge = setInterval(() => {
    idempotency.purgeExpired().then(
      (n) => n > 0 && logger.info({ purged: n }, 'expired idempotency keys purged'),
      (err) => logger.warn({ err }, 'idempotency key purge failed'),
    );
    streamTickets.purgeExpired().catch((err) => logger.warn({ err }, 'stream ticket purge failed'));
  }, IDEMPOTENCY_PURGE_INTERVAL_MS);
  purge.unref();

  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.PORT;
  let closing: Promise<void> | undefined;
  return {
    server,
    url: `http://127.0.0.1:${port}`,
    metrics,
    close() {
      closing ??= (async () => {
        clearInterval(purge);
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        // Waits, ?wait= commands and log streams see this and answer or end now.
        shutdown.abort();
        // Keep-alive connections are closed as soon as their in-flight request is done.
        server.closeIdleConnections();
        const idle = setInterval(() => server.closeIdleConnections(), 50);
        const grace = setTimeout(() => server.closeAllConnections(), config.CTRLPLANE_API_SHUTDOWN_GRACE_MS);
        await closed;
        clearInterval(idle);
        clearTimeout(grace);
        await orm.close();
        await connection.close();
      })();
      return closing;
    },
  };
}
