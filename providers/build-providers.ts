import type { Config } from '../config/env.ts';
import type { Logger } from '../config/logger.ts';
import { parseNetworkPool } from '../config/network-pool.ts';
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
  // loadConfig has checked the pool; parsed again here into its numbers.
  const pool = parseNetworkPool(config.CTRLPLANE_DOCKER_NETWORK_POOL, config.CTRLPLANE_DOCKER_NETWORK_PREFIX);
  if (!('pool' in pool)) throw new Error(`CTRLPLANE_DOCKER_NETWORK_POOL: ${pool.problem}`);
  registry.register(
    'docker',
    new DockerProvider({
      docker: dockerClient(config.DOCKER_HOST),
      stopTimeoutSeconds: config.CTRLPLANE_DOCKER_STOP_TIMEOUT,
      ...(config.CTRLPLANE_DOCKER_REGISTRY_AUTH
        ? { registryAuth: config.CTRLPLANE_DOCKER_REGISTRY_AUTH }
        : {}),
      logger: logger.child({ provider: 'docker' }),
      networkPool: pool.pool,
      maxInstances: config.CTRLPLANE_DOCKER_MAX_INSTANCES,
      hostName: config.DOCKER_HOST ?? 'unix:///var/run/docker.sock',
    }),
  );
  // Kubernetes is registered when a cluster is configured (CP_K8S_KUBECONFIG, KUBECONFIG or in-cluster).
  const kubernetes = kubernetesProviderFromEnv(env, logger.child({ provider: 'kubernetes' }));
  if (kubernetes) registry.register('kubernetes', kubernetes);
  return registry;
}
