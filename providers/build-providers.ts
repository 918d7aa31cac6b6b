import { ConfigError } from '../config/config-error.ts';
import type { Config } from '../config/env.ts';
import type { Logger } from '../config/logger.ts';
import { parseNetworkPool } from '../config/network-pool.ts';
import { dockerClient } from './docker/docker-client.ts';
import { DockerProvider } from './docker/docker-provider.ts';
import type { DockerHostLimits } from './docker/host-limits.ts';
import { ImageAllowlist } from './docker/image-allowlist.ts';
import { specHashKey } from './docker/spec-hash.ts';
import type { TenantRegistryCredentials } from './docker/tenant-credentials.ts';
import { KubernetesProvider } from './kubernetes/kubernetes-provider.ts';
import { ProviderRegistry } from './registry.ts';

/**
 * The provider registry from configuration. Docker is always there; it is the default unless configured. The
 * worker passes where tenants' registry credentials are stored (the API's providers only check specs).
 */
export function buildProviders(
  config: Config,
  logger: Logger,
  stores: { tenantCredentials?: TenantRegistryCredentials } = {},
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
      allowedImages: allowedImages(config.CTRLPLANE_DOCKER_ALLOWED_IMAGES),
      ...(stores.tenantCredentials ? { tenantCredentials: stores.tenantCredentials } : {}),
      limits: dockerHostLimits(config),
      ...(config.CTRLPLANE_SPEC_HASH_KEY ? { specHashKey: specHashKey(config.CTRLPLANE_SPEC_HASH_KEY) } : {}),
      hostName: config.DOCKER_HOST ?? 'unix:///var/run/docker.sock',
    }),
  );
  // Kubernetes is registered when a cluster is configured (CTRLPLANE_K8S_KUBECONFIG, KUBECONFIG or in-cluster).
  if (config.kubernetes) {
    registry.register(
      'kubernetes',
      new KubernetesProvider({ ...config.kubernetes, logger: logger.child({ provider: 'kubernetes' }) }),
    );
  }
  return registry;
}

function dockerHostLimits(config: Config): DockerHostLimits {
  return {
    pidsLimit: config.CTRLPLANE_DOCKER_PIDS_LIMIT,
    defaultMemoryMb: config.CTRLPLANE_DOCKER_DEFAULT_MEMORY_MB,
    defaultCpuMillis: config.CTRLPLANE_DOCKER_DEFAULT_CPU_MILLIS,
    maxMemoryMb: config.CTRLPLANE_DOCKER_MAX_MEMORY_MB,
    maxCpuMillis: config.CTRLPLANE_DOCKER_MAX_CPU_MILLIS,
    logMaxSize: config.CTRLPLANE_DOCKER_LOG_MAX_SIZE,
    logMaxFile: config.CTRLPLANE_DOCKER_LOG_MAX_FILE,
    hostPortRange: config.CTRLPLANE_DOCKER_HOST_PORT_RANGE,
    hostPortAddress: config.CTRLPLANE_DOCKER_HOST_PORT_ADDRESS,
  };
}

/** The allowlist entries, each checked (a bad one stops the process, naming the variable). */
function allowedImages(entries: readonly string[]): readonly string[] {
  try {
    new ImageAllowlist(entries);
  } catch (err) {
    throw ConfigError.of('CTRLPLANE_DOCKER_ALLOWED_IMAGES', err instanceof Error ? err.message : String(err));
  }
  return entries;
}
