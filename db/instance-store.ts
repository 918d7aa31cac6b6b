import { UniqueConstraintViolationException } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { CtrlplaneError } from '../domain/errors.ts';
import type { InstanceState } from '../domain/instance-state.ts';
import type { Orm } from './database.ts';
import { type InstanceRecord, InstanceRecordSchema } from './entities/instance-record.ts';
import { fleetUsage, type ProviderUsage } from './fleet-usage.ts';
import { admittedInstanceIds, lockHostAdmission } from './host-admission.ts';

/** A filtered page of a tenant's instances (the API validates each field before it gets here). */
export interface InstanceListQuery {
  state?: InstanceState;
  /** `key=value` each; all must match. */
  label?: string[];
  provider?: string;
  datacenter?: string;
  slug?: string;
  cursor?: string;
  limit: number;
}

export interface InstancePage {
  items: InstanceRecord[];
  next_cursor?: string;
  /** Every match, counted up to the store's total limit; `total_capped` when there are more. */
  total: number;
  total_capped?: true;
}

/** Matches counted exactly for `total` when none is configured: a count beyond it would cost more than the page. */
export const DEFAULT_TOTAL_LIMIT = 10_000;

/**
 * The API's access to the read model: tenant-scoped reads (getInAnyTenant, for the operator, is the one
 * exception), and the one insert that reserves a slug.
 */
/**
 * How a new row is admitted to its provider, with the provider's admission locked: `host` gets the instances
 * admitted since a look at the host (Docker's own count), `fleet` what the read model says the provider holds
 * against its fleet limits; either throws to refuse.
 */
export interface Admission {
  host?: { snapshotAt: Date; admit: (admitted: string[]) => void };
  fleet?: { defaultMemoryMb: number; admit: (usage: ProviderUsage) => void };
}

export class InstanceStore {
  constructor(
    private readonly orm: Orm,
    private readonly totalLimit = DEFAULT_TOTAL_LIMIT,
  ) {}

  private em(): EntityManager {
    return this.orm.em.fork();
  }

  /**
   * Inserts the instance row once `admission.admit` accepted it, with the provider's host admission locked:
   * it gets the instances admitted there that a look at the host taken at `admission.snapshotAt` may not show
   * (db/host-admission.ts) and throws to refuse; then nothing is written.
   */
  async insertNew(record: InstanceRecord, admission?: Admission): Promise<void> {
    try {
      if (!admission) {
        await this.em().insert(InstanceRecordSchema, record);
        return;
      }
      await this.em().transactional(async (tx) => {
        await lockHostAdmission(tx, record.provider_name);
        if (admission.host) {
          admission.host.admit(
            await admittedInstanceIds(tx, record.provider_name, admission.host.snapshotAt),
          );
        }
        if (admission.fleet) {
          const usage = await fleetUsage(tx, [record.provider_name], admission.fleet.defaultMemoryMb);
          admission.fleet.admit(usage.get(record.provider_name) ?? { instances: 0, memory_mb: 0 });
        }
        await tx.insert(InstanceRecordSchema, record);
      });
    } catch (err) {
      if (err instanceof UniqueConstraintViolationException) {
        throw new CtrlplaneError('already_exists', `an instance with slug ${record.slug} already exists`, [
          { field: 'name', message: `slug ${record.slug} is taken in this tenant` },
        ]);
      }
      throw err;
    }
  }

  /** What the read model says each of `providers` holds (db/fleet-usage.ts), without a lock. */
  async usageOf(providers: readonly string[], defaultMemoryMb: number): Promise<Map<string, ProviderUsage>> {
    return fleetUsage(this.em(), providers, defaultMemoryMb);
  }

  /** Undoes insertNew when the workflow could not be started, so a failed create leaves nothing behind. */
  async removeUnstarted(id: string): Promise<void> {
    await this.em().createQueryBuilder(InstanceRecordSchema).delete({ id, seq: 0 }).execute();
  }

  /** Instances admitted to a provider's host that a look taken at `snapshotAt` may not show (no lock). */
  async admittedTo(providerName: string, snapshotAt: Date): Promise<string[]> {
    return admittedInstanceIds(this.em(), providerName, snapshotAt);
  }

  async get(tenantId: string, id: string): Promise<InstanceRecord | null> {
    return this.em().findOne(InstanceRecordSchema, { id, tenant_id: tenantId });
  }

  /** The instance in whichever tenant holds it: only for the operator's routes. */
  async getInAnyTenant(id: string): Promise<InstanceRecord | null> {
    return this.em().findOne(InstanceRecordSchema, { id });
  }

  /** The live (not destroyed) instance holding `slug` in the tenant. */
  async findBySlug(tenantId: string, slug: string): Promise<InstanceRecord | null> {
    return this.em().findOne(InstanceRecordSchema, {
      tenant_id: tenantId,
      slug,
      state: { $ne: 'destroyed' },
    });
  }

  /**
   * Newest first with a keyset cursor on (created_at, id), so pages never repeat or skip rows while others
   * are created. Destroyed tombstones are listed only when asked for with state=destroyed.
   */
  async list(tenantId: string, query: InstanceListQuery): Promise<InstancePage> {
    const em = this.em();
    const filtered = () => {
      const qb = em.createQueryBuilder(InstanceRecordSchema, 'i').where({ tenant_id: tenantId });
      if (query.state) qb.andWhere({ state: query.state });
      else qb.andWhere({ state: { $ne: 'destroyed' } });
      if (query.provider) qb.andWhere({ provider_name: query.provider });
      if (query.datacenter) qb.andWhere({ datacenter_id: query.datacenter });
      if (query.slug) qb.andWhere({ slug: query.slug });
      for (const label of query.label ?? []) {
        const at = label.indexOf('=');
        qb.andWhere('i.labels @> ?::jsonb', [JSON.stringify({ [label.slice(0, at)]: label.slice(at + 1) })]);
      }
      return qb;
    };
    const page = filtered();
    if (query.cursor) {
      const { createdAt, id } = decodeCursor(query.cursor);
      // The cursor row's own created_at (full precision) when it still exists; the encoded one otherwise.
      page.andWhere(
        '(i.created_at, i.id) < (coalesce((select c.created_at from instances c where c.id = ? and c.tenant_id = ?), ?::timestamptz), ?)',
        [id, tenantId, createdAt.toISOString(), id],
      );
    }
    const [rows, total] = await Promise.all([
      // Plain rows, not managed entities: a page is only read (no identity map, no change tracking).
      page
        .orderBy({ created_at: 'desc', id: 'desc' })
        .limit(query.limit + 1)
        .execute<InstanceRecord[]>('all'),
      this.countUpToLimit(
        em,
        filtered()
          .select('i.id')
          .limit(this.totalLimit + 1),
      ),
    ]);
    const items = rows.slice(0, query.limit);
    const last = items.at(-1);
    return {
      items,
      total: Math.min(total, this.totalLimit),
      ...(total > this.totalLimit ? { total_capped: true as const } : {}),
      ...(rows.length > query.limit && last ? { next_cursor: encodeCursor(last) } : {}),
    };
  }

  /** count(*) over at most limit + 1 matches: the cost of `total` stays bounded however big the tenant. */
  private async countUpToLimit(
    em: EntityManager,
    matches: { getQuery(): string; getParams(): readonly unknown[] },
  ): Promise<number> {
    const [row] = await em
      .getConnection()
      .execute<{ n: string }[]>(`select count(*) as n from (${matches.getQuery()}) as matches`, [
        ...matches.getParams(),
      ]);
    return Number(row?.n ?? 0);
  }

  async ping(): Promise<void> {
    await this.em().getConnection().execute('select 1');
  }
}

function encodeCursor(row: InstanceRecord): string {
  return Buffer.from(JSON.stringify([new Date(row.created_at).toISOString(), row.id])).toString('base64url');
}

function decodeCursor(cursor: string): { createdAt: Date; id: string } {
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown[];
    const date = new Date(String(createdAt));
    const year = date.getUTCFullYear();
    if (
      typeof id !== 'string' ||
      id.length > 64 ||
      Number.isNaN(date.getTime()) ||
      year < 1970 ||
      year > 9999
    ) {
      throw new Error('bad cursor');
    }
    return { createdAt: date, id };
  } catch {
    throw new CtrlplaneError('invalid_request', 'cursor: is not a cursor this API returned', [
      { field: 'cursor', message: 'is not a cursor this API returned' },
    ]);
  }
}
