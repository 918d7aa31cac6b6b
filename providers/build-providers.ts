import Dockerode from 'dockerode';
import type { Config } from '../config/env';
import type { Logger } from '../config/logger';
import { DockerProvider } from './docker/docker-provider';
import { ProviderRegistry } from './registry';

/** The provider registry from configuration. Docker is always there; it is the default unless configured. */
export function buildProviders(config: Config, logger: Logger): ProviderRegistry {
  const registry = new ProviderRegistry(config.CTRLPLANE_DEFAULT_PROVIDER);
  registry.register(
    'docker',
    new DockerProvider({
      docker: new Dockerode(),
      stopTimeoutSeconds: config.CTRLPLANE_DOCKER_STOP_TIMEOUT,
      logger: logger.child({ provider: 'docker' }),
    }),
  );
  return registry;
}
