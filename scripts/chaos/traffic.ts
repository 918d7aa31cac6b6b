/**
 * The chaos run's clients: every request carries an Idempotency-Key, and one answered 5xx, 429, or not at all
 * (a timeout, a refused or cut connection) is sent again with the same key until it gets another answer. Every
 * attempt is logged, so the checks can hold each answer against what the workflows recorded.
 */
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { REPO_ROOT } from '../temporal-cli.ts';
import type { SeededRandom } from './seeded-random.ts';

export type ChaosCommand = 'create' | 'start' | 'stop' | 'restart' | 'scale' | 'update' | 'delete';

export interface Attempt {
  /** ms since the run started */
  at: number;
  ms: number;
  status?: number;
  code?: string;
  /** The Retry-After header of a 5xx or 429. */
  retryAfter?: string;
  /** Timeout or connection error: no answer. */
  error?: string;
}

export interface LoggedRequest {
  client: number;
  tenant: string;
  command: ChaosCommand;
  key: string;
  method: string;
  path: string;
  body?: unknown;
  /** The instance the command is for, or the one the create made. */
  instanceId?: string;
  attempts: Attempt[];
  /** The answer that ended the retries (not 5xx, 429 or a timeout); undefined if none came in time. */
  final?: { status: number; code?: string; body: unknown };
}

export interface Probe {
  at: number;
  ms: number;
  status?: number;
  retryAfter?: string;
  error?: string;
}

const REQUEST_TIMEOUT_MS = 30_000;

export class ChaosTraffic {
  readonly requests: LoggedRequest[] = [];
  readonly probes: Probe[] = [];
  readonly flood: Probe[] = [];
  inFlight = 0;

  constructor(
    private readonly baseUrl: string,
    private readonly tokens: ReadonlyMap<string, string>,
    private readonly t0: number,
    /** After this moment (performance.now()) no request is sent again: it stays unanswered. */
    public giveUpAt = Number.POSITIVE_INFINITY,
  ) {}

  now(): number {
    return performance.now() - this.t0;
  }

  private async attempt(
    tenant: string,
    method: string,
    path: string,
    body: unknown,
    headers: Record<string, string>,
  ): Promise<{ attempt: Attempt; body: unknown }> {
    const at = this.now();
    const started = performance.now();
    this.inFlight += 1;
    try {
      const res = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.tokens.get(tenant)}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...headers,
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        // not JSON
      }
      const code = (parsed as { code?: unknown } | undefined)?.code;
      const retryAfter = res.headers.get('retry-after') ?? undefined;
      return {
        attempt: {
          at,
          ms: performance.now() - started,
          status: res.status,
          ...(typeof code === 'string' ? { code } : {}),
          ...(retryAfter !== undefined ? { retryAfter } : {}),
        },
        body: parsed,
      };
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code;
      return {
        attempt: { at, ms: performance.now() - started, error: cause ?? (err as Error).name },
        body: undefined,
      };
    } finally {
      this.inFlight -= 1;
    }
  }

  /**
   * Sends until an answer that is not 5xx, 429, 409 request_in_progress or a timeout, with the same key each time.
   */
  async send(request: Omit<LoggedRequest, 'attempts' | 'final'>): Promise<LoggedRequest> {
    const logged: LoggedRequest = { ...request, attempts: [] };
    this.requests.push(logged);
    for (let n = 0; ; n++) {
      const { attempt, body } = await this.attempt(
        request.tenant,
        request.method,
        request.path,
        request.body,
        {
          'idempotency-key': request.key,
        },
      );
      logged.attempts.push(attempt);
      const status = attempt.status;
      // 409 request_in_progress: an earlier attempt with this key is still running; the API says to retry later.
      const inProgress = status === 409 && attempt.code === 'request_in_progress';
      if (status !== undefined && status < 500 && status !== 429 && !inProgress) {
        logged.final = { status, ...(attempt.code ? { code: attempt.code } : {}), body };
        return logged;
      }
      if (performance.now() > this.giveUpAt) return logged;
      const retryAfterS = Number(attempt.retryAfter ?? Number.NaN);
      const backoff = Number.isFinite(retryAfterS)
        ? retryAfterS * 1000
        : Math.min(5_000, 250 * 2 ** Math.min(n, 4));
      await new Promise((r) => setTimeout(r, backoff));
    }
  }

  /** One read of another tenant's instance, timed (the flood check compares these). */
  async probe(tenant: string, instanceId: string): Promise<void> {
    const { attempt } = await this.attempt(tenant, 'GET', `/v1/instances/${instanceId}`, undefined, {});
    this.probes.push(probeOf(attempt));
  }

  /** `perSecond` GETs a second from `tenant` for `ms`, from a process of its own (flood.ts). */
  async floodFrom(tenant: string, perSecond: number, ms: number): Promise<void> {
    const offset = this.now();
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'scripts/chaos/flood.ts', this.baseUrl, String(perSecond), String(ms)],
      {
        cwd: REPO_ROOT,
        env: { ...process.env, NODE_OPTIONS: '', CHAOS_FLOOD_TOKEN: this.tokens.get(tenant) ?? '' },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
    });
    await new Promise((resolve) => child.once('exit', resolve));
    const answers = JSON.parse(out.trim() || '[]') as Probe[];
    for (const answer of answers) this.flood.push({ ...answer, at: answer.at + offset });
  }
}

function probeOf(attempt: Attempt): Probe {
  return {
    at: attempt.at,
    ms: attempt.ms,
    ...(attempt.status !== undefined ? { status: attempt.status } : {}),
    ...(attempt.retryAfter !== undefined ? { retryAfter: attempt.retryAfter } : {}),
    ...(attempt.error !== undefined ? { error: attempt.error } : {}),
  };
}

/** What one chaos instance runs: busybox httpd, published on the loopback address, with a named volume. */
export function chaosService(name: string) {
  return {
    name: 'web',
    image: 'ctrlplane-test/busybox:1',
    command: ['/bin/sh', '-c', `echo ${name} > /tmp/index.html && exec httpd -f -p 80 -h /tmp`],
    ports: [{ container: 80 }],
    volumes: [{ name: 'data', mount_path: '/data' }],
  };
}

const COMMAND_WEIGHTS = { start: 3, stop: 3, restart: 2, scale: 2, update: 2, delete: 0.4 } as const;

/** The next random command for an instance: method, path and body. */
export function randomCommand(
  random: SeededRandom,
  instanceId: string,
  round: number,
): { command: ChaosCommand; method: string; path: string; body?: unknown } {
  const command = random.weighted(COMMAND_WEIGHTS);
  const path = `/v1/instances/${instanceId}`;
  switch (command) {
    case 'delete':
      return { command, method: 'DELETE', path };
    case 'scale':
      return { command, method: 'POST', path: `${path}/scale`, body: { cpu_millis: random.int(1, 8) * 100 } };
    case 'update':
      return {
        command,
        method: 'PATCH',
        path: `${path}?wait=false`,
        body: { labels: { round: String(round) } },
      };
    default:
      return { command, method: 'POST', path: `${path}/${command}` };
  }
}
