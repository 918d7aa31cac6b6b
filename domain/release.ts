import { TypeID } from 'typeid-js';
import type { DeploymentSource, ServiceSpec } from './instance.ts';
import type { Definition } from './sources/variables.ts';

/**
 * A release: what an instance was asked to run, as one immutable, numbered record (1, 2, 3 … per instance).
 * Every change of what runs makes one (create, a change of services, scale, rollback); the instance's
 * `current_release` names the one it runs or will run. Only its status moves: pending (recorded, to be applied
 * at the next start), deployed, or failed (with the reason).
 */
export const RELEASE_ID_PREFIX = 'rel';

export const RELEASE_STATUSES = ['pending', 'deployed', 'failed'] as const;
export type ReleaseStatus = (typeof RELEASE_STATUSES)[number];

/** What runs: secret variables are their store references, never values (as the workflow's input holds them). */
export interface ReleaseSpec {
  services: ServiceSpec[] | null;
  source?: DeploymentSource;
  variables?: Definition[];
  variable_values?: Record<string, unknown>;
}

export interface Release {
  id: string;
  instance_id: string;
  tenant_id: string;
  number: number;
  spec: ReleaseSpec;
  status: ReleaseStatus;
  /** Why the release failed to deploy. */
  error?: string;
  /** What made it: `create`, `update: services`, `scale`, `rollback to v3`. */
  description: string;
  /** The request that made it (the command's request id; a create's own). */
  request_id: string;
  /** `sub` of the caller who asked for it. */
  actor?: string;
  /** A rollback's release: the number of the release whose spec it re-applies. */
  rollback_of?: number;
  created_at: string;
}

/** How an instance names one of its releases: its number, or its rel_ id. */
export type ReleaseSelector = number | string;

/** A release id from a UUID: the workflow makes it from its deterministic uuid4(), the same on every replay. */
export function releaseIdFromUuid(uuid: string): string {
  return TypeID.fromUUID(RELEASE_ID_PREFIX, uuid).toString();
}

/** True for a well-formed `rel_` TypeID. */
export function isReleaseId(value: string): boolean {
  try {
    return TypeID.fromString(value).getType() === RELEASE_ID_PREFIX;
  } catch {
    return false;
  }
}
