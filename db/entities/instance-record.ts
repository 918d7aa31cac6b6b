import { EntitySchema } from '@mikro-orm/core';
import type { DeploymentSource, Endpoint, ServiceSpec, WorkloadKind } from '../../domain/instance.ts';
import type { InstanceState } from '../../domain/instance-state.ts';
import type {
  AutoDeletePolicy,
  AutoStopPolicy,
  NextAutoAction,
  SchedulePolicy,
} from '../../domain/lifecycle-policy.ts';

/**
 * The read model of one instance: what the API serves. Only the instance workflow writes it (through the
 * recordTransition activity), except the first row, which the API inserts to reserve the slug.
 * `seq` is the workflow's transition counter: a write with a lower or equal seq is ignored.
 */
export interface InstanceRecord {
  id: string;
  tenant_id: string;
  name: string;
  slug: string;
  datacenter_id: string | null;
  provider_name: string;
  placement: string | null;
  /** domain/placement-rules.ts placementFootprint of the services: what fleet capacity counts, summed cheaply. */
  placement_memory_mb: number;
  placement_unsized: number;
  provider_ref: string;
  service_refs: Record<string, string> | null;
  region: string;
  state: InstanceState;
  kind: WorkloadKind;
  services: ServiceSpec[] | null;
  source: DeploymentSource | null;
  endpoints: Endpoint[] | null;
  labels: Record<string, string> | null;
  current_release: string | null;
  suspended_at: Date | null;
  suspend_reason: string | null;
  error: string | null;
  auto_stop: AutoStopPolicy | null;
  auto_delete: AutoDeletePolicy | null;
  expires_at: Date | null;
  schedule: SchedulePolicy | null;
  next_auto_action: NextAutoAction | null;
  last_started_at: Date | null;
  stopped_at: Date | null;
  seq: number;
  created_at: Date;
  updated_at: Date;
}

export const InstanceRecordSchema = new EntitySchema<InstanceRecord>({
  name: 'InstanceRecord',
  tableName: 'instances',
  properties: {
    id: { type: 'string', columnType: 'text', primary: true },
    tenant_id: { type: 'string', columnType: 'text' },
    name: { type: 'string', columnType: 'text' },
    slug: { type: 'string', columnType: 'text' },
    datacenter_id: { type: 'string', columnType: 'text', nullable: true },
    provider_name: { type: 'string', columnType: 'text' },
    placement: { type: 'string', columnType: 'text', nullable: true },
    placement_memory_mb: { type: 'number', columnType: 'integer', default: 0 },
    placement_unsized: { type: 'number', columnType: 'integer', default: 0 },
    provider_ref: { type: 'string', columnType: 'text', default: '' },
    service_refs: { type: 'json', nullable: true },
    region: { type: 'string', columnType: 'text', default: '' },
    state: { type: 'string', columnType: 'text' },
    kind: { type: 'string', columnType: 'text' },
    services: { type: 'json', nullable: true },
    source: { type: 'json', nullable: true },
    endpoints: { type: 'json', nullable: true },
    labels: { type: 'json', nullable: true },
    current_release: { type: 'string', columnType: 'text', nullable: true },
    suspended_at: { type: 'Date', columnType: 'timestamptz', nullable: true },
    suspend_reason: { type: 'string', columnType: 'text', nullable: true },
    error: { type: 'string', columnType: 'text', nullable: true },
    auto_stop: { type: 'json', nullable: true },
    auto_delete: { type: 'json', nullable: true },
    expires_at: { type: 'Date', columnType: 'timestamptz', nullable: true },
    schedule: { type: 'json', nullable: true },
    next_auto_action: { type: 'json', nullable: true },
    last_started_at: { type: 'Date', columnType: 'timestamptz', nullable: true },
    stopped_at: { type: 'Date', columnType: 'timestamptz', nullable: true },
    seq: { type: 'number', columnType: 'integer' },
    created_at: { type: 'Date', columnType: 'timestamptz(6)' },
    updated_at: { type: 'Date', columnType: 'timestamptz(6)' },
  },
});
