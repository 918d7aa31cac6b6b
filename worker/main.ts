import { exitOnConfigError } from '../config/config-error';
import { loadConfig } from '../config/env';
import { createLogger } from '../config/logger';
import { buildProviders } from '../providers/build-providers';
import { secretStoreFromConfig } from '../providers/secret-store';
import { runWorker } from './run-worker';

const { config, logger, providers, secrets } = exitOnConfigError(() => {
  const config = loadConfig();
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
