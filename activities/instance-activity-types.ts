import type { DeploymentSource, Endpoint, Instance, ResourceSpec } from '../domain/instance.ts';
import type { InstanceState } from '../domain/instance-state.ts';
import type { Release, ReleaseSelector } from '../domain/release.ts';
import type { Definition, SecretBinding } from '../domain/sources/variables.ts';
import type { ProvisionRequest, ProvisionResult, StopOptions } from '../providers/provider.ts';

/** Input of every provider call: which provider, and which instance on it (and how it was deployed). */
export interface ProviderCall {
  provider_name: string;
  instance_id: string;
  /** The instance's source type: deprovision and status go to the engine that runs it. Absent = services. */
  source_type?: string;
  /**
   * The instance's secret variables, as references (never values): the activity resolves them in the tenant's
   * scope only to redact their values from what the provider reports. Absent = no secret variables.
   */
  secret_refs?: SecretRefs;
}

export interface SecretRefs {
  tenant_id: string;
  bindings: SecretBinding[];
}

/**
 * What provision needs to render and deploy the instance. Only references travel here: secret variables are
 * resolved inside the activity, so no secret value is ever written to the workflow's history.
 */
export interface ProvisionInput {
  provider_name: string;
  request: ProvisionRequest;
  /** The source as submitted, un-rendered; absent = the request's services. */
  source?: DeploymentSource;
  variables?: Definition[];
  variable_values?: Record<string, unknown>;
  region?: string;
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
  /** Releases this transition made or moved, written in its transaction. */
  releases?: Release[];
}

export interface ObservedStatus {
  state: InstanceState;
  message?: string;
}

/** What the instance workflow may ask of the outside world. Workflow code imports this file as types only. */
export interface InstanceActivities {
  provisionInstance(input: ProvisionInput): Promise<ProvisionResult>;
  /** Starts and reports the endpoints as they are now: published host ports can change on every start. */
  startInstance(input: ProviderCall): Promise<{ endpoints: Endpoint[] }>;
  /** `stop` absent: the provider's defaults (as before stop options existed). */
  stopInstance(input: ProviderCall & { stop?: StopOptions }): Promise<void>;
  /** Restarts one service's container; not_supported when the provider cannot. */
  restartService(input: ProviderCall & { service: string }): Promise<void>;
  /** The provider's own restart (Docker: restart the containers; Kubernetes: a rolling restart). */
  restartInstance(input: ProviderCall): Promise<{ endpoints: Endpoint[] }>;
  scaleInstance(input: ProviderCall & { resources: ResourceSpec }): Promise<void>;
  deprovisionInstance(input: ProviderCall): Promise<void>;
  /** The provider's view of the instance, for the drift check. */
  observeInstance(input: ProviderCall): Promise<ObservedStatus>;
  recordTransition(input: TransitionRecord): Promise<void>;
  /** Moves the instance's row to a new slug; fails non-retryably with already_exists when it is taken. */
  reserveSlug(input: { tenant_id: string; instance_id: string; slug: string }): Promise<void>;
  /** One of the instance's releases (for a rollback); fails non-retryably with not_found when it has none such. */
  loadRelease(input: { instance_id: string; release: ReleaseSelector }): Promise<Release>;
}
