import type { InstanceState } from './instance-state.ts';
import type { AutoDeletePolicy, AutoStopPolicy, NextAutoAction, SchedulePolicy } from './lifecycle-policy.ts';
import type { DeploymentSource } from './sources/deployment-source.ts';

/** JSON shapes of the Go library's public surface (the seed package doc). */

export type ServiceRole = 'main' | 'sidecar' | 'init';
export type WorkloadKind = 'deployment' | 'stateful_set';

export interface ResourceSpec {
  cpu_millis: number;
  memory_mb: number;
  disk_mb?: number;
  replicas: number;
  gpu?: number;
}

export interface PortSpec {
  container: number;
  host?: number;
  protocol?: string;
}

export interface VolumeSpec {
  name: string;
  mount_path: string;
  size_mb?: number;
  type?: string;
}

export interface HealthCheckSpec {
  path?: string;
  port: number;
  /** Go duration in nanoseconds, as the Go library serialises it. */
  interval?: number;
  timeout?: number;
  retries?: number;
}

export type ConfigFileFormat = 'json' | 'yaml' | 'env' | 'text';

export interface ConfigFileSpec {
  name: string;
  /** Absolute path of the file in the container; a path ending in '/' is a directory and `name` the file in it. */
  path: string;
  format?: ConfigFileFormat;
  /** The file's text, written as is. Non-string content is rendered in `format` (json, yaml or env). */
  content: unknown;
}

export interface SecretRef {
  key: string;
  type: 'env' | 'file' | 'registry' | 'tls';
}

export interface ServiceSpec {
  name: string;
  image: string;
  role?: ServiceRole | '';
  depends_on?: string[];
  resources: ResourceSpec;
  env?: Record<string, string>;
  ports?: PortSpec[];
  volumes?: VolumeSpec[];
  health_check?: HealthCheckSpec;
  command?: string[];
  args?: string[];
  annotations?: Record<string, string>;
  config_files?: ConfigFileSpec[];
  secrets?: SecretRef[];
}

export interface Endpoint {
  service_name?: string;
  url: string;
  port: number;
  protocol: string;
  public: boolean;
}

export type { DeploymentSource } from './sources/deployment-source.ts';

export interface Instance {
  id: string;
  created_at: string;
  updated_at: string;
  tenant_id: string;
  name: string;
  slug: string;
  datacenter_id?: string;
  provider_name: string;
  /** Why it is on that provider, when placement chose it (a create naming no provider or datacenter). */
  placement?: string;
  provider_ref: string;
  service_refs?: Record<string, string>;
  region: string;
  state: InstanceState;
  kind: WorkloadKind;
  services: ServiceSpec[] | null;
  source?: DeploymentSource;
  endpoints?: Endpoint[];
  labels?: Record<string, string>;
  current_release?: string;
  suspended_at?: string;
  suspend_reason?: string;
  /** Why the instance is `failed`; cleared on the next successful transition. */
  error?: string;
  /** Lifecycle policies (domain/lifecycle-policy.ts). */
  auto_stop?: AutoStopPolicy;
  auto_delete?: AutoDeletePolicy;
  expires_at?: string;
  schedule?: SchedulePolicy;
  /** What the policies will do next, and when; absent when nothing is due. */
  next_auto_action?: NextAutoAction;
  /** When the instance last entered running (auto_stop counts from it). */
  last_started_at?: string;
  /** When the instance last entered stopped (auto_delete counts from it). */
  stopped_at?: string;
}

export function mainService(services: readonly ServiceSpec[]): ServiceSpec | undefined {
  return services.find((s) => s.role === 'main' || s.role === undefined || s.role === '');
}

/** The Go slug rule: lowercase, spaces become dashes, nothing else changes. */
export function slugify(name: string): string {
  return name.toLowerCase().replaceAll(' ', '-');
}
