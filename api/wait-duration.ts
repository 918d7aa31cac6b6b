import { CtrlplaneError } from '../domain/errors';

export const DEFAULT_WAIT_MS = 30_000;

/** `?wait=true` → the default wait; `?wait=30s` / `500ms` / `2m` → that long (capped); absent or false → no wait. */
export function parseWait(value: unknown, maxMs: number): number | undefined {
  if (value === undefined || value === 'false') return undefined;
  if (value === 'true' || value === '') return Math.min(DEFAULT_WAIT_MS, maxMs);
  const match = typeof value === 'string' ? /^(\d{1,9})(ms|s|m)$/.exec(value) : null;
  if (!match) {
    throw new CtrlplaneError('invalid_request', 'wait: must be true, false or a duration such as 30s', [
      { field: 'wait', message: 'must be true, false or a duration such as 30s' },
    ]);
  }
  const unit = { ms: 1, s: 1000, m: 60_000 }[match[2] as 'ms' | 's' | 'm'];
  return Math.min(Number(match[1]) * unit, maxMs);
}
