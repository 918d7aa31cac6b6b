import { isIP } from 'node:net';
import { z } from 'zod';
import type { KubernetesProviderOptions } from '../providers/kubernetes/config.ts';
import { ConfigError } from './config-error.ts';
import { kubernetesFields, kubernetesOptions } from './kubernetes-env.ts';
import { parseNetworkPool } from './network-pool.ts';
import { parsePortRange } from './port-range.ts';
import { loadProviderFleet, type ProviderFleet } from './provider-fleet.ts';
import { retiredVariables } from './retired-variables.ts';
import { parseSecretStoreSpec, type SecretStoreSpec } from './secret-store-spec.ts';
import { booleanVariable, optionalTextVariable, setting, splitList } from './setting.ts';

/**
 * Every setting of the API and the worker comes from the environment, parsed here once, with the defaults a local
 * dev stack needs. A bad value stops the process at start-up with the variable named. Each variable is declared
 * with its meaning (setting()); the README's configuration table is rendered from this schema
 * (config/config-table.ts, checked by test/config-docs.unit.test.ts).
 */
const registryAuthSchema = z.record(z.string(), z.object({ username: z.string(), password: z.string() }));

const envFields = z.object({
  PORT: setting(z.coerce.number().int().min(0).max(65535).default(8080), 'port the API listens on'),
  HOST: setting(z.string().default('0.0.0.0'), 'address the API listens on'),
  DATABASE_URL: setting(
    z.string().url().default('postgres://postgres@127.0.0.1:5432/ctrlplane'),
    'the read model (PostgreSQL); created and migrated on start',
  ),
  TEMPORAL_ADDRESS: setting(
    z.string().default('127.0.0.1:7233'),
    'the Temporal frontend; when set for `npm start`, that server is used instead of starting one',
  ),
  TEMPORAL_NAMESPACE: setting(
    z.string().min(1).default('default'),
    'the Temporal namespace of the workflows',
  ),
  CTRLPLANE_TASK_QUEUE: setting(
    z.string().min(1).default('ctrlplane-instances'),
    'the task queue of the workflows and activities',
  ),
  // No default: a well-known secret would let anyone mint tokens.
  CTRLPLANE_JWT_SECRET: setting(
    z.string().min(16, 'must be at least 16 characters').optional(),
    'HS256 secret (at least 16 characters) for Bearer tokens (claims `sub`, `tenant_id`, `roles`, `exp`: a token without `exp` is refused); the API needs it or `CTRLPLANE_JWKS_URL`, and accepts HS256 only when it is set',
    'none (`npm start` makes one in `.data/dev-jwt-secret`)',
  ),
  CTRLPLANE_JWKS_URL: setting(
    z.string().url().optional(),
    "a JWKS URL (an identity provider's `/.well-known/jwks.json`) to verify asymmetric tokens (RS*, PS*, ES*, EdDSA) against; needs `CTRLPLANE_JWT_ISSUER` and `CTRLPLANE_JWT_AUDIENCE` (the API refuses to start without them: an identity provider's key set signs tokens for other services too)",
  ),
  CTRLPLANE_JWT_ISSUER: setting(
    z.string().min(1).optional(),
    'the `iss` every token must carry: required with a JWKS; when set, HS256 tokens must carry it too',
  ),
  CTRLPLANE_JWT_AUDIENCE: setting(
    z.string().min(1).optional(),
    'the `aud` every token must carry: required with a JWKS; when set, HS256 tokens must carry it too',
  ),
  CTRLPLANE_RATE_LIMIT_PER_MINUTE: setting(
    z.coerce.number().int().min(0).default(600),
    'requests per minute per tenant on /v1, per API process; `0` turns the limit off',
  ),
  CTRLPLANE_RATE_LIMIT_BURST_PER_SECOND: setting(
    z.coerce.number().int().min(0).default(20),
    "requests per second per tenant on /v1, under the minute's budget, so that no tenant spends its minute in a burst that slows the others; `0` leaves only the minute's limit",
  ),
  CTRLPLANE_IDEMPOTENCY_TTL_HOURS: setting(
    z.coerce.number().positive().default(24),
    'how long an `Idempotency-Key` and its stored answer are kept',
  ),
  CTRLPLANE_IDEMPOTENCY_WAIT_MS: setting(
    z.coerce.number().int().min(0).default(30_000),
    'how long a repeat waits for the first request with its `Idempotency-Key` to finish before a `409`',
  ),
  CTRLPLANE_SSE_PING_INTERVAL_MS: setting(
    z.coerce.number().int().positive().default(15_000),
    'interval of the `: ping` comments on SSE streams',
  ),
  CTRLPLANE_API_SHUTDOWN_GRACE_MS: setting(
    z.coerce.number().int().min(0).default(10_000),
    'on SIGTERM, how long in-flight requests get to finish before their connections are closed',
  ),
  CTRLPLANE_DEFAULT_PROVIDER: setting(
    z.string().min(1).optional(),
    'provider for creates without `provider_name` or datacenter; `auto`: placed on the eligible provider with the most free capacity (see [A fleet of hosts](#a-fleet-of-hosts))',
    '`docker`; with `CTRLPLANE_PROVIDERS_FILE`, `auto`',
  ),
  CTRLPLANE_PROVIDERS_FILE: setting(
    optionalTextVariable(),
    'a YAML (or JSON) file naming every Docker host and Kubernetes cluster of the fleet, with its connection, capacity, labels and whether an agent drives it (see [A fleet of hosts](#a-fleet-of-hosts)); when set, `DOCKER_HOST` and the `kubernetes` provider of `CTRLPLANE_K8S_KUBECONFIG`/`KUBECONFIG` are not used',
    'none: one `docker` provider (`DOCKER_HOST`) and the `kubernetes` one when a cluster is configured',
  ),
  CTRLPLANE_AGENT_PROVIDER: setting(
    optionalTextVariable(),
    "run the worker as the host agent of this provider of the fleet file (as `npm run worker -- --provider NAME`): it polls only that provider's task queue and runs only its calls",
  ),
  DOCKER_HOST: setting(z.string().optional(), 'the Docker engine', '`unix:///var/run/docker.sock`'),
  CTRLPLANE_DOCKER_REGISTRY_AUTH: setting(
    z
      .string()
      .optional()
      .transform((raw, ctx) => {
        if (!raw) return undefined;
        try {
          return registryAuthSchema.parse(JSON.parse(raw));
        } catch {
          ctx.addIssue({
            code: 'custom',
            message: 'must be JSON: {"<registry>": {"username": "…", "password": "…"}}',
          });
          return z.NEVER;
        }
      }),
    'the platform\'s registry credentials, JSON `{"ghcr.io":{"username":"u","password":"t"}}`, used only to pull images of `CTRLPLANE_DOCKER_ALLOWED_IMAGES`',
  ),
  CTRLPLANE_DOCKER_STOP_TIMEOUT: setting(
    z.coerce.number().int().min(0).default(10),
    'seconds Docker waits after SIGTERM before it kills a container on stop',
  ),
  // Given explicitly to the engine, so the engine's default address pools (~30 networks) are never used up.
  CTRLPLANE_DOCKER_NETWORK_POOL: setting(
    z.string().default('10.210.0.0/16'),
    "the private IPv4 range each Docker instance's network gets its own subnet of; checked at start (see [Operating Docker hosts](#operating-docker-hosts))",
  ),
  CTRLPLANE_DOCKER_NETWORK_PREFIX: setting(
    z.coerce.number().int().default(27),
    "prefix length of each instance's subnet within the pool (≤ 27: room for 20 services; a /27 holds 30 addresses)",
  ),
  CTRLPLANE_DOCKER_MAX_INSTANCES: setting(
    z.coerce.number().int().min(1).default(1000),
    'most instances one Docker host runs at once; creates beyond it, or beyond the pool, are `503 capacity_exhausted`',
  ),
  CTRLPLANE_DOCKER_PIDS_LIMIT: setting(
    z.coerce.number().int().min(16).max(1_000_000).default(512),
    'processes (threads included) one Docker container may hold: a fork bomb stops there',
  ),
  CTRLPLANE_DOCKER_DEFAULT_MEMORY_MB: setting(
    z.coerce.number().int().min(6).default(512),
    'memory limit of a Docker service whose `memory_mb` is absent or `0` (never "no limit")',
  ),
  CTRLPLANE_DOCKER_DEFAULT_CPU_MILLIS: setting(
    z.coerce.number().int().min(1).default(1000),
    'CPU limit, in thousandths of a CPU, of a Docker service whose `cpu_millis` is absent or `0`',
  ),
  CTRLPLANE_DOCKER_MAX_MEMORY_MB: setting(
    z.coerce.number().int().min(6).default(8192),
    'most memory one Docker service may ask for: a create, PATCH or scale asking for more is `400` naming the field (`services[0].resources.memory_mb`), before anything is written',
  ),
  CTRLPLANE_DOCKER_MAX_CPU_MILLIS: setting(
    z.coerce.number().int().min(1).default(4000),
    'most CPU (thousandths) one Docker service may ask for; above it is a `400` naming the field',
  ),
  CTRLPLANE_DOCKER_LOG_MAX_SIZE: setting(
    z
      .string()
      .regex(/^[1-9]\d{0,5}[kmg]$/, 'must be a size such as 10m, 500k or 1g')
      .default('10m'),
    'log rotation of every Docker container (`json-file` driver): size of one file',
  ),
  CTRLPLANE_DOCKER_LOG_MAX_FILE: setting(
    z.coerce.number().int().min(1).max(100).default(3),
    'log rotation of every Docker container: how many files are kept',
  ),
  CTRLPLANE_DOCKER_HOST_PORT_RANGE: setting(
    z
      .string()
      .default('30000-32767')
      .transform((raw, ctx) => {
        const range = parsePortRange(raw);
        if ('problem' in range) {
          ctx.addIssue({ code: 'custom', message: range.problem });
          return z.NEVER;
        }
        return range;
      }),
    'host ports a Docker service may publish (another one is `400` naming `services[i].ports[j].host`; none given: Docker picks a free one of the range)',
    '`30000-32767`',
  ),
  CTRLPLANE_DOCKER_HOST_PORT_ADDRESS: setting(
    z
      .string()
      .refine((address) => isIP(address) !== 0, 'must be an IPv4 or IPv6 address such as 127.0.0.1')
      .default('127.0.0.1'),
    'the only host address published ports listen on (`0.0.0.0` only if you mean every interface)',
  ),
  CTRLPLANE_DOCKER_ALLOWED_IMAGES: setting(
    z
      .string()
      .default('')
      .transform((raw) => splitList(raw)),
    "comma-separated images any tenant may run: `docker.io/library/nginx` (any tag), `registry.example.com/team/app:2` (that tag), `ghcr.io/acme/*`, `registry.example.com/*` (Docker Hub is `docker.io`); the platform's registry credentials are used only for these; any other image runs only if a pull with the tenant's own credentials (or an anonymous pull) succeeds, even when it is on the host already",
    'none (`npm start`, `npm test`: `docker.io/ctrlplane-test/*`)',
  ),
  CTRLPLANE_SPEC_HASH_KEY: setting(
    z.string().min(32, 'must be at least 32 characters').optional(),
    "key (≥ 32 characters, e.g. `openssl rand -hex 32`) of the HMAC-SHA256 in each Docker container's `ctrlplane.spec-hash` label (their config includes env, and with it resolved secrets); the same for every worker of an installation and kept across upgrades (a new key replaces every container on its next provision)",
    'none (`npm start` makes one in `.data/dev-spec-hash-key`); the worker refuses to start without it',
  ),
  CTRLPLANE_SECRET_STORE: setting(
    z
      .string()
      .optional()
      .transform((raw, ctx): SecretStoreSpec => {
        const spec = parseSecretStoreSpec(raw);
        if ('problem' in spec) {
          ctx.addIssue({ code: 'custom', message: spec.problem });
          return z.NEVER;
        }
        return spec;
      }),
    "where the worker reads secret variables, always inside the instance's tenant: `env` (tenant `acme`, key `db/password` → `CTRLPLANE_SECRET_ACME__DB__PASSWORD`), `env:PREFIX`, `dir:/path` (→ `/path/acme/db/password`); see [Secret variables](#secret-variables)",
    '`env`',
  ),
  CTRLPLANE_KUSTOMIZE_BIN: setting(
    optionalTextVariable(),
    'the kustomize (or kubectl) binary that builds `manifests.kustomize` sources',
    '`kustomize`, else `kubectl`, on PATH',
  ),
  ...kubernetesFields,
  CTRLPLANE_COMMAND_ACCEPT_TIMEOUT_MS: setting(
    z.coerce.number().int().positive().default(10_000),
    'longest wait for Temporal to accept a command (then `503`)',
  ),
  CTRLPLANE_MAX_WAIT_MS: setting(
    z.coerce.number().int().positive().default(120_000),
    'longest `?wait=` a caller may ask for',
  ),
  CTRLPLANE_WORKER_SHUTDOWN_GRACE_MS: setting(
    z.coerce.number().int().min(0).default(30_000),
    'on SIGTERM, how long in-flight activities get to finish',
  ),
  CTRLPLANE_LIST_TOTAL_LIMIT: setting(
    z.coerce.number().int().min(1).default(10_000),
    'how many matches a listing counts for its `total`; beyond it `total` is this number and `total_capped` is true (keeps the count of a big tenant cheap)',
  ),
  CTRLPLANE_WORKER_MAX_CACHED_WORKFLOWS: setting(
    z.coerce.number().int().min(0).default(1_000),
    'workflows the worker keeps in its sticky cache; the others are replayed from history when they next have work (bounds the worker memory however many instances are idle)',
  ),
  CTRLPLANE_MAX_COMMANDS_PER_RUN: setting(
    z.coerce.number().int().min(1).default(500),
    'instance workflows continue-as-new after this many commands in one run',
  ),
  CTRLPLANE_DRIFT_CHECK_INTERVAL_MS: setting(
    z.coerce.number().int().min(0).optional(),
    "how often each new instance workflow also compares the provider's view with its own, besides the provider watchers (unset or `0`: never)",
  ),
  CTRLPLANE_PROVIDER_WATCH: setting(
    booleanVariable().transform((on) => on ?? true),
    "each worker makes sure every provider's one watcher workflow runs (it follows the provider's events and tells the instances that drifted) (`false`: only the periodic check, if set, notices drift)",
    '`true`',
  ),
  CTRLPLANE_UNSTARTED_SWEEP_INTERVAL_MS: setting(
    z.coerce.number().int().min(0).default(60_000),
    'how often each worker looks for instance rows whose create never started a workflow (`0`: never)',
  ),
  CTRLPLANE_UNSTARTED_SWEEP_AGE_MS: setting(
    z.coerce.number().int().positive().default(300_000),
    "how old such a row must be before it is removed (well above the API's accept timeout)",
  ),
  CTRLPLANE_BILLING_SCHEDULE_ID: setting(
    z.string().min(1).max(200).default('billing-sweep'),
    'id of the Temporal Schedule that runs the billing sweep (tests give each file its own)',
  ),
  CTRLPLANE_BILLING_SWEEP_INTERVAL: setting(
    z
      .string()
      .regex(/^(?!0+[smhd]$)\d{1,9}[smhd]$/, 'must be a positive duration such as 5m, 1h or 3d')
      .default('5m'),
    'how often the billing sweep runs (`30s`, `5m`, `1h`, `3d`); applied to the schedule at worker start',
  ),
  CTRLPLANE_BILLING_GRACE_PERIOD: setting(
    z
      .string()
      .regex(/^\d{1,9}[smhd]$/, 'must be a duration such as 72h, 30m or 0s')
      .default('72h'),
    'grace period of a billing account that does not set its own: how long past due before suspension',
  ),
  CTRLPLANE_BILLING_SWEEP_MAX_INSTANCES_PER_RUN: setting(
    z.coerce.number().int().min(1).default(200),
    'instances one billing sweep run handles before it continues as new',
  ),
  CTRLPLANE_WEBHOOK_ALLOW_PRIVATE: setting(
    booleanVariable(),
    "when true, webhooks may be sent to loopback, private, link-local and other non-public addresses (checked when a webhook is saved and again at each delivery); only for receivers on the platform's own network",
    '`false`',
  ),
  CTRLPLANE_WEBHOOK_SECRET_KEY: setting(
    z.string().min(32, 'must be at least 32 characters').optional(),
    'key (≥ 32 characters, e.g. `openssl rand -hex 32`) that encrypts webhook secrets in the database (AES-256-GCM); the same for the API and every worker, kept across upgrades; secrets stored without a key still work once one is set',
    'none: secrets are stored as given (`npm start` makes one in `.data/dev-webhook-secret-key`)',
  ),
  CTRLPLANE_WEBHOOK_TIMEOUT_MS: setting(
    z.coerce.number().int().positive().default(10_000),
    "how long one webhook delivery attempt waits for the receiver's answer before it is retried",
  ),
  CTRLPLANE_PROVIDER_HEALTH_TIMEOUT_MS: setting(
    z.coerce.number().int().positive().default(5_000),
    "how long a create waits for the provider's health check before it answers `503 provider_unavailable`",
  ),
  CTRLPLANE_WORKFLOW_BUNDLE: setting(
    optionalTextVariable(),
    'a prebuilt workflow bundle for the worker; without it the worker bundles `workflows/` itself at start',
    'none (the image: `/app/dist/workflow-bundle.js`)',
  ),
  OTEL_EXPORTER_OTLP_ENDPOINT: setting(
    z.string().url().optional(),
    'OpenTelemetry collector (OTLP over HTTP, e.g. `http://otel-collector:4318`): traces go to `<it>/v1/traces`; unset, no tracing SDK runs and nothing is exported',
  ),
  LOG_LEVEL: setting(
    z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    'pino level; logs are JSON lines',
  ),
});

/** The variables the configuration reads, each with its documentation (config/config-table.ts renders them). */
export const configFields = envFields.shape;

/** Settings checked together: the network pool and its subnet prefix; Docker defaults and their ceilings. */
const envSchema = envFields.superRefine((env, ctx) => {
  const parsed = parseNetworkPool(env.CTRLPLANE_DOCKER_NETWORK_POOL, env.CTRLPLANE_DOCKER_NETWORK_PREFIX);
  if ('problem' in parsed) {
    const key = parsed.field === 'pool' ? 'CTRLPLANE_DOCKER_NETWORK_POOL' : 'CTRLPLANE_DOCKER_NETWORK_PREFIX';
    ctx.addIssue({ code: 'custom', path: [key], message: parsed.problem });
  }
  if (env.CTRLPLANE_DOCKER_DEFAULT_MEMORY_MB > env.CTRLPLANE_DOCKER_MAX_MEMORY_MB) {
    ctx.addIssue({
      code: 'custom',
      path: ['CTRLPLANE_DOCKER_DEFAULT_MEMORY_MB'],
      message: `must not be above CTRLPLANE_DOCKER_MAX_MEMORY_MB (${env.CTRLPLANE_DOCKER_MAX_MEMORY_MB})`,
    });
  }
  if (env.CTRLPLANE_DOCKER_DEFAULT_CPU_MILLIS > env.CTRLPLANE_DOCKER_MAX_CPU_MILLIS) {
    ctx.addIssue({
      code: 'custom',
      path: ['CTRLPLANE_DOCKER_DEFAULT_CPU_MILLIS'],
      message: `must not be above CTRLPLANE_DOCKER_MAX_CPU_MILLIS (${env.CTRLPLANE_DOCKER_MAX_CPU_MILLIS})`,
    });
  }
});

export type Config = z.infer<typeof envSchema> & {
  /** The Kubernetes provider's options; undefined when no cluster is configured (config/kubernetes-env.ts). */
  kubernetes: KubernetesProviderOptions | undefined;
  /** The providers of CTRLPLANE_PROVIDERS_FILE; undefined without one (config/provider-fleet.ts). */
  fleet: ProviderFleet | undefined;
  /** The provider creates go to without provider_name or datacenter; undefined: placement by capacity. */
  defaultProvider: string | undefined;
};

/** The API's configuration: loadConfig's, and a way to verify tokens (the worker needs none). */
export function loadApiConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const config = loadConfig(env);
  if (!config.CTRLPLANE_JWT_SECRET && !config.CTRLPLANE_JWKS_URL) {
    throw ConfigError.of(
      'CTRLPLANE_JWT_SECRET',
      'not set: the API verifies tokens with it (HS256, at least 16 characters) or with CTRLPLANE_JWKS_URL',
    );
  }
  // A key set (an identity provider's) signs tokens for other services too: only the issuer and audience
  // make a token one for this API.
  if (config.CTRLPLANE_JWKS_URL) {
    const missing = (['CTRLPLANE_JWT_ISSUER', 'CTRLPLANE_JWT_AUDIENCE'] as const).filter((v) => !config[v]);
    if (missing.length > 0) {
      throw new ConfigError(
        missing.map((variable) => ({
          variable,
          message: `not set: required with CTRLPLANE_JWKS_URL (tokens must carry this ${variable === 'CTRLPLANE_JWT_ISSUER' ? 'iss' : 'aud'})`,
        })),
      );
    }
  }
  return config;
}

/** The worker's configuration: loadConfig's, with the key of the Docker spec hash (the worker makes containers). */
export function loadWorkerConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const config = loadConfig(env);
  if (!config.CTRLPLANE_SPEC_HASH_KEY) {
    throw ConfigError.of(
      'CTRLPLANE_SPEC_HASH_KEY',
      'not set: the worker signs the spec-hash label of Docker containers with it (at least 32 characters; ' +
        'e.g. `openssl rand -hex 32`, the same for every worker of an installation)',
    );
  }
  return config;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const retired = retiredVariables(env);
  const parsed = envSchema.safeParse(env);
  if (!parsed.success || retired.length > 0) {
    throw new ConfigError([
      ...retired,
      ...(parsed.error?.issues ?? []).map((issue) => {
        const variable = issue.path.join('.') || '(environment)';
        const raw = env[variable];
        const message =
          issue.code === 'invalid_type' && issue.expected === 'number'
            ? `must be a number, not ${JSON.stringify(raw)}`
            : issue.message;
        return { variable, message };
      }),
    ]);
  }
  const data = parsed.data;
  if (!data.CTRLPLANE_PROVIDERS_FILE) {
    if (data.CTRLPLANE_AGENT_PROVIDER) {
      throw ConfigError.of(
        'CTRLPLANE_AGENT_PROVIDER',
        'names a provider of CTRLPLANE_PROVIDERS_FILE, which is not set',
      );
    }
    const defaultProvider = data.CTRLPLANE_DEFAULT_PROVIDER ?? 'docker';
    if (defaultProvider === 'auto') {
      throw ConfigError.of(
        'CTRLPLANE_DEFAULT_PROVIDER',
        'auto places instances across a fleet: set CTRLPLANE_PROVIDERS_FILE',
      );
    }
    return { ...data, kubernetes: kubernetesOptions(data), fleet: undefined, defaultProvider };
  }
  const fleet = loadProviderFleet(data.CTRLPLANE_PROVIDERS_FILE, {
    sharedTaskQueue: data.CTRLPLANE_TASK_QUEUE,
    networkPrefix: data.CTRLPLANE_DOCKER_NETWORK_PREFIX,
  });
  const named = (name: string) => fleet.providers.some((p) => p.name === name);
  const chosen = data.CTRLPLANE_DEFAULT_PROVIDER;
  if (chosen !== undefined && chosen !== 'auto' && !named(chosen)) {
    throw ConfigError.of('CTRLPLANE_DEFAULT_PROVIDER', `${chosen} is not a provider of ${fleet.path}`);
  }
  const agent = data.CTRLPLANE_AGENT_PROVIDER;
  if (agent !== undefined) {
    const entry = fleet.providers.find((p) => p.name === agent);
    if (!entry)
      throw ConfigError.of('CTRLPLANE_AGENT_PROVIDER', `${agent} is not a provider of ${fleet.path}`);
    if (!entry.agent) {
      throw ConfigError.of(
        'CTRLPLANE_AGENT_PROVIDER',
        `${agent} has agent: false in ${fleet.path}: the shared worker drives it`,
      );
    }
  }
  return {
    ...data,
    // The fleet's Kubernetes clusters are built from these settings with each entry's kubeconfig.
    kubernetes: undefined,
    fleet,
    defaultProvider: chosen === 'auto' ? undefined : chosen,
  };
}
