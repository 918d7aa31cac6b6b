import type { EntityManager } from '@mikro-orm/postgresql';

/** What the read model says a provider holds: the instances not destroyed, and their memory. */
export interface ProviderUsage {
  instances: number;
  memory_mb: number;
}

/**
 * Usage of each of `providers`, from each row's footprint (domain/placement-rules.ts placementFootprint, kept
 * on the row by the projection): the memory its services give, plus `defaultMemoryMb` for each replica that
 * gives none. Failed instances are counted: their objects may still hold the host.
 */
export async function fleetUsage(
  em: EntityManager,
  providers: readonly string[],
  defaultMemoryMb: number,
): Promise<Map<string, ProviderUsage>> {
  const usage = new Map<string, ProviderUsage>(
    providers.map((name) => [name, { instances: 0, memory_mb: 0 }]),
  );
  if (providers.length === 0) return usage;
  const rows: { provider_name: string; instances: number; memory_mb: string | number }[] = await em.execute(
    `select provider_name, count(*)::int as instances,
            (coalesce(sum(placement_memory_mb), 0) + ? * coalesce(sum(placement_unsized), 0))::bigint as memory_mb
       from instances
      where provider_name in (${providers.map(() => '?').join(', ')}) and state <> 'destroyed'
      group by provider_name`,
    [defaultMemoryMb, ...providers],
  );
  for (const row of rows) {
    usage.set(row.provider_name, { instances: row.instances, memory_mb: Number(row.memory_mb) });
  }
  return usage;
}
