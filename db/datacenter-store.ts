import { UniqueConstraintViolationException } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { CtrlplaneError } from '../domain/errors.ts';
import { slugify } from '../domain/instance.ts';
import type { Orm } from './database.ts';
import {
  type DatacenterRecord,
  DatacenterRecordSchema,
  type DatacenterStatus,
  newDatacenterId,
} from './entities/datacenter.ts';

export interface NewDatacenter {
  tenant_id: string;
  name: string;
  provider_name: string;
  region: string;
  status: DatacenterStatus;
}

export interface DatacenterChanges {
  name?: string;
  provider_name?: string;
  region?: string;
  status?: DatacenterStatus;
}

export interface DatacenterPage {
  items: DatacenterRecord[];
  next_cursor?: string;
}

/** Datacenters in PostgreSQL; every read and write is scoped to a tenant. */
export class DatacenterStore {
  constructor(private readonly orm: Orm) {}

  private em(): EntityManager {
    return this.orm.em.fork();
  }

  async create(fields: NewDatacenter): Promise<DatacenterRecord> {
    const now = new Date();
    const record: DatacenterRecord = {
      id: newDatacenterId(),
      ...fields,
      slug: slugify(fields.name),
      created_at: now,
      updated_at: now,
    };
    await this.unique(record.slug, () => this.em().insert(DatacenterRecordSchema, record));
    return record;
  }

  async get(tenantId: string, id: string): Promise<DatacenterRecord | null> {
    return this.em().findOne(DatacenterRecordSchema, { id, tenant_id: tenantId });
  }

  /** Oldest first (TypeIDs sort by creation time); the cursor is the last id of the previous page. */
  async list(
    tenantId: string,
    query: { status?: DatacenterStatus; cursor?: string; limit: number },
  ): Promise<DatacenterPage> {
    const rows = await this.em().find(
      DatacenterRecordSchema,
      {
        tenant_id: tenantId,
        ...(query.status ? { status: query.status } : {}),
        ...(query.cursor ? { id: { $gt: query.cursor } } : {}),
      },
      { orderBy: { id: 'asc' }, limit: query.limit + 1 },
    );
    const items = rows.slice(0, query.limit);
    const last = items.at(-1);
    return { items, ...(rows.length > query.limit && last ? { next_cursor: last.id } : {}) };
  }

  /** Applies the changes in one statement; null when the tenant has no such datacenter. */
  async update(tenantId: string, id: string, changes: DatacenterChanges): Promise<DatacenterRecord | null> {
    const set: Partial<DatacenterRecord> = { ...changes, updated_at: new Date() };
    if (changes.name !== undefined) set.slug = slugify(changes.name);
    const em = this.em();
    const updated = await this.unique(set.slug ?? '', () =>
      em.nativeUpdate(DatacenterRecordSchema, { id, tenant_id: tenantId }, set),
    );
    if (updated === 0) return null;
    return em.findOne(DatacenterRecordSchema, { id, tenant_id: tenantId }, { refresh: true });
  }

  private async unique<T>(slug: string, write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } catch (err) {
      if (err instanceof UniqueConstraintViolationException) {
        throw new CtrlplaneError('already_exists', `a datacenter with slug ${slug} already exists`, [
          { field: 'name', message: `slug ${slug} is taken in this tenant` },
        ]);
      }
      throw err;
    }
  }
}
