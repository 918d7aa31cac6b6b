import type { ProviderUsage } from '../db/fleet-usage.ts';
import { roomProblem } from '../domain/placement-rules.ts';
import type { Placement } from './instance-placement.ts';
import { RetryableError } from './problem.ts';

/** Room frees up only when an instance is deleted: a client that must create should look again in a minute. */
const FULL_RETRY_AFTER_SECONDS = 60;

/**
 * Refuses a create its fleet provider has no room for (its `capacity` in the fleet file), counted with the
 * provider's admission locked: 503 capacity_exhausted naming what is used up, with Retry-After.
 */
export function requireFleetRoom(placement: Placement, usage: ProviderUsage, memoryMb: number): void {
  if (!placement.limits) return;
  const problem = roomProblem({ limits: placement.limits, used: usage }, memoryMb);
  if (!problem) return;
  throw new RetryableError(
    'capacity_exhausted',
    `provider ${placement.provider_name} cannot take the instance: ${problem}; delete an instance or ask the operator for more room`,
    FULL_RETRY_AFTER_SECONDS,
  );
}
