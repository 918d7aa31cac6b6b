import { performance } from 'node:perf_hooks';

/** Timing and reporting helpers of scripts/bench.ts. */

export interface Sample {
  label: string;
  /** Durations in milliseconds, one per timed iteration. */
  ms: number[];
}

export interface Figures {
  label: string;
  n: number;
  median: number;
  p95: number;
  mean: number;
  /** Sequential throughput: 1000 / mean. */
  opsPerSec: number;
}

/**
 * Runs `fn` `warmup` times untimed (i = -1, -2, …), then `iterations` times timed (i = 0, 1, …), one at a time.
 * `after` runs after every iteration, untimed (clean-up such as a delete).
 */
export async function measure(
  label: string,
  options: { warmup: number; iterations: number; signal?: AbortSignal },
  fn: (i: number) => Promise<void>,
  after?: (i: number) => Promise<void>,
): Promise<Sample> {
  const ms: number[] = [];
  for (let k = -options.warmup; k < options.iterations; k++) {
    options.signal?.throwIfAborted();
    const i = k < 0 ? -options.warmup - 1 - k : k;
    const started = performance.now();
    await fn(i);
    if (k >= 0) ms.push(performance.now() - started);
    await after?.(i);
  }
  return { label, ms };
}

/** The nearest-rank percentile of sorted values. */
function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] ?? Number.NaN;
}

export function figures(sample: Sample): Figures {
  const sorted = [...sample.ms].sort((a, b) => a - b);
  const n = sorted.length;
  const mid = Math.floor(n / 2);
  const median = n === 0 ? Number.NaN : n % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  const mean = n === 0 ? Number.NaN : sorted.reduce((a, b) => a + b, 0) / n;
  return { label: sample.label, n, median, p95: percentile(sorted, 95), mean, opsPerSec: 1000 / mean };
}

function pad(text: string, width: number, left = false): string {
  return left ? text.padEnd(width) : text.padStart(width);
}

const ms = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : '-');

/** A fixed-width table: label, n, median, p95, mean (ms), ops/s. */
export function figuresTable(rows: Figures[]): string {
  const width = Math.max(5, ...rows.map((r) => r.label.length));
  const head = `${pad('phase', width, true)}  ${pad('n', 4)}  ${pad('median ms', 10)}  ${pad('p95 ms', 10)}  ${pad('mean ms', 10)}  ${pad('ops/s', 8)}`;
  const lines = rows.map(
    (r) =>
      `${pad(r.label, width, true)}  ${pad(String(r.n), 4)}  ${pad(ms(r.median), 10)}  ${pad(ms(r.p95), 10)}  ${pad(ms(r.mean), 10)}  ${pad(Number.isFinite(r.opsPerSec) ? r.opsPerSec.toFixed(1) : '-', 8)}`,
  );
  return [head, '-'.repeat(head.length), ...lines].join('\n');
}

export interface Ratio {
  label: string;
  measured: Figures;
  baseline: Figures;
}

/** Each ratio as measured ÷ baseline, on the median and on the mean. */
export function ratioTable(ratios: Ratio[]): string {
  const width = Math.max(5, ...ratios.map((r) => r.label.length));
  const head = `${pad('ratio', width, true)}  ${pad('median ×', 9)}  ${pad('mean ×', 9)}  ${pad('Δ median ms', 12)}`;
  const lines = ratios.map(({ label, measured, baseline }) => {
    const byMedian = measured.median / baseline.median;
    const byMean = measured.mean / baseline.mean;
    return `${pad(label, width, true)}  ${pad(byMedian.toFixed(2), 9)}  ${pad(byMean.toFixed(2), 9)}  ${pad(ms(measured.median - baseline.median), 12)}`;
  });
  return [head, '-'.repeat(head.length), ...lines].join('\n');
}

export interface MemoryMark {
  label: string;
  rss: number;
  heapUsed: number;
}

export function memoryMark(label: string): MemoryMark {
  const { rss, heapUsed } = process.memoryUsage();
  return { label, rss, heapUsed };
}

const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
const signedMib = (bytes: number) => `${bytes >= 0 ? '+' : ''}${mib(bytes)}`;

/** Marks in pairs (before, after) per phase: RSS and heap used, and their change. */
export function memoryTable(phases: { phase: string; before: MemoryMark; after: MemoryMark }[]): string {
  const width = Math.max(5, ...phases.map((p) => p.phase.length));
  const head = `${pad('phase', width, true)}  ${pad('rss before', 11)}  ${pad('rss after', 10)}  ${pad('Δ rss', 8)}  ${pad('heap before', 12)}  ${pad('heap after', 11)}  ${pad('Δ heap', 8)}   (MiB)`;
  const lines = phases.map(
    ({ phase, before, after }) =>
      `${pad(phase, width, true)}  ${pad(mib(before.rss), 11)}  ${pad(mib(after.rss), 10)}  ${pad(signedMib(after.rss - before.rss), 8)}  ${pad(mib(before.heapUsed), 12)}  ${pad(mib(after.heapUsed), 11)}  ${pad(signedMib(after.heapUsed - before.heapUsed), 8)}`,
  );
  return [head, '-'.repeat(head.length), ...lines].join('\n');
}
