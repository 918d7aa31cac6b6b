import { Migration } from '@mikro-orm/migrations';

/** Every row's footprint from its services, as placementFootprint computes it (exported for its test). */
export const PLACEMENT_FOOTPRINT_BACKFILL = `
  update "instances" i set
    "placement_memory_mb" = f.memory_mb,
    "placement_unsized" = f.unsized
  from (
    select i2.id,
           coalesce(sum(case when coalesce((s -> 'resources' ->> 'memory_mb')::numeric, 0) > 0
                             then (s -> 'resources' ->> 'memory_mb')::numeric
                                  * greatest(coalesce((s -> 'resources' ->> 'replicas')::numeric, 1), 1)
                             else 0 end), 0)::int as memory_mb,
           case when count(s) = 0 then 1
                else coalesce(sum(case when coalesce((s -> 'resources' ->> 'memory_mb')::numeric, 0) > 0 then 0
                                       else greatest(coalesce((s -> 'resources' ->> 'replicas')::numeric, 1), 1)
                                  end), 0)::int
           end as unsized
      from "instances" i2
      left join lateral jsonb_array_elements(
        case when jsonb_typeof(i2.services) = 'array' then i2.services else '[]'::jsonb end) s on true
     group by i2.id
  ) f
  where f.id = i.id;`;

/**
 * Placement by capacity: why placement put an instance on its provider (a create that named none), and what the
 * instance asks of its host (domain/placement-rules.ts placementFootprint), so a provider's use is a plain sum.
 * Existing rows get their footprint from their services here, as the projection computes it for new writes.
 */
export class Migration20261202040000_placement extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      alter table "instances"
        add column "placement" text null,
        add column "placement_memory_mb" integer not null default 0,
        add column "placement_unsized" integer not null default 0;`);
    this.addSql(PLACEMENT_FOOTPRINT_BACKFILL);
  }

  override async down(): Promise<void> {
    this.addSql(`
      alter table "instances"
        drop column if exists "placement",
        drop column if exists "placement_memory_mb",
        drop column if exists "placement_unsized";`);
  }
}
