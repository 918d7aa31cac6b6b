import type { Endpoint, ServiceSpec, WorkloadKind } from '../domain/instance';
import type { InstanceState } from '../domain/instance-state';

/** The provider contract (reference-behaviour.md §5.1). Every call must be idempotent: activities retry. */

export interface ProvisionRequest {
  instance_id: string;
  tenant_id: string;
  name: string;
  kind: WorkloadKind;
  services: ServiceSpec[];
  labels?: Record<string, string>;
}

export interface ProvisionResult {
  provider_ref: string;
  service_refs?: Record<string, string>;
  endpoints: Endpoint[];
  metadata?: Record<string, string>;
}

export interface ServiceStatus {
  state: InstanceState;
  ready: boolean;
  restarts: number;
  provider_ref?: string;
  message?: string;
}

export interface InstanceStatus {
  state: InstanceState;
  ready: boolean;
  restarts: number;
  started_at?: string;
  message?: string;
  endpoints: Endpoint[];
  services?: Record<string, ServiceStatus>;
}

export interface ProviderInfo {
  name: string;
  version: string;
  region: string;
}

export interface HealthStatus {
  healthy: boolean;
  message: string;
  latency_ms: number;
  checked_at: string;
}

/** Passed to every call so a cancelled or timed-out activity stops its provider I/O too. */
export interface CallOptions {
  signal?: AbortSignal;
  /** Called while a long call makes progress (the activity heartbeats with it). */
  progress?: (detail: string) => void;
}

export interface Provider {
  info(): ProviderInfo;
  provision(req: ProvisionRequest, opts?: CallOptions): Promise<ProvisionResult>;
  /** Convergent: resources already gone is a success. */
  deprovision(instanceId: string, opts?: CallOptions): Promise<void>;
  start(instanceId: string, opts?: CallOptions): Promise<void>;
  stop(instanceId: string, opts?: CallOptions): Promise<void>;
  status(instanceId: string, opts?: CallOptions): Promise<InstanceStatus>;
  healthCheck(): Promise<HealthStatus>;
}

/**
 * Thrown by a provider for a failure no retry can fix (bad image, invalid spec). Activities turn it into a
 * non-retryable ApplicationFailure; every other error is retried.
 */
export class PermanentProviderError extends Error {
  override readonly name = 'PermanentProviderError';
  constructor(
    message: string,
    readonly code: 'invalid_spec' | 'image_not_found' = 'invalid_spec',
  ) {
    super(message);
  }
}
