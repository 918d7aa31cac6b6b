import type { EntityManager } from '@mikro-orm/postgresql';

/** What the read model says a provider holds: the instances not destroyed, and their memory. */
export interface ProviderUsage {
  instances: number;
  memory_mb: number;
}

/**
 * Usage of each of `providers`, counted as domain/placement-rules.ts `placementMemory` counts one instance: a
 * service's memory_mb (or `defaultMemoryMb`) times its replicas, one default service for a source without
 * services. Failed instances are counted: their objects may still hold the host.
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
    `select i.provider_name, count(*)::int as instances,
            coalesce(sum((
              select coalesce(sum(
                (case when coalesce((s -> 'resources' ->> 'memory_mb')::numeric, 0) > 0
                      then (s -> 'resources' ->> 'memory_mb')::numeric else ? end)
                * greatest(coalesce((s -> 'resources' ->> 'replicas')::numeric, 1), 1)), ?)
                from jsonb_array_elements(
                  case when jsonb_typeof(i.services) = 'array' then i.services else '[]'::jsonb end) s
            )), 0)::bigint as memory_mb
       from instances i
      where i.provider_name in (${providers.map(() => '?').join(', ')}) and i.state <> 'destroyed'
      group by i.provider_name`,
    [defaultMemoryMb, defaultMemoryMb, ...providers],
  );
  for (const row of rows) {
    usage.set(row.provider_name, { instances: row.instances, memory_mb: Number(row.memory_mb) });
  }
  return usage;
}
