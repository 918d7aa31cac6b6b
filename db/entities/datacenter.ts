import { EntitySchema } from '@mikro-orm/core';
import { TypeID, typeid } from 'typeid-js';

export const DATACENTER_ID_PREFIX = 'dc';

export const DATACENTER_STATUSES = ['active', 'maintenance', 'draining', 'offline'] as const;
export type DatacenterStatus = (typeof DATACENTER_STATUSES)[number];

/**
 * A datacenter of a tenant: where the tenant's instances may be placed.
 * Creating an instance in it uses its provider (which overrides the request's provider_name) and, when the
 * request gives none, its region. Only an `active` datacenter takes new instances. `slug` (from the name) is
 * unique per tenant.
 */
export interface DatacenterRecord {
  id: string;
  tenant_id: string;
  name: string;
  slug: string;
  provider_name: string;
  region: string;
  status: DatacenterStatus;
  created_at: Date;
  updated_at: Date;
}

export const DatacenterRecordSchema = new EntitySchema<DatacenterRecord>({
  name: 'DatacenterRecord',
  tableName: 'datacenters',
  properties: {
    id: { type: 'string', columnType: 'text', primary: true },
    tenant_id: { type: 'string', columnType: 'text' },
    name: { type: 'string', columnType: 'text' },
    slug: { type: 'string', columnType: 'text' },
    provider_name: { type: 'string', columnType: 'text' },
    region: { type: 'string', columnType: 'text', default: '' },
    status: { type: 'string', columnType: 'text' },
    created_at: { type: 'Date', columnType: 'timestamptz(6)' },
    updated_at: { type: 'Date', columnType: 'timestamptz(6)' },
  },
});

export function newDatacenterId(): string {
  return typeid(DATACENTER_ID_PREFIX).toString();
}

/** True for a well-formed `dc_` TypeID; anything else can never name a datacenter. */
export function isDatacenterId(value: string): boolean {
  try {
    return TypeID.fromString(value).getType() === DATACENTER_ID_PREFIX;
  } catch {
    return false;
  }
}
