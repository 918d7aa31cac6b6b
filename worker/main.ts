import { loadConfig } from '../config/env.ts';
import { createLogger } from '../config/logger.ts';
import { buildProviders } from '../providers/build-providers.ts';
import { runWorker } from './run-worker.ts';

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
