import { CtrlplaneError } from '../domain/errors.ts';

export const DEFAULT_WAIT_MS = 30_000;

const UNITS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

/** `500ms`, `30s`, `2m`, `1h` → milliseconds; undefined when it is not a duration. */
export function durationMs(value: string): number | undefined {
  const match = /^(\d{1,9})(ms|s|m|h)$/.exec(value);
  if (!match) return undefined;
  return Number(match[1]) * UNITS[match[2] as keyof typeof UNITS];
}

/** `?wait=true` → the default wait; `?wait=30s` / `500ms` / `2m` → that long (capped); absent or false → no wait. */
export function parseWait(value: unknown, maxMs: number): number | undefined {
  if (value === undefined || value === 'false') return undefined;
  if (value === 'true' || value === '') return Math.min(DEFAULT_WAIT_MS, maxMs);
  const ms = typeof value === 'string' && !value.endsWith('h') ? durationMs(value) : undefined;
  if (ms === undefined) {
    throw new CtrlplaneError('invalid_request', 'wait: must be true, false or a duration such as 30s', [
      { field: 'wait', message: 'must be true, false or a duration such as 30s' },
    ]);
  }
  return Math.min(ms, maxMs);
}
