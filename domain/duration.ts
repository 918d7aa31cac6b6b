/**
 * Durations of the billing settings (the sweep interval, a grace period): a whole number and a unit,
 * `30s`, `5m`, `72h`, `3d`. Pure code, shared by the worker and the API.
 */
export const DURATION_PATTERN = /^(\d{1,9})(s|m|h|d)$/;

const UNIT_SECONDS = { s: 1, m: 60, h: 3600, d: 86_400 } as const;

/** `72h` → 259200; undefined when `text` is not a duration. */
export function durationSeconds(text: string): number | undefined {
  const match = DURATION_PATTERN.exec(text);
  if (!match) return undefined;
  return Number(match[1]) * UNIT_SECONDS[match[2] as keyof typeof UNIT_SECONDS];
}

/** 259200 → `72h`: the largest of h, m, s that divides the value (days are written as hours). */
export function formatDuration(seconds: number): string {
  if (seconds > 0 && seconds % 3600 === 0) return `${seconds / 3600}h`;
  if (seconds > 0 && seconds % 60 === 0) return `${seconds / 60}m`;
  return `${seconds}s`;
}
