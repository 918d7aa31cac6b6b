import { ConfigError } from '../config/config-error.ts';
import type { Config } from '../config/env.ts';
import { kubernetesOptions } from '../config/kubernetes-env.ts';
import type { Logger } from '../config/logger.ts';
import { parseNetworkPool } from '../config/network-pool.ts';
import type { FleetEntry } from '../config/provider-fleet.ts';
import { dockerClient } from './docker/docker-client.ts';
import { DockerProvider } from './docker/docker-provider.ts';
import type { DockerHostLimits } from './docker/host-limits.ts';
import { ImageAllowlist } from './docker/image-allowlist.ts';
import { specHashKey } from './docker/spec-hash.ts';
import type { TenantRegistryCredentials } from './docker/tenant-credentials.ts';
import { KubernetesProvider } from './kubernetes/kubernetes-provider.ts';
import type { Provider } from './provider.ts';
import { ProviderRegistry } from './registry.ts';

/** Which of the configured providers a process drives. */
export type ProviderSelection =
  /** The API: every provider (it checks specs, health and capacity, and serves logs and exec). */
  | { for: 'api' }
  /** The shared worker: the providers without an agent of their own. */
  | { for: 'shared-worker' }
  /** A host agent: its one provider. */
  | { for: 'agent'; provider: string };

/**
 * The provider registry from configuration. Without a fleet file: `docker` (DOCKER_HOST) always, and
 * `kubernetes` when a cluster is configured, both driven by the shared worker. With one
 * (CTRLPLANE_PROVIDERS_FILE): its providers, each with its task queue, capacity and labels, as `selection` asks.
 * The worker passes where tenants' registry credentials are stored (the API's providers only check specs).
 */
export function buildProviders(
  config: Config,
  logger: Logger,
  stores: { tenantCredentials?: TenantRegistryCredentials } = {},
  selection: ProviderSelection = { for: 'api' },
): ProviderRegistry {
  const registry = new ProviderRegistry(config.defaultProvider);
  if (config.fleet) {
    for (const entry of config.fleet.providers) {
      const wanted =
        selection.for === 'api' ||
        (selection.for === 'shared-worker' && !entry.agent) ||
        (selection.for === 'agent' && selection.provider === entry.name);
      if (!wanted) continue;
      registry.register(entry.name, fleetProvider(config, logger, entry, stores, selection), {
        ...(entry.agent ? { taskQueue: entry.task_queue } : {}),
        capacity: entry.capacity,
        labels: entry.labels,
      });
    }
    return registry;
  }
  registry.register(
    'docker',
    dockerProvider(config, logger, stores, {
      name: 'docker',
      dockerHost: config.DOCKER_HOST,
      networkPool: config.CTRLPLANE_DOCKER_NETWORK_POOL,
      maxInstances: config.CTRLPLANE_DOCKER_MAX_INSTANCES,
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

function fleetProvider(
  config: Config,
  logger: Logger,
  entry: FleetEntry,
  stores: { tenantCredentials?: TenantRegistryCredentials },
  selection: ProviderSelection,
): Provider {
  if (entry.kind === 'docker') {
    return dockerProvider(config, logger, stores, {
      name: entry.name,
      dockerHost: selection.for === 'api' ? (entry.api_docker_host ?? entry.docker_host) : entry.docker_host,
      networkPool: entry.network_pool ?? config.CTRLPLANE_DOCKER_NETWORK_POOL,
      maxInstances: entry.capacity.instances,
    });
  }
  // Every CTRLPLANE_K8S_* setting applies to each cluster; the connection and region are the entry's own.
  const options = kubernetesOptions({
    ...config,
    CTRLPLANE_K8S_ENABLED: true,
    CTRLPLANE_K8S_KUBECONFIG: entry.kubeconfig,
    CTRLPLANE_K8S_CONTEXT: entry.context,
    CTRLPLANE_K8S_REGION: entry.labels.region ?? config.CTRLPLANE_K8S_REGION,
  });
  if (!options) throw new Error(`provider ${entry.name}: no Kubernetes options`);
  return new KubernetesProvider({ ...options, logger: logger.child({ provider: entry.name }) });
}

function dockerProvider(
  config: Config,
  logger: Logger,
  stores: { tenantCredentials?: TenantRegistryCredentials },
  host: { name: string; dockerHost: string | undefined; networkPool: string; maxInstances: number },
): DockerProvider {
  // loadConfig has checked the pool; parsed again here into its numbers.
  const pool = parseNetworkPool(host.networkPool, config.CTRLPLANE_DOCKER_NETWORK_PREFIX);
  if (!('pool' in pool)) throw new Error(`${host.name} network pool: ${pool.problem}`);
  return new DockerProvider({
    docker: dockerClient(host.dockerHost),
    stopTimeoutSeconds: config.CTRLPLANE_DOCKER_STOP_TIMEOUT,
    ...(config.CTRLPLANE_DOCKER_REGISTRY_AUTH ? { registryAuth: config.CTRLPLANE_DOCKER_REGISTRY_AUTH } : {}),
    logger: logger.child({ provider: host.name }),
    networkPool: pool.pool,
    maxInstances: host.maxInstances,
    allowedImages: allowedImages(config.CTRLPLANE_DOCKER_ALLOWED_IMAGES),
    ...(stores.tenantCredentials ? { tenantCredentials: stores.tenantCredentials } : {}),
    limits: dockerHostLimits(config),
    ...(config.CTRLPLANE_SPEC_HASH_KEY ? { specHashKey: specHashKey(config.CTRLPLANE_SPEC_HASH_KEY) } : {}),
    hostName: host.dockerHost ?? 'unix:///var/run/docker.sock',
  });
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
