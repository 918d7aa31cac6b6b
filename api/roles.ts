import type { Request } from 'express';
import { CtrlplaneError } from '../domain/errors.ts';
import { type Caller, callerOf } from './auth.ts';

/**
 * Two kinds of power, never mixed, both named in the token's `roles` claim:
 * - `admin`, a tenant role: manages what is the tenant's own (its datacenters), inside its own tenant only;
 * - `operator`, the platform's role: suspends and unsuspends any tenant's instance, reads and writes billing
 *   accounts, triggers the billing sweep, reads host capacity and lists any tenant's instances.
 * Neither implies the other: an operator token acts in its own `tenant_id` like any caller for tenant routes.
 */
export const TENANT_ADMIN_ROLE = 'admin';
export const OPERATOR_ROLE = 'operator';

export type Role = typeof TENANT_ADMIN_ROLE | typeof OPERATOR_ROLE;

/** What a route needs: any authenticated caller (acting in its own tenant), or one of the roles. */
export type RequiredRole = 'tenant' | Role;

export function hasRole(caller: Caller, role: Role): boolean {
  return caller.roles.includes(role);
}

/** The caller, if it holds `role`; else 403 naming the role. */
export function requireRole(req: Request, role: Role): Caller {
  const caller = callerOf(req);
  if (!hasRole(caller, role)) {
    throw new CtrlplaneError('forbidden', `this operation needs the ${role} role`);
  }
  return caller;
}
