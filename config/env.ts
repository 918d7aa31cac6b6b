import { z } from 'zod';

/**
 * Every setting comes from the environment, parsed once, with the defaults a local dev stack needs.
 * A bad value stops the process at start-up with the variable named.
 */
const envSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  HOST: z.string().default('0.0.0.0'),
  DATABASE_URL: z.string().url().default('postgres://postgres@127.0.0.1:5432/ctrlplane'),
  TEMPORAL_ADDRESS: z.string().default('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  CTRLPLANE_TASK_QUEUE: z.string().min(1).default('ctrlplane-instances'),
  CTRLPLANE_JWT_SECRET: z
    .string()
    .min(16, 'must be at least 16 characters')
    .default('ctrlplane-dev-secret-change-me'),
  CTRLPLANE_DEFAULT_PROVIDER: z.string().min(1).default('docker'),
  DOCKER_HOST: z.string().optional(),
  /** Seconds Docker waits after SIGTERM before it kills a container on stop. */
  CTRLPLANE_DOCKER_STOP_TIMEOUT: z.coerce.number().int().min(0).default(10),
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
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type Config = z.infer<typeof envSchema>;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new Error(`invalid configuration: ${problems}`);
  }
  return parsed.data;
}
