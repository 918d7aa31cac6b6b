import { randomInt } from 'node:crypto';
import { type NetworkPoolSettings, parseNetworkPool } from '../../config/network-pool.ts';

/**
 * A tiny instance network pool of its own for one test file: `subnets` (a power of two) /27s at a random place
 * in 10.211.0.0/16, so files run at the same time on this engine (other worktrees, single-file runs) do not
 * share one. The default pool 10.210.0.0/16 is never used by these tests.
 */
export function testNetworkPool(subnets: 2 | 4): {
  env: { CTRLPLANE_DOCKER_NETWORK_POOL: string; CTRLPLANE_DOCKER_NETWORK_PREFIX: string };
  settings: NetworkPoolSettings;
} {
  const rangePrefix = 27 - Math.log2(subnets);
  const slots = 2 ** (rangePrefix - 16);
  const offset = randomInt(0, slots) * 2 ** (32 - rangePrefix);
  const cidr = `10.211.${Math.floor(offset / 256)}.${offset % 256}/${rangePrefix}`;
  const parsed = parseNetworkPool(cidr, 27);
  if (!('pool' in parsed)) throw new Error(parsed.problem);
  return {
    env: { CTRLPLANE_DOCKER_NETWORK_POOL: cidr, CTRLPLANE_DOCKER_NETWORK_PREFIX: '27' },
    settings: parsed.pool,
  };
}
