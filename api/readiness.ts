import type { Logger } from '../config/logger.ts';
import type { ProviderRegistry } from '../providers/registry.ts';

export type CheckStatus = 'ok' | 'down';

/** What the unauthenticated /readyz tells anyone: a word per dependency, never its error or version. */
export interface Readiness {
  status: 'ready' | 'not_ready';
  checks: Record<string, CheckStatus>;
}

export interface ReadinessDeps {
  ping: { postgres: () => Promise<unknown>; temporal: () => Promise<unknown> };
  providers: ProviderRegistry;
  /** A check that takes longer is down. */
  timeoutMs: number;
  logger: Logger;
}

/** How long one answer is served again: /readyz cannot be used to hammer PostgreSQL, Temporal or a provider. */
export const READINESS_CACHE_MS = 2_000;

/**
 * The readiness probe: each dependency checked at most once per READINESS_CACHE_MS however many ask (callers
 * at the same moment share one round of checks). Why a check failed goes to the log, for the operator.
 */
export function readinessProbe(deps: ReadinessDeps): () => Promise<Readiness> {
  let cached: { at: number; answer: Promise<Readiness> } | undefined;
  return () => {
    const now = Date.now();
    if (!cached || now - cached.at >= READINESS_CACHE_MS) {
      cached = { at: now, answer: checkAll(deps) };
    }
    return cached.answer;
  };
}

async function checkAll(deps: ReadinessDeps): Promise<Readiness> {
  const checks: [string, () => Promise<void>][] = [
    ['postgres', async () => void (await deps.ping.postgres())],
    ['temporal', async () => void (await deps.ping.temporal())],
    ...deps.providers.names().map((name): [string, () => Promise<void>] => [
      `provider:${name}`,
      async () => {
        const health = await deps.providers.get(name).healthCheck();
        if (!health.healthy) throw new Error(health.message ?? 'unhealthy');
      },
    ]),
  ];
  const results = await Promise.all(
    checks.map(async ([name, check]): Promise<[string, CheckStatus]> => {
      try {
        await withTimeout(check(), deps.timeoutMs);
        return [name, 'ok'];
      } catch (err) {
        deps.logger.warn({ check: name, err: { message: errorMessage(err) } }, 'readiness check down');
        return [name, 'down'];
      }
    }),
  );
  return { status: isReady(results) ? 'ready' : 'not_ready', checks: Object.fromEntries(results) };
}

/**
 * Ready when PostgreSQL and Temporal answer and so does at least one provider: in a fleet, one host that is
 * down shows `down` but does not take the API out of its load balancer, which would stop the instances of every
 * other host too (that host's creates are refused, 503 provider_unavailable, by the create itself).
 */
function isReady(results: [string, CheckStatus][]): boolean {
  const providers = results.filter(([name]) => name.startsWith('provider:'));
  const core = results.filter(([name]) => !name.startsWith('provider:'));
  return (
    core.every(([, status]) => status === 'ok') &&
    (providers.length === 0 || providers.some(([, status]) => status === 'ok'))
  );
}

function withTimeout(work: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
