import { exitOnConfigError } from '../config/config-error.ts';
import { loadApiConfig } from '../config/env.ts';
import { createLogger } from '../config/logger.ts';
import { buildProviders } from '../providers/build-providers.ts';
import { installTelemetry } from '../telemetry/tracing.ts';
import { startApi } from './server.ts';

const { config, logger, providers } = exitOnConfigError(() => {
  const config = loadApiConfig();
  const logger = createLogger('ctrlplane-api', config.LOG_LEVEL);
  return { config, logger, providers: buildProviders(config, logger) };
});
const telemetry = installTelemetry({
  serviceName: 'ctrlplane-api',
  otlpEndpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT,
});
const api = await startApi(config, logger, providers).catch((err) => {
  logger.fatal({ err }, 'api failed to start');
  process.exit(1);
});
logger.info({ url: api.url }, 'api listening');

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'api shutting down: finishing in-flight requests');
    api
      .close()
      .then(() => telemetry?.shutdown())
      .then(
        () => process.exit(0),
        (err) => {
          logger.error({ err }, 'api shutdown failed');
          process.exit(1);
        },
      );
  });
}
