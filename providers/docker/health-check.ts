import type Dockerode from 'dockerode';
import type { HealthCheckSpec, ServiceSpec } from '../../domain/instance.ts';
import { PermanentProviderError } from '../provider.ts';

/** Defaults when the spec leaves a field 0 or absent (Docker's own, 30s, would make `ready` slow to come). */
export const DEFAULT_HEALTH_INTERVAL_NS = 10_000_000_000;
export const DEFAULT_HEALTH_TIMEOUT_NS = 5_000_000_000;
export const DEFAULT_HEALTH_RETRIES = 3;
/** Docker refuses intervals and timeouts below 1ms. */
const MIN_DURATION_NS = 1_000_000;

function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

function duration(service: string, field: string, value: unknown, fallback: number): number {
  if (value === undefined || value === null || value === 0) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < MIN_DURATION_NS) {
    throw new PermanentProviderError(
      `service ${service}: health_check.${field} must be a duration in nanoseconds of at least 1ms (got ${String(value)})`,
      'invalid_spec',
    );
  }
  return value;
}

/**
 * The Docker HEALTHCHECK for a service's `health_check`, run by `/bin/sh` in the container:
 * with a `path`, an HTTP GET of `http://127.0.0.1:<port><path>` with `wget` (busybox, alpine) or else `curl`;
 * without one, a TCP connect with `nc -z` or else a plain `nc` (busybox builds without `-z`).
 * Interval and timeout are Go durations in nanoseconds, which is also Docker's unit. Init services get none.
 */
export function dockerHealthcheck(service: ServiceSpec): Dockerode.HealthConfig | undefined {
  const spec: HealthCheckSpec | undefined = service.health_check ?? undefined;
  if (!spec) return undefined;
  const port = spec.port;
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new PermanentProviderError(
      `service ${service.name}: health_check.port ${String(port)} is not valid`,
      'invalid_spec',
    );
  }
  const retries = spec.retries ?? 0;
  if (!Number.isInteger(retries) || retries < 0) {
    throw new PermanentProviderError(
      `service ${service.name}: health_check.retries ${String(retries)} is not valid`,
      'invalid_spec',
    );
  }
  let test: string;
  if (spec.path) {
    if (/[\s\0]/.test(spec.path)) {
      throw new PermanentProviderError(
        `service ${service.name}: health_check.path must not contain spaces`,
        'invalid_spec',
      );
    }
    const path = spec.path.startsWith('/') ? spec.path : `/${spec.path}`;
    const url = shellQuote(`http://127.0.0.1:${port}${path}`);
    test = `wget -q -O /dev/null ${url} || curl -fsS -o /dev/null ${url}`;
  } else {
    test = `nc -z 127.0.0.1 ${port} 2>/dev/null || nc -w 2 127.0.0.1 ${port} </dev/null >/dev/null`;
  }
  return {
    Test: ['CMD-SHELL', test],
    Interval: duration(service.name, 'interval', spec.interval, DEFAULT_HEALTH_INTERVAL_NS),
    Timeout: duration(service.name, 'timeout', spec.timeout, DEFAULT_HEALTH_TIMEOUT_NS),
    Retries: retries > 0 ? retries : DEFAULT_HEALTH_RETRIES,
  };
}
