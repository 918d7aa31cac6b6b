import { EntitySchema } from '@mikro-orm/core';

/**
 * The lifecycle event outbox: one row per transition (and per rejected command), written in the same
 * transaction as the read-model row. (instance_id, seq) is unique, so a retried write adds nothing.
 */
export interface InstanceEventRecord {
  id: string;
  instance_id: string;
  tenant_id: string;
  seq: number;
  type: string;
  payload: Record<string, unknown> | null;
  occurred_at: Date;
}

export const InstanceEventRecordSchema = new EntitySchema<InstanceEventRecord>({
  name: 'InstanceEventRecord',
  tableName: 'instance_events',
  properties: {
    id: { type: 'string', columnType: 'text', primary: true },
    instance_id: { type: 'string', columnType: 'text' },
    tenant_id: { type: 'string', columnType: 'text' },
    seq: { type: 'number', columnType: 'integer' },
    type: { type: 'string', columnType: 'text' },
    payload: { type: 'json', nullable: true },
    occurred_at: { type: 'Date', columnType: 'timestamptz(6)' },
  },
});
