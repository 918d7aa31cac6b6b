import { loadConfig } from '../config/env';
import { createLogger } from '../config/logger';
import { buildProviders } from '../providers/build-providers';
import { runWorker } from './run-worker';

const config = loadConfig();
const logger = createLogger('ctrlplane-worker', config.LOG_LEVEL);
try {
  await runWorker({
    config,
    logger,
    providers: buildProviders(config, logger),
    workflowBundlePath: process.env.CTRLPLANE_WORKFLOW_BUNDLE,
  });
} catch (err) {
  logger.fatal({ err }, 'worker failed');
  process.exit(1);
}
