import type { Endpoint, Instance } from '../domain/instance';
import type { ProvisionRequest, ProvisionResult } from '../providers/provider';

/** Input of every provider call: which provider, and which instance on it. */
export interface ProviderCall {
  provider_name: string;
  instance_id: string;
}

export interface LifecycleEvent {
  type: string;
  payload: Record<string, unknown>;
}

export interface TransitionRecord {
  instance: Instance;
  /** The workflow's transition counter; the read model ignores a write that is not newer. */
  seq: number;
  event: LifecycleEvent;
}

/** What the instance workflow may ask of the outside world. Workflow code imports this file as types only. */
export interface InstanceActivities {
  provisionInstance(input: { provider_name: string; request: ProvisionRequest }): Promise<ProvisionResult>;
  /** Starts and reports the endpoints as they are now: published host ports can change on every start. */
  startInstance(input: ProviderCall): Promise<{ endpoints: Endpoint[] }>;
  stopInstance(input: ProviderCall): Promise<void>;
  deprovisionInstance(input: ProviderCall): Promise<void>;
  recordTransition(input: TransitionRecord): Promise<void>;
}
