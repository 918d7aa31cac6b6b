import type { ServiceRole, ServiceSpec } from '../../domain/instance.ts';
import { projectName } from './naming.ts';

/** The `ctrlplane.*` labels the Docker provider puts on its networks and containers. */
export const LABEL = {
  managed: 'ctrlplane.managed',
  instance: 'ctrlplane.instance',
  project: 'ctrlplane.project',
  tenant: 'ctrlplane.tenant',
  service: 'ctrlplane.service',
  role: 'ctrlplane.role',
  specHash: 'ctrlplane.spec-hash',
  volume: 'ctrlplane.volume',
} as const;

export interface LabelContext {
  instanceId: string;
  tenantId?: string;
  /** The caller's labels (the instance's labels). */
  labels?: Record<string, string>;
}

/** A service's effective role: an empty or missing role means `main`. */
export function roleOf(service: Pick<ServiceSpec, 'role'>): ServiceRole {
  return service.role === undefined || service.role === '' ? 'main' : service.role;
}

/** The reserved project-level labels; they win over anything the caller supplies. */
function reservedProjectLabels(ctx: LabelContext): Record<string, string> {
  const labels: Record<string, string> = {
    [LABEL.managed]: 'true',
    [LABEL.instance]: ctx.instanceId,
    [LABEL.project]: projectName(ctx.instanceId),
  };
  if (ctx.tenantId) labels[LABEL.tenant] = ctx.tenantId;
  return labels;
}

/** Labels of the project network: the caller's labels, then the reserved project labels. */
export function projectLabels(ctx: LabelContext): Record<string, string> {
  return { ...ctx.labels, ...reservedProjectLabels(ctx) };
}

/**
 * Labels of a service's container, without the spec hash: the caller's labels, then the service's annotations
 * (annotations win), then the reserved labels (they always win).
 */
export function serviceLabels(ctx: LabelContext, service: ServiceSpec): Record<string, string> {
  return {
    ...ctx.labels,
    ...service.annotations,
    ...reservedProjectLabels(ctx),
    [LABEL.service]: service.name,
    [LABEL.role]: roleOf(service),
  };
}

/** The label filter that enumerates every member of an instance's project. */
export function projectFilter(instanceId: string): { label: string[] } {
  return { label: [`${LABEL.project}=${projectName(instanceId)}`] };
}
