import { exitOnConfigError } from '../config/config-error.ts';
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
const { config, logger, providers, secrets } = exitOnConfigError(() => {
  const config = loadWorkerConfig();
  const logger = createLogger('ctrlplane-worker', config.LOG_LEVEL);
  const providers = buildProviders(config, logger, {
    tenantCredentials: {
      lookup: (tenantId, registry) => {
        if (!credentials) throw new Error('the registry credential store is not open yet');
        return credentials.lookup(tenantId, registry);
      },
    },
  });
  // The env store reads secret values from the worker's environment: those are data, not settings.
  return { config, logger, providers, secrets: secretStoreFor(config.CTRLPLANE_SECRET_STORE, process.env) };
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
  });
  await telemetry?.shutdown();
} catch (err) {
  logger.fatal({ err }, 'worker failed');
  process.exit(1);
}
