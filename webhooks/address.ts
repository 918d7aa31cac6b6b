import { BlockList, isIP } from 'node:net';

/**
 * Addresses a webhook may not be sent to unless the operator allows private addresses: what reaches the
 * platform's own network rather than the tenant's receiver (loopback, private and shared ranges, link-local with
 * the cloud metadata service 169.254.169.254, unique-local with fd00:ec2::254, and every non-unicast range).
 */
const REFUSED_V4 = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  REFUSED_V4.addSubnet(net, prefix, 'ipv4');
}
// A list of its own: a BlockList also matches IPv4 addresses against IPv6 rules as if they were mapped.
const REFUSED_V6 = new BlockList();
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  // IPv4-mapped and NAT64 addresses reach IPv4 hosts, private ones included.
  ['::ffff:0:0', 96],
  ['64:ff9b::', 96],
  ['100::', 64],
  ['2001:db8::', 32],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const) {
  REFUSED_V6.addSubnet(net, prefix, 'ipv6');
}

/** Why a webhook may not be sent to `address` (an IP literal), or undefined when it may. */
export function refusedAddress(address: string): string | undefined {
  const family = isIP(address);
  if (family === 0) return `${address} is not an IP address`;
  return (family === 4 ? REFUSED_V4.check(address, 'ipv4') : REFUSED_V6.check(address, 'ipv6'))
    ? `${address} is a loopback, private, link-local or reserved address`
    : undefined;
}

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** How a host name is resolved (node:dns lookup with all: true; tests give their own). */
export type HostLookup = (host: string) => Promise<ResolvedAddress[]>;

/**
 * The addresses of the URL's host, each one allowed; an error naming the first refused one. Every address
 * is checked, not only the first: a name may resolve to a public and a private address at once.
 */
export async function allowedAddresses(
  url: URL,
  options: { allowPrivate: boolean; lookup: HostLookup },
): Promise<ResolvedAddress[]> {
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const literal = isIP(host);
  const addresses: ResolvedAddress[] =
    literal !== 0 ? [{ address: host, family: literal === 4 ? 4 : 6 }] : await options.lookup(host);
  if (addresses.length === 0) throw new RefusedAddressError(`${host} has no address`);
  if (!options.allowPrivate) {
    for (const { address } of addresses) {
      const refused = refusedAddress(address);
      if (refused) throw new RefusedAddressError(`${host} resolves to ${refused}`);
    }
  }
  return addresses;
}

/** The webhook's host is, or resolves to, an address it may not be sent to. */
export class RefusedAddressError extends Error {
  override readonly name = 'RefusedAddressError';
}
