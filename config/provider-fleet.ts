import { existsSync, readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError } from './config-error.ts';
import { parseNetworkPool } from './network-pool.ts';

/**
 * The fleet of providers an installation runs on (CTRLPLANE_PROVIDERS_FILE): any number of Docker hosts and
 * Kubernetes clusters, each under its own name, with its connection, its capacity (what placement counts
 * against) and its labels. A provider with `agent: true` (the default) is driven only by the host agent of that
 * name (`npm run worker -- --provider NAME`), which polls the provider's own task queue; `agent: false` leaves
 * its calls to the shared worker. Read and checked once at start: a bad file stops the process, naming the
 * provider and the field.
 */

/** Provider names become task queue names and labels: short, lower case, no spaces. */
const PROVIDER_NAME = /^[a-z][a-z0-9-]{0,39}$/;

const capacitySchema = z.strictObject({
  instances: z.number().int().min(1),
  memory_mb: z.number().int().min(1),
});

const labelsSchema = z.record(
  z.string().regex(/^[a-z][a-z0-9_.-]{0,62}$/, 'a label key is lower case: letters, digits, _ . -'),
  z.string().max(63),
);

const common = {
  agent: z.boolean().default(true),
  /** Default: `<CTRLPLANE_TASK_QUEUE>/<name>`. */
  task_queue: z.string().min(1).max(200).optional(),
  capacity: capacitySchema,
  labels: labelsSchema.default({}),
};

const dockerEntrySchema = z.strictObject({
  kind: z.literal('docker'),
  docker_host: z.string().min(1).default('unix:///var/run/docker.sock'),
  /**
   * Where the API reads the engine (readiness, capacity, logs, usage): a GET-only proxy on the host, so the API
   * never holds a socket that can write. Default: docker_host.
   */
  api_docker_host: z.string().min(1).optional(),
  /** The range its instance networks are carved from; default CTRLPLANE_DOCKER_NETWORK_POOL. */
  network_pool: z.string().optional(),
  ...common,
});

const kubernetesEntrySchema = z.strictObject({
  kind: z.literal('kubernetes'),
  kubeconfig: z.string().min(1),
  context: z.string().min(1).optional(),
  ...common,
});

const entrySchema = z.discriminatedUnion('kind', [dockerEntrySchema, kubernetesEntrySchema]);

const fleetFileSchema = z.strictObject({
  providers: z.record(z.string(), entrySchema),
});

export type DockerFleetEntry = z.infer<typeof dockerEntrySchema> & { name: string; task_queue: string };
export type KubernetesFleetEntry = z.infer<typeof kubernetesEntrySchema> & {
  name: string;
  task_queue: string;
};
/** One provider of the fleet, its task queue resolved. */
export type FleetEntry = DockerFleetEntry | KubernetesFleetEntry;

export interface ProviderFleet {
  /** The file it was read from, for messages. */
  path: string;
  providers: FleetEntry[];
}

const VARIABLE = 'CTRLPLANE_PROVIDERS_FILE';

export interface FleetDefaults {
  /** CTRLPLANE_TASK_QUEUE: the workflows' queue, and the provider calls' of a provider without an agent. */
  sharedTaskQueue: string;
  /** CTRLPLANE_DOCKER_NETWORK_PREFIX: the subnet size each Docker host's pool is carved into. */
  networkPrefix: number;
}

/** Reads and checks the fleet file. */
export function loadProviderFleet(path: string, defaults: FleetDefaults): ProviderFleet {
  if (!existsSync(path)) throw ConfigError.of(VARIABLE, `no file at ${path}`);
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(path, 'utf8'));
  } catch (err) {
    throw ConfigError.of(VARIABLE, `${path} is not YAML or JSON: ${(err as Error).message}`);
  }
  return parseProviderFleet(raw, path, defaults);
}

/** The fleet from its parsed document (YAML or JSON); every problem names its place, as `providers.docker-b.capacity.instances`. */
export function parseProviderFleet(raw: unknown, path: string, defaults: FleetDefaults): ProviderFleet {
  const { sharedTaskQueue } = defaults;
  const parsed = fleetFileSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => ({
        variable: VARIABLE,
        message: `${path}: ${issue.path.join('.') || '(file)'}: ${issue.message}`,
      })),
    );
  }
  const problems: string[] = [];
  const providers: FleetEntry[] = [];
  const queues = new Map<string, string>();
  for (const [name, entry] of Object.entries(parsed.data.providers)) {
    const at = `providers.${name}`;
    if (!PROVIDER_NAME.test(name)) {
      problems.push(`${at}: a provider name is 1-40 of a-z, 0-9 and -, starting with a letter`);
      continue;
    }
    if (!entry.agent && entry.task_queue !== undefined) {
      problems.push(
        `${at}.task_queue: only a provider with an agent has a queue of its own (agent is false)`,
      );
    }
    const task_queue = entry.agent ? (entry.task_queue ?? `${sharedTaskQueue}/${name}`) : sharedTaskQueue;
    if (entry.agent && task_queue === sharedTaskQueue) {
      problems.push(`${at}.task_queue: an agent's queue must not be the shared one (${sharedTaskQueue})`);
    }
    const other = entry.agent ? queues.get(task_queue) : undefined;
    if (other) problems.push(`${at}.task_queue: ${task_queue} is already the queue of ${other}`);
    if (entry.agent) queues.set(task_queue, name);
    if (entry.kind === 'docker' && entry.network_pool !== undefined) {
      const pool = parseNetworkPool(entry.network_pool, defaults.networkPrefix);
      if ('problem' in pool) problems.push(`${at}.network_pool: ${pool.problem}`);
    }
    if (entry.kind === 'kubernetes' && !existsSync(entry.kubeconfig)) {
      problems.push(`${at}.kubeconfig: no file at ${entry.kubeconfig}`);
    }
    providers.push({ ...entry, name, task_queue } as FleetEntry);
  }
  if (providers.length === 0 && problems.length === 0) problems.push('providers: names no provider');
  if (problems.length > 0) {
    throw new ConfigError(
      problems.map((message) => ({ variable: VARIABLE, message: `${path}: ${message}` })),
    );
  }
  return { path, providers };
}
