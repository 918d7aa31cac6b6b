import { EntitySchema } from '@mikro-orm/core';

export const BILLING_STATUSES = ['active', 'past_due'] as const;
export type BillingStatus = (typeof BILLING_STATUSES)[number];

/**
 * A tenant's billing standing, as the billing system last reported it through the admin API. The billing
 * sweep suspends the instances of a tenant `past_due` for longer than its grace period, and lifts those
 * suspensions once the tenant is `active` again. `past_due_since` is set exactly while the status is past_due.
 */
export interface BillingAccountRecord {
  tenant_id: string;
  status: BillingStatus;
  past_due_since: Date | null;
  grace_period_seconds: number;
  updated_at: Date;
}

export const BillingAccountRecordSchema = new EntitySchema<BillingAccountRecord>({
  name: 'BillingAccountRecord',
  tableName: 'billing_accounts',
  properties: {
    tenant_id: { type: 'string', columnType: 'text', primary: true },
    status: { type: 'string', columnType: 'text' },
    past_due_since: { type: 'Date', columnType: 'timestamptz(6)', nullable: true },
    grace_period_seconds: { type: 'number', columnType: 'integer' },
    updated_at: { type: 'Date', columnType: 'timestamptz(6)' },
  },
});
