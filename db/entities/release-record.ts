import { EntitySchema } from '@mikro-orm/core';
import type { ReleaseSpec, ReleaseStatus } from '../../domain/release.ts';

/**
 * One release of an instance (domain/release.ts). Only the instance workflow writes it, through the read-model
 * projection, in the transaction of the transition that made or moved it; `status_seq` is that transition's
 * seq, so a retried or older write never moves the status back.
 */
export interface ReleaseRecord {
  id: string;
  instance_id: string;
  tenant_id: string;
  number: number;
  spec: ReleaseSpec;
  status: ReleaseStatus;
  error: string | null;
  description: string;
  request_id: string;
  actor: string | null;
  rollback_of: number | null;
  status_seq: number;
  created_at: Date;
}

export const ReleaseRecordSchema = new EntitySchema<ReleaseRecord>({
  name: 'ReleaseRecord',
  tableName: 'releases',
  properties: {
    id: { type: 'string', columnType: 'text', primary: true },
    instance_id: { type: 'string', columnType: 'text' },
    tenant_id: { type: 'string', columnType: 'text' },
    number: { type: 'number', columnType: 'integer' },
    spec: { type: 'json' },
    status: { type: 'string', columnType: 'text' },
    error: { type: 'string', columnType: 'text', nullable: true },
    description: { type: 'string', columnType: 'text' },
    request_id: { type: 'string', columnType: 'text' },
    actor: { type: 'string', columnType: 'text', nullable: true },
    rollback_of: { type: 'number', columnType: 'integer', nullable: true },
    status_seq: { type: 'number', columnType: 'integer' },
    created_at: { type: 'Date', columnType: 'timestamptz(6)' },
  },
});
