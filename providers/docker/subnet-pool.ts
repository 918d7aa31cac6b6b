import {
  blockSize,
  type NetworkPoolSettings,
  numberToIpv4,
  parseIpv4Cidr,
} from '../../config/network-pool.ts';

export interface PoolSubnet {
  index: number;
  /** e.g. `10.210.0.32/27` */
  subnet: string;
  /** The subnet's first usable address, the bridge's own address. */
  gateway: string;
}

/** The operator's range as numbered subnets, and which of them the engine's networks already overlap. */
export class SubnetPool {
  private readonly step: number;

  constructor(readonly settings: NetworkPoolSettings) {
    this.step = blockSize(settings.subnetPrefix);
  }

  get size(): number {
    return this.settings.size;
  }

  subnet(index: number): PoolSubnet {
    const base = this.settings.base + index * this.step;
    return {
      index,
      subnet: `${numberToIpv4(base)}/${this.settings.subnetPrefix}`,
      gateway: numberToIpv4(base + 1),
    };
  }

  /** Indices of the pool's subnets that overlap `cidr` (any IPv4 network the engine has); none for IPv6. */
  overlapping(cidr: string): number[] {
    const block = parseIpv4Cidr(cidr);
    if (!block) return [];
    const start = block.base;
    const end = block.base + blockSize(block.prefix);
    const poolEnd = this.settings.base + this.size * this.step;
    const from = Math.max(start, this.settings.base);
    const to = Math.min(end, poolEnd);
    if (from >= to) return [];
    const first = Math.floor((from - this.settings.base) / this.step);
    const last = Math.ceil((to - this.settings.base) / this.step);
    return Array.from({ length: last - first }, (_, i) => first + i);
  }

  /**
   * A free subnet, chosen at random among the free ones so that workers allocating at the same moment rarely
   * pick the same one (when they do, the engine refuses the second and it picks again). Undefined when full.
   */
  pickFree(used: ReadonlySet<number>): PoolSubnet | undefined {
    if (used.size >= this.size) return undefined;
    const start = Math.floor(Math.random() * this.size);
    for (let i = 0; i < this.size; i++) {
      const index = (start + i) % this.size;
      if (!used.has(index)) return this.subnet(index);
    }
    return undefined;
  }
}
