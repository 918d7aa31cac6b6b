import type { HostCapacity } from '../providers/provider';
import type { ProviderRegistry } from '../providers/registry';
import type { Placement } from './instance-placement';
import type { InstanceStore } from './instance-store';
import { RetryableError } from './problem';

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
  const reporting = providers.names().filter((name) => providers.get(name).capacity !== undefined);
  return Promise.all(
    reporting.map(async (provider): Promise<ProviderCapacity> => {
      try {
        const capacity = await providers.get(provider).capacity?.(await store.admittedTo(provider));
        return capacity ? { provider, capacity } : { provider };
      } catch (err) {
        return { provider, error: err instanceof Error ? err.message : String(err) };
      }
    }),
  );
}

/**
 * Refuses a create the placement's host cannot take: 503 capacity_exhausted naming what is used up, with
 * Retry-After. `admitted` are the instances admitted to that provider so far (their networks may not exist
 * yet). A host that cannot be counted is 503 provider_unavailable.
 */
export async function requireCapacity(placement: Placement, admitted: string[]): Promise<void> {
  const { provider, provider_name: name } = placement;
  if (!provider.capacity) return;
  let capacity: HostCapacity;
  try {
    capacity = await provider.capacity(admitted);
  } catch (err) {
    throw new RetryableError(
      'provider_unavailable',
      `provider ${name} is unavailable: its capacity could not be counted: ${err instanceof Error ? err.message : String(err)}`,
      5,
    );
  }
  if (capacity.instances.free > 0) return;
  const { networks, instances } = capacity;
  const why =
    networks.free === 0
      ? `all ${networks.total} subnets of its instance network pool are in use`
      : `it runs ${instances.used} instances, its maximum is ${instances.total}`;
  throw new RetryableError(
    'capacity_exhausted',
    `provider ${name} (host ${capacity.host}) cannot take another instance: ${why}; ` +
      'delete an instance or ask the operator for more room',
    FULL_RETRY_AFTER_SECONDS,
  );
}
