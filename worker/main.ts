import { exitOnConfigError } from '../config/config-error.ts';
import { loadWorkerConfig } from '../config/env.ts';
import { createLogger } from '../config/logger.ts';
import { openOrm } from '../db/database.ts';
import { RegistryCredentialStore } from '../db/registry-credential-store.ts';
import { buildProviders } from '../providers/build-providers.ts';
import { secretStoreFromConfig } from '../providers/secret-store.ts';
import { runWorker } from './run-worker.ts';

const { config, logger, secrets } = exitOnConfigError(() => {
  const config = loadWorkerConfig();
  const logger = createLogger('ctrlplane-worker', config.LOG_LEVEL);
  return { config, logger, secrets: secretStoreFromConfig() };
});
try {
  // Tenants' registry credentials come from the database: the Docker provider pulls their images with them.
  const orm = await openOrm(config.DATABASE_URL);
  const providers = exitOnConfigError(() =>
    buildProviders(config, logger, process.env, { tenantCredentials: new RegistryCredentialStore(orm) }),
  );
  await runWorker({
    config,
    logger,
    providers,
    secrets,
    orm,
    workflowBundlePath: process.env.CTRLPLANE_WORKFLOW_BUNDLE,
  });
} catch (err) {
  logger.fatal({ err }, 'worker failed');
  process.exit(1);
}
