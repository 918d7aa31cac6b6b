import { isIP } from 'node:net';
import { z } from 'zod';
import { ConfigError } from './config-error.ts';
import { parseNetworkPool } from './network-pool.ts';
import { parsePortRange } from './port-range.ts';

/**
 * Every setting comes from the environment, parsed once, with the defaults a local dev stack needs.
 * A bad value stops the process at start-up with the variable named.
 */
const registryAuthSchema = z.record(z.string(), z.object({ username: z.string(), password: z.string() }));

const envFields = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  HOST: z.string().default('0.0.0.0'),
  DATABASE_URL: z.string().url().default('postgres://postgres@127.0.0.1:5432/ctrlplane'),
  TEMPORAL_ADDRESS: z.string().default('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  CTRLPLANE_TASK_QUEUE: z.string().min(1).default('ctrlplane-instances'),
  /**
   * HS256 secret for Bearer tokens. No default: a well-known secret would let anyone mint tokens. The API
   * needs it or CTRLPLANE_JWKS_URL; `npm start` generates one for the dev stack under .data/.
   */
  CTRLPLANE_JWT_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
  /**
   * A JWKS URL (e.g. an identity provider's `/.well-known/jwks.json`): tokens signed with an asymmetric key
   * (RS*, PS*, ES*, EdDSA) are verified against it. HS256 tokens are accepted only when CTRLPLANE_JWT_SECRET is set.
   */
  CTRLPLANE_JWKS_URL: z.string().url().optional(),
  /** Tokens must carry this `iss`: required with CTRLPLANE_JWKS_URL, checked on HS256 tokens when set. */
  CTRLPLANE_JWT_ISSUER: z.string().min(1).optional(),
  /** Tokens must carry this `aud`: required with CTRLPLANE_JWKS_URL, checked on HS256 tokens when set. */
  CTRLPLANE_JWT_AUDIENCE: z.string().min(1).optional(),
  /** Requests per minute per tenant on /v1 (per API process); 0 turns the limit off. */
  CTRLPLANE_RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(0).default(600),
  /** How long an Idempotency-Key and its stored response are kept. */
  CTRLPLANE_IDEMPOTENCY_TTL_HOURS: z.coerce.number().positive().default(24),
  /** How long a repeat waits for the first request with its Idempotency-Key to finish before a 409. */
  CTRLPLANE_IDEMPOTENCY_WAIT_MS: z.coerce.number().int().min(0).default(30_000),
  /** Interval of the `: ping` comments on SSE streams. */
  CTRLPLANE_SSE_PING_INTERVAL_MS: z.coerce.number().int().positive().default(15_000),
  /** On shutdown, how long in-flight requests get to finish before their connections are closed. */
  CTRLPLANE_API_SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).default(10_000),
  CTRLPLANE_DEFAULT_PROVIDER: z.string().min(1).default('docker'),
  DOCKER_HOST: z.string().optional(),
  /** JSON: registry host → {username, password}, e.g. {"ghcr.io":{"username":"u","password":"t"}}. */
  CTRLPLANE_DOCKER_REGISTRY_AUTH: z
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
  /** Seconds Docker waits after SIGTERM before it kills a container on stop. */
  CTRLPLANE_DOCKER_STOP_TIMEOUT: z.coerce.number().int().min(0).default(10),
  /**
   * The private range each Docker instance's network gets its own subnet from (given explicitly to the engine,
   * so the engine's default address pools, ~30 networks, are never used up). See config/network-pool.ts.
   */
  CTRLPLANE_DOCKER_NETWORK_POOL: z.string().default('10.210.0.0/16'),
  /** Prefix length of each instance's subnet within the pool (a /27 holds 30 addresses). */
  CTRLPLANE_DOCKER_NETWORK_PREFIX: z.coerce.number().int().default(27),
  /** Most instances one Docker host runs at once (its memory is the usual bound); creates beyond it are 503. */
  CTRLPLANE_DOCKER_MAX_INSTANCES: z.coerce.number().int().min(1).default(1000),
  /** Most processes (threads included) one Docker container may hold: a fork bomb stops there. */
  CTRLPLANE_DOCKER_PIDS_LIMIT: z.coerce.number().int().min(16).max(1_000_000).default(512),
  /** Memory limit of a Docker service whose spec gives none (memory_mb absent or 0). */
  CTRLPLANE_DOCKER_DEFAULT_MEMORY_MB: z.coerce.number().int().min(6).default(512),
  /** CPU limit, in thousandths of a CPU, of a Docker service whose spec gives none (cpu_millis absent or 0). */
  CTRLPLANE_DOCKER_DEFAULT_CPU_MILLIS: z.coerce.number().int().min(1).default(1000),
  /** Most memory one Docker service may ask for; above it a create, update or scale is a 400 naming the field. */
  CTRLPLANE_DOCKER_MAX_MEMORY_MB: z.coerce.number().int().min(6).default(8192),
  /** Most CPU (thousandths) one Docker service may ask for; above it is a 400 naming the field. */
  CTRLPLANE_DOCKER_MAX_CPU_MILLIS: z.coerce.number().int().min(1).default(4000),
  /** Log rotation of every Docker container (json-file driver): size of one file, and how many are kept. */
  CTRLPLANE_DOCKER_LOG_MAX_SIZE: z
    .string()
    .regex(/^[1-9]\d{0,5}[kmg]$/, 'must be a size such as 10m, 500k or 1g')
    .default('10m'),
  CTRLPLANE_DOCKER_LOG_MAX_FILE: z.coerce.number().int().min(1).max(100).default(3),
  /** The host ports Docker services may publish on (a requested one outside it is a 400; none: one from it). */
  CTRLPLANE_DOCKER_HOST_PORT_RANGE: z
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
  /** Published ports listen on this host address only (never all interfaces unless set to 0.0.0.0). */
  CTRLPLANE_DOCKER_HOST_PORT_ADDRESS: z
    .string()
    .refine((address) => isIP(address) !== 0, 'must be an IPv4 or IPv6 address such as 127.0.0.1')
    .default('127.0.0.1'),
  /**
   * Images any tenant may run, comma-separated: `registry/repository` (any tag), `registry/repository:tag`,
   * or a prefix ending in `/*` (`ghcr.io/acme/*`, `registry.example.com/*`). Docker Hub is `docker.io`
   * (`docker.io/library/nginx`). The platform's registry credentials are used only for these. Any other image runs
   * only when a pull with the tenant's own registry credentials (or an anonymous pull) succeeds.
   */
  CTRLPLANE_DOCKER_ALLOWED_IMAGES: z
    .string()
    .default('')
    .transform((raw) =>
      raw
        .split(',')
        .map((entry) => entry.trim())
        .filter((entry) => entry !== ''),
    ),
  /**
   * Key of the HMAC-SHA256 that makes the `ctrlplane.spec-hash` label of Docker containers (their config
   * includes env, and with it resolved secrets). The worker needs it (at least 32 characters); `npm start`
   * generates one for the dev stack under .data/. Changing it replaces every container on its next provision.
   */
  CTRLPLANE_SPEC_HASH_KEY: z.string().min(32, 'must be at least 32 characters').optional(),
  /** How long the API waits for Temporal to accept a command before answering 503. */
  CTRLPLANE_COMMAND_ACCEPT_TIMEOUT_MS: z.coerce.number().int().positive().default(10_000),
  /** Longest `?wait=` a caller may ask for. */
  CTRLPLANE_MAX_WAIT_MS: z.coerce.number().int().positive().default(120_000),
  /** Time in-flight activities get to finish when the worker shuts down. */
  CTRLPLANE_WORKER_SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).default(30_000),
  /** Instance workflows continue-as-new after this many commands in one run. */
  CTRLPLANE_MAX_COMMANDS_PER_RUN: z.coerce.number().int().min(1).default(500),
  /** How often each instance workflow compares the provider's view with its own; 0 disables it. */
  CTRLPLANE_DRIFT_CHECK_INTERVAL_MS: z.coerce.number().int().min(0).default(60_000),
  /** How often each worker looks for instance rows whose create never started a workflow; 0 disables it. */
  CTRLPLANE_UNSTARTED_SWEEP_INTERVAL_MS: z.coerce.number().int().min(0).default(60_000),
  /** How old such a row must be before it is removed (well above the API's accept timeout). */
  CTRLPLANE_UNSTARTED_SWEEP_AGE_MS: z.coerce.number().int().positive().default(300_000),
  /** Id of the Temporal Schedule that runs the billing sweep (tests give each file its own). */
  CTRLPLANE_BILLING_SCHEDULE_ID: z.string().min(1).max(200).default('billing-sweep'),
  /** How often the billing sweep runs: a duration such as 5m, 30s, 1h. Applied to the schedule at worker start. */
  CTRLPLANE_BILLING_SWEEP_INTERVAL: z
    .string()
    .regex(/^(?!0+[smhd]$)\d{1,9}[smhd]$/, 'must be a positive duration such as 5m, 1h or 3d')
    .default('5m'),
  /** Grace period of a billing account that does not set its own: how long past due before suspension. */
  CTRLPLANE_BILLING_GRACE_PERIOD: z
    .string()
    .regex(/^\d{1,9}[smhd]$/, 'must be a duration such as 72h, 30m or 0s')
    .default('72h'),
  /** Instances one billing sweep run handles before it continues as new. */
  CTRLPLANE_BILLING_SWEEP_MAX_INSTANCES_PER_RUN: z.coerce.number().int().min(1).default(200),
  /** How long a create waits for the provider's health check before it answers 503 provider_unavailable. */
  CTRLPLANE_PROVIDER_HEALTH_TIMEOUT_MS: z.coerce.number().int().positive().default(5_000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

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

export type Config = z.infer<typeof envSchema>;

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
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => {
        const variable = issue.path.join('.') || '(environment)';
        const raw = env[variable];
        const message =
          issue.code === 'invalid_type' && issue.expected === 'number'
            ? `must be a number, not ${JSON.stringify(raw)}`
            : issue.message;
        return { variable, message };
      }),
    );
  }
  return parsed.data;
}
