import { exitOnConfigError } from '../config/config-error.ts';
import { loadWorkerConfig } from '../config/env.ts';
import { createLogger } from '../config/logger.ts';
import { buildProviders } from '../providers/build-providers.ts';
import { secretStoreFromConfig } from '../providers/secret-store.ts';
import { runWorker } from './run-worker.ts';

const { config, logger, providers, secrets } = exitOnConfigError(() => {
  const config = loadWorkerConfig();
  const logger = createLogger('ctrlplane-worker', config.LOG_LEVEL);
  return { config, logger, providers: buildProviders(config, logger), secrets: secretStoreFromConfig() };
});
try {
  await runWorker({
    config,
    logger,
    providers,
    secrets,
    workflowBundlePath: process.env.CTRLPLANE_WORKFLOW_BUNDLE,
  });
} catch (err) {
  logger.fatal({ err }, 'worker failed');
  process.exit(1);
}
