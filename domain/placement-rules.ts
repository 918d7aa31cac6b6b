/**
 * Placement: which provider of the fleet a create that names none goes to. Pure rules on numbers the caller
 * gathers (the fleet's limits and what the read model says each provider holds), so they are tested alone.
 *
 * A provider is eligible when it runs the create's source, is available (its health check, when the create
 * tried it, passed), carries the region asked for (its `region` label), and has room: one more instance and the create's memory. Of the eligible, the one with the most free capacity
 * wins: the largest free share, the free share of a provider being the smaller of its free instances and free
 * memory shares; ties go to the provider with more free memory, then to the first name in alphabetical order.
 */

export interface PlacementCandidate {
  name: string;
  limits: { instances: number; memory_mb: number };
  used: { instances: number; memory_mb: number };
  labels: Readonly<Record<string, string>>;
  /** Whether the provider runs the create's source type. */
  runsSource: boolean;
  /** Why the provider cannot be used now (its health check failed for this create), if it cannot. */
  unavailable?: string;
}

export interface PlacementAsk {
  /** Memory the create's services ask for, as placement counts it. */
  memory_mb: number;
  /** The region the create asks for; undefined: any. */
  region?: string;
}

export type PlacementDecision =
  | { placed: true; provider_name: string; reason: string }
  | { placed: false; reason: string };

export function choosePlacement(
  candidates: readonly PlacementCandidate[],
  ask: PlacementAsk,
): PlacementDecision {
  if (candidates.length === 0) return { placed: false, reason: 'the fleet has no provider to place on' };
  const refusals: string[] = [];
  const eligible: { candidate: PlacementCandidate; share: number; freeMemory: number }[] = [];
  for (const candidate of candidates) {
    const refusal = whyNot(candidate, ask);
    if (refusal) {
      refusals.push(`${candidate.name}: ${refusal}`);
      continue;
    }
    const freeInstances = candidate.limits.instances - candidate.used.instances;
    const freeMemory = candidate.limits.memory_mb - candidate.used.memory_mb;
    const share = Math.min(
      freeInstances / candidate.limits.instances,
      freeMemory / candidate.limits.memory_mb,
    );
    eligible.push({ candidate, share, freeMemory });
  }
  eligible.sort(
    (a, b) =>
      b.share - a.share ||
      b.freeMemory - a.freeMemory ||
      (a.candidate.name < b.candidate.name ? -1 : a.candidate.name > b.candidate.name ? 1 : 0),
  );
  const best = eligible[0];
  if (!best) return { placed: false, reason: `no provider can take it (${refusals.join('; ')})` };
  const { candidate } = best;
  return {
    placed: true,
    provider_name: candidate.name,
    reason:
      `placed on ${candidate.name}, the eligible provider with the most free capacity: ` +
      `${candidate.limits.instances - candidate.used.instances} of ${candidate.limits.instances} instances and ` +
      `${candidate.limits.memory_mb - candidate.used.memory_mb} of ${candidate.limits.memory_mb} MiB free` +
      (eligible.length > 1 ? ` (of ${eligible.length} eligible)` : ''),
  };
}

/** Why `candidate` cannot take the create, or undefined when it can. */
function whyNot(candidate: PlacementCandidate, ask: PlacementAsk): string | undefined {
  if (!candidate.runsSource) return "it does not run the create's source";
  if (candidate.unavailable !== undefined) return `it is unavailable: ${candidate.unavailable}`;
  const region = candidate.labels.region;
  if (ask.region !== undefined && region !== ask.region) {
    return region === undefined ? `it has no region (asked: ${ask.region})` : `its region is ${region}`;
  }
  return roomProblem(candidate, ask.memory_mb);
}

/** Why the provider has no room for one more instance of `memoryMb`, or undefined when it has. */
export function roomProblem(
  candidate: Pick<PlacementCandidate, 'limits' | 'used'>,
  memoryMb: number,
): string | undefined {
  const { limits, used } = candidate;
  if (used.instances >= limits.instances) {
    return `it holds ${used.instances} instances, its limit is ${limits.instances}`;
  }
  if (used.memory_mb + memoryMb > limits.memory_mb) {
    return `${limits.memory_mb - used.memory_mb} of its ${limits.memory_mb} MiB are free, the create asks for ${memoryMb} MiB`;
  }
  return undefined;
}

type SizedServices = readonly { resources?: Partial<{ memory_mb: number; replicas: number }> }[] | null;

/**
 * What an instance asks of its host, as placement counts it, without the default filled in: the memory of the
 * services that give `memory_mb` (times their replicas), and how many replicas give none (each counts as the
 * default). A source without services (helm, manifests, Argo CD) is one unsized service. The read model keeps
 * both on the instance's row (db/fleet-usage.ts sums them).
 */
export function placementFootprint(services: SizedServices): { memory_mb: number; unsized: number } {
  if (!services || services.length === 0) return { memory_mb: 0, unsized: 1 };
  let memory = 0;
  let unsized = 0;
  for (const service of services) {
    const replicas = Math.max(service.resources?.replicas ?? 1, 1);
    const asked = service.resources?.memory_mb ?? 0;
    if (asked > 0) memory += asked * replicas;
    else unsized += replicas;
  }
  return { memory_mb: memory, unsized };
}

/** The memory placement counts for an instance: its footprint with `defaultMb` for each unsized replica. */
export function placementMemory(services: SizedServices, defaultMb: number): number {
  const { memory_mb, unsized } = placementFootprint(services);
  return memory_mb + unsized * defaultMb;
}
