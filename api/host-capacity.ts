import type { ProviderUsage } from '../db/fleet-usage.ts';
import type { InstanceStore } from '../db/instance-store.ts';
import { roomProblem } from '../domain/placement-rules.ts';
import type { CapacitySnapshot, HostCapacity } from '../providers/provider.ts';
import type { ProviderRegistry } from '../providers/registry.ts';
import type { Placement } from './instance-placement.ts';
import { RetryableError } from './problem.ts';

/** Room frees up only when an instance is deleted: a client that must create should look again in a minute. */
const FULL_RETRY_AFTER_SECONDS = 60;

export interface ProviderCapacity {
  provider: string;
  capacity?: HostCapacity;
  /** Why the capacity could not be counted (the host did not answer). */
  error?: string;
}

/** The capacity of every provider that reports one (Docker hosts), counting the instances admitted so far. */
export async function capacityReport(
  providers: ProviderRegistry,
  store: InstanceStore,
): Promise<ProviderCapacity[]> {
  const reporting = providers.names().filter((name) => providers.get(name).capacitySnapshot !== undefined);
  return Promise.all(
    reporting.map(async (provider): Promise<ProviderCapacity> => {
      try {
        const snapshot = await providers.get(provider).capacitySnapshot?.();
        if (!snapshot) return { provider };
        return { provider, capacity: snapshot.count(await store.admittedTo(provider, snapshot.taken_at)) };
      } catch (err) {
        return { provider, error: err instanceof Error ? err.message : String(err) };
      }
    }),
  );
}

/**
 * One look at the placement's host (shared with the creates asking at the same moment); undefined when its
 * provider has no known limit. A host that cannot be looked at is 503 provider_unavailable.
 */
export async function lookAtHost(placement: Placement): Promise<CapacitySnapshot | undefined> {
  const { provider, provider_name: name } = placement;
  if (!provider.capacitySnapshot) return undefined;
  try {
    return await provider.capacitySnapshot();
  } catch (err) {
    throw new RetryableError(
      'provider_unavailable',
      `provider ${name} is unavailable: its capacity could not be counted: ${err instanceof Error ? err.message : String(err)}`,
      5,
    );
  }
}

/**
 * Refuses a create the placement's host cannot take: 503 capacity_exhausted naming what is used up, with
 * Retry-After. `admitted` are the instances admitted to that provider that the snapshot may not show.
 */
export function requireRoom(placement: Placement, snapshot: CapacitySnapshot, admitted: string[]): void {
  const capacity = snapshot.count(admitted);
  if (capacity.instances.free > 0) return;
  const { networks, instances } = capacity;
  const why =
    networks.free === 0
      ? `all ${networks.total} subnets of its instance network pool are in use`
      : `it runs ${instances.used} instances, its maximum is ${instances.total}`;
  throw capacityExhausted(
    `provider ${placement.provider_name} (host ${capacity.host}) cannot take another instance: ${why}`,
  );
}

/**
 * Refuses a create its fleet provider has no room for (its `capacity` in the fleet file), counted with the
 * provider's admission locked: 503 capacity_exhausted naming what is used up, with Retry-After.
 */
export function requireFleetRoom(placement: Placement, usage: ProviderUsage, memoryMb: number): void {
  if (!placement.limits) return;
  const problem = roomProblem({ limits: placement.limits, used: usage }, memoryMb);
  if (problem)
    throw capacityExhausted(`provider ${placement.provider_name} cannot take the instance: ${problem}`);
}

/** 503 capacity_exhausted: `why`, what the caller can do, and when to look again. */
export function capacityExhausted(why: string): RetryableError {
  return new RetryableError(
    'capacity_exhausted',
    `${why}; delete an instance or ask the operator for more room`,
    FULL_RETRY_AFTER_SECONDS,
  );
}
