/** Kubernetes resource quantities (`250m`, `0.5`, `128Mi`, `1G`, `12345n`, `1e3`) as plain numbers. */

const SUFFIX: Record<string, number> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

const QUANTITY = /^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(n|u|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?)$/;

/** The quantity in base units (cores, bytes); undefined when it does not parse. */
export function parseQuantity(value: string | number | undefined | null): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  const match = QUANTITY.exec(value.trim());
  if (!match) return undefined;
  const [, number, exponent, suffix] = match;
  const base = Number(number);
  if (exponent) return base * 10 ** Number(exponent.slice(1));
  return base * (SUFFIX[suffix ?? ''] ?? 1);
}

/** CPU as millicores (`250m` → 250, `0.5` → 500, `12345678n` → 12.3…). */
export function cpuMillicores(value: string | number | undefined | null): number {
  const cores = parseQuantity(value);
  return cores === undefined ? 0 : cores * 1000;
}

export function bytesToMiB(bytes: number): number {
  return bytes / 2 ** 20;
}

export function memoryMiB(value: string | number | undefined | null): number {
  const bytes = parseQuantity(value);
  return bytes === undefined ? 0 : bytesToMiB(bytes);
}

export function cpuQuantity(millicores: number): string {
  return `${Math.round(millicores)}m`;
}

export function memoryQuantity(mb: number): string {
  return `${Math.round(mb)}Mi`;
}
