import type Dockerode from 'dockerode';
import { PermanentProviderError } from '../provider.ts';
import { errorMessage, hasStatus, ignoreStatus } from './docker-errors.ts';
import { LABEL, type LabelContext, projectLabels } from './labels.ts';
import { networkName } from './naming.ts';
import type { SubnetPool } from './subnet-pool.ts';

type LogFn = (obj: Record<string, unknown>, msg: string) => void;

/** What the engine holds now: the pool subnets its networks overlap, and the instance networks it has. */
export interface NetworkUsage {
  /** Indices of pool subnets overlapped by any network on the engine (ours, another control plane's, by hand). */
  usedSubnets: Set<number>;
  /** Names of the ctrlplane instance networks on the engine (whichever pool or range they came from). */
  instanceNetworks: Set<string>;
}

/** How many times provision picks another subnet after the engine refused one that a racing create took. */
const MAX_ALLOCATION_ATTEMPTS = 16;

/**
 * One bridge network per instance, `cp-<id>-net`, on a subnet of the operator's pool given explicitly to the
 * engine. The engine is the allocator: its IPAM refuses a subnet overlapping any network it has, atomically, so
 * two workers (or two control planes) picking the same free subnet at once cannot both get it; the loser
 * picks again. Removing the network (deprovision) frees the subnet. Nothing is recorded elsewhere, so there is
 * nothing to reconcile when a network is removed by hand or an attempt dies between steps.
 */
export class ProjectNetworks {
  constructor(
    private readonly docker: Dockerode,
    private readonly pool: SubnetPool,
    private readonly log: { info: LogFn; warn: LogFn },
  ) {}

  get poolSize(): number {
    return this.pool.size;
  }

  /**
   * The instance's network id. An existing network of that name is adopted as it is (instances created before
   * the pool, on the engine's default pools, keep theirs). A full pool → PermanentProviderError
   * ('capacity_exhausted'): no retry would help until an instance is deleted.
   */
  async ensure(ctx: LabelContext, signal: AbortSignal | undefined): Promise<string> {
    const name = networkName(ctx.instanceId);
    const existing = await ignoreStatus(this.docker.getNetwork(name).inspect(), 404);
    if (existing) return existing.Id;

    const refused = new Set<number>();
    for (let attempt = 0; attempt < MAX_ALLOCATION_ATTEMPTS; attempt++) {
      const usage = await this.usage(signal);
      for (const index of refused) usage.usedSubnets.add(index);
      const subnet = this.pool.pickFree(usage.usedSubnets);
      if (!subnet) {
        throw new PermanentProviderError(
          `the Docker host is full: every subnet of the network pool ${this.pool.settings.cidr} ` +
            `(${this.pool.size} × /${this.pool.settings.subnetPrefix}) is in use; delete an instance or widen ` +
            'CTRLPLANE_DOCKER_NETWORK_POOL',
          'capacity_exhausted',
        );
      }
      try {
        const network = await this.docker.createNetwork({
          Name: name,
          Driver: 'bridge',
          CheckDuplicate: true,
          Labels: projectLabels(ctx),
          IPAM: { Driver: 'default', Config: [{ Subnet: subnet.subnet, Gateway: subnet.gateway }] },
          ...(signal ? { abortSignal: signal } : {}),
        });
        this.log.info(
          { instance_id: ctx.instanceId, network: name, subnet: subnet.subnet },
          'docker network created',
        );
        return network.id;
      } catch (err) {
        if (hasStatus(err, 409)) {
          // A concurrent attempt for this instance created it first.
          return (await this.docker.getNetwork(name).inspect()).Id;
        }
        if (!isPoolOverlap(err)) throw err;
        // Another create took this subnet between our look and our create: pick another.
        refused.add(subnet.index);
        this.log.info(
          { instance_id: ctx.instanceId, subnet: subnet.subnet, err: errorMessage(err) },
          'subnet taken meanwhile; picking another',
        );
      }
    }
    throw new Error(
      `could not allocate a subnet for ${name} in ${MAX_ALLOCATION_ATTEMPTS} attempts (creates racing for the last subnets)`,
    );
  }

  /** One listing of the engine's networks: which pool subnets are taken and which instance networks exist. */
  async usage(signal: AbortSignal | undefined): Promise<NetworkUsage> {
    const networks = await this.docker.listNetworks(signal ? { abortSignal: signal } : {});
    const usedSubnets = new Set<number>();
    const instanceNetworks = new Set<string>();
    for (const n of networks) {
      for (const config of n.IPAM?.Config ?? []) {
        if (config.Subnet) for (const index of this.pool.overlapping(config.Subnet)) usedSubnets.add(index);
      }
      if (n.Labels?.[LABEL.managed] === 'true' && n.Labels?.[LABEL.instance]) instanceNetworks.add(n.Name);
    }
    return { usedSubnets, instanceNetworks };
  }
}

/** The engine's answer to a subnet that overlaps one of its networks (403 "Pool overlaps with other one…"). */
function isPoolOverlap(err: unknown): boolean {
  return hasStatus(err, 403) && /overlap/i.test(errorMessage(err));
}
