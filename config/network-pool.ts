/**
 * The operator's pool of per-instance Docker networks: one private IPv4 range (CTRLPLANE_DOCKER_NETWORK_POOL)
 * carved into equal subnets (CTRLPLANE_DOCKER_NETWORK_PREFIX), each given explicitly to the engine when an
 * instance's network is made. Parsed and checked here; the allocation itself is providers/docker/.
 */

export interface NetworkPoolSettings {
  /** The range as written, e.g. `10.210.0.0/16`. */
  cidr: string;
  /** First address of the range, as an unsigned 32-bit number. */
  base: number;
  /** Prefix length of the range. */
  rangePrefix: number;
  /** Prefix length of each instance's subnet. */
  subnetPrefix: number;
  /** How many subnets the range holds. */
  size: number;
}

/**
 * The longest subnet prefix allowed: a /27 has 30 usable addresses, room for the gateway and the 20 services
 * an instance may have (domain/schemas/service-spec.ts) with some to spare for containers being replaced.
 */
export const MAX_SUBNET_PREFIX = 27;

const PRIVATE_RANGES: readonly (readonly [string, number])[] = [
  ['10.0.0.0', 8],
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
];

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** `a.b.c.d` → unsigned 32-bit number; undefined when it is not a dotted IPv4 address. */
export function ipv4ToNumber(address: string): number | undefined {
  const match = IPV4.exec(address);
  if (!match) return undefined;
  const octets = match.slice(1).map(Number);
  if (octets.some((o) => o > 255)) return undefined;
  return octets.reduce((n, o) => n * 256 + o, 0);
}

export function numberToIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** The number of addresses in a block of the given prefix length. */
export function blockSize(prefix: number): number {
  return 2 ** (32 - prefix);
}

/** `a.b.c.d/n` → its first address and prefix; undefined when malformed. Host bits must be zero. */
export function parseIpv4Cidr(cidr: string): { base: number; prefix: number } | undefined {
  const [address, prefixText, ...rest] = cidr.trim().split('/');
  if (rest.length > 0 || address === undefined || prefixText === undefined || !/^\d{1,2}$/.test(prefixText))
    return undefined;
  const base = ipv4ToNumber(address);
  const prefix = Number(prefixText);
  if (base === undefined || prefix > 32) return undefined;
  if (base % blockSize(prefix) !== 0) return undefined;
  return { base, prefix };
}

function within(base: number, prefix: number, outerBase: number, outerPrefix: number): boolean {
  return (
    prefix >= outerPrefix &&
    base >= outerBase &&
    base + blockSize(prefix) <= outerBase + blockSize(outerPrefix)
  );
}

/** The pool, or a message saying what is wrong with it (for the configuration error). */
export function parseNetworkPool(
  cidr: string,
  subnetPrefix: number,
): { pool: NetworkPoolSettings } | { problem: string; field: 'pool' | 'prefix' } {
  const range = parseIpv4Cidr(cidr);
  if (!range) {
    return { field: 'pool', problem: 'must be an IPv4 range such as 10.210.0.0/16, with its host bits zero' };
  }
  const isPrivate = PRIVATE_RANGES.some(([address, prefix]) =>
    within(range.base, range.prefix, ipv4ToNumber(address) ?? 0, prefix),
  );
  if (!isPrivate) {
    return {
      field: 'pool',
      problem: 'must lie inside a private range (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16)',
    };
  }
  if (!Number.isInteger(subnetPrefix) || subnetPrefix <= range.prefix || subnetPrefix > MAX_SUBNET_PREFIX) {
    return {
      field: 'prefix',
      problem: `must be an integer above the pool's /${range.prefix} and at most ${MAX_SUBNET_PREFIX}`,
    };
  }
  return {
    pool: {
      cidr: `${numberToIpv4(range.base)}/${range.prefix}`,
      base: range.base,
      rangePrefix: range.prefix,
      subnetPrefix,
      size: 2 ** (subnetPrefix - range.prefix),
    },
  };
}
