import { parseArgs } from 'node:util';
import { ConfigError, exitOnConfigError } from '../config/config-error.ts';
import { loadWorkerConfig } from '../config/env.ts';
import { createLogger } from '../config/logger.ts';
import { openOrm } from '../db/database.ts';
import { RegistryCredentialStore } from '../db/registry-credential-store.ts';
import { buildProviders } from '../providers/build-providers.ts';
import { secretStoreFor } from '../providers/secret-store.ts';
import { installTelemetry } from '../telemetry/tracing.ts';
import { runWorker } from './run-worker.ts';

// Tenants' registry credentials come from the database, opened once the configuration is known to be good.
let credentials: RegistryCredentialStore | undefined;
const { config, logger, providers, secrets, agent } = exitOnConfigError(() => {
  // `--provider NAME`: the host agent of that provider of the fleet file (as CTRLPLANE_AGENT_PROVIDER=NAME).
  let flag: string | undefined;
  try {
    flag = parseArgs({ options: { provider: { type: 'string' } } }).values.provider;
  } catch (err) {
    throw ConfigError.of('--provider', (err as Error).message);
  }
  const config = loadWorkerConfig(flag ? { ...process.env, CTRLPLANE_AGENT_PROVIDER: flag } : process.env);
  const agentOf = config.CTRLPLANE_AGENT_PROVIDER;
  const logger = createLogger(agentOf ? `ctrlplane-agent-${agentOf}` : 'ctrlplane-worker', config.LOG_LEVEL);
  const providers = buildProviders(
    config,
    logger,
    {
      tenantCredentials: {
        lookup: (tenantId, registry) => {
          if (!credentials) throw new Error('the registry credential store is not open yet');
          return credentials.lookup(tenantId, registry);
        },
      },
    },
    agentOf ? { for: 'agent', provider: agentOf } : { for: 'shared-worker' },
  );
  const taskQueue = agentOf ? providers.site(agentOf).taskQueue : undefined;
  const agent = agentOf && taskQueue ? { provider: agentOf, taskQueue } : undefined;
  // The env store reads secret values from the worker's environment: those are data, not settings.
  return {
    config,
    logger,
    providers,
    secrets: secretStoreFor(config.CTRLPLANE_SECRET_STORE, process.env),
    agent,
  };
});
const telemetry = installTelemetry({
  serviceName: 'ctrlplane-worker',
  otlpEndpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT,
});
try {
  const orm = await openOrm(config.DATABASE_URL);
  credentials = new RegistryCredentialStore(orm);
  await runWorker({
    config,
    logger,
    providers,
    secrets,
    orm,
    workflowBundlePath: config.CTRLPLANE_WORKFLOW_BUNDLE,
    ...(agent ? { agent } : {}),
  });
  await telemetry?.shutdown();
} catch (err) {
  logger.fatal({ err }, 'worker failed');
  process.exit(1);
}
