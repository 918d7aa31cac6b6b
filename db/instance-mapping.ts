import type { Instance } from '../domain/instance.ts';
import { placementFootprint } from '../domain/placement-rules.ts';
import type { InstanceRecord } from './entities/instance-record.ts';

/** The read-model row of an instance snapshot. */
export function instanceToRecord(instance: Instance, seq: number): InstanceRecord {
  const footprint = placementFootprint(instance.services);
  return {
    id: instance.id,
    tenant_id: instance.tenant_id,
    name: instance.name,
    slug: instance.slug,
    datacenter_id: instance.datacenter_id ?? null,
    provider_name: instance.provider_name,
    placement: instance.placement ?? null,
    placement_memory_mb: footprint.memory_mb,
    placement_unsized: footprint.unsized,
    provider_ref: instance.provider_ref,
    service_refs: instance.service_refs ?? null,
    region: instance.region,
    state: instance.state,
    kind: instance.kind,
    services: instance.services,
    source: instance.source ?? null,
    endpoints: instance.endpoints ?? null,
    labels: instance.labels ?? null,
    current_release: instance.current_release ?? null,
    suspended_at: instance.suspended_at ? new Date(instance.suspended_at) : null,
    suspend_reason: instance.suspend_reason ?? null,
    error: instance.error ?? null,
    auto_stop: instance.auto_stop ?? null,
    auto_delete: instance.auto_delete ?? null,
    expires_at: instance.expires_at ? new Date(instance.expires_at) : null,
    schedule: instance.schedule ?? null,
    next_auto_action: instance.next_auto_action ?? null,
    last_started_at: instance.last_started_at ? new Date(instance.last_started_at) : null,
    stopped_at: instance.stopped_at ? new Date(instance.stopped_at) : null,
    seq,
    created_at: new Date(instance.created_at),
    updated_at: new Date(instance.updated_at),
  };
}

/** The API's JSON shape of a read-model row (omitting what the Go library omits when empty). */
export function recordToInstance(row: InstanceRecord): Instance {
  const instance: Instance = {
    id: row.id,
    created_at: toIso(row.created_at),
    updated_at: toIso(row.updated_at),
    tenant_id: row.tenant_id,
    name: row.name,
    slug: row.slug,
    provider_name: row.provider_name,
    provider_ref: row.provider_ref,
    region: row.region,
    state: row.state,
    kind: row.kind,
    services: row.services && row.services.length > 0 ? row.services : null,
  };
  if (row.datacenter_id) instance.datacenter_id = row.datacenter_id;
  if (row.placement) instance.placement = row.placement;
  if (row.service_refs && Object.keys(row.service_refs).length > 0) instance.service_refs = row.service_refs;
  if (row.source) instance.source = row.source;
  if (row.endpoints && row.endpoints.length > 0) instance.endpoints = row.endpoints;
  if (row.labels && Object.keys(row.labels).length > 0) instance.labels = row.labels;
  if (row.current_release) instance.current_release = row.current_release;
  if (row.suspended_at) instance.suspended_at = toIso(row.suspended_at);
  if (row.suspend_reason) instance.suspend_reason = row.suspend_reason;
  if (row.error) instance.error = row.error;
  if (row.auto_stop) instance.auto_stop = row.auto_stop;
  if (row.auto_delete) instance.auto_delete = row.auto_delete;
  if (row.expires_at) instance.expires_at = toIso(row.expires_at);
  if (row.schedule) instance.schedule = row.schedule;
  if (row.next_auto_action) instance.next_auto_action = row.next_auto_action;
  if (row.last_started_at) instance.last_started_at = toIso(row.last_started_at);
  if (row.stopped_at) instance.stopped_at = toIso(row.stopped_at);
  return instance;
}

function toIso(value: Date | string): string {
  return (value instanceof Date ? value : new Date(value)).toISOString();
}
