import type { Config } from '../config/env.ts';
import type { Logger } from '../config/logger.ts';
import { dockerClient } from './docker/docker-client.ts';
import { DockerProvider } from './docker/docker-provider.ts';
import { kubernetesProviderFromEnv } from './kubernetes/from-env.ts';
import { ProviderRegistry } from './registry.ts';

/** The provider registry from configuration. Docker is always there; it is the default unless configured. */
export function buildProviders(
  config: Config,
  logger: Logger,
  env: NodeJS.ProcessEnv = process.env,
): ProviderRegistry {
  const registry = new ProviderRegistry(config.CTRLPLANE_DEFAULT_PROVIDER);
  registry.register(
    'docker',
    new DockerProvider({
      docker: dockerClient(config.DOCKER_HOST),
      stopTimeoutSeconds: config.CTRLPLANE_DOCKER_STOP_TIMEOUT,
      ...(config.CTRLPLANE_DOCKER_REGISTRY_AUTH
        ? { registryAuth: config.CTRLPLANE_DOCKER_REGISTRY_AUTH }
        : {}),
      logger: logger.child({ provider: 'docker' }),
    }),
  );
  // Kubernetes is registered when a cluster is configured (CP_K8S_KUBECONFIG, KUBECONFIG or in-cluster).
  const kubernetes = kubernetesProviderFromEnv(env, logger.child({ provider: 'kubernetes' }));
  if (kubernetes) registry.register('kubernetes', kubernetes);
  return registry;
}
