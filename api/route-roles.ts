import type { RequiredRole } from './roles.ts';

/**
 * The role each /v1 route needs, keyed `METHOD /path` as in the OpenAPI document. The document's
 * `x-required-role` and the README's route table come from here; the routes enforce it (requireRole), and
 * test/api-roles.test.ts checks every entry against the running API.
 */
export const ROUTE_ROLES = {
  'POST /v1/instances': 'tenant',
  'GET /v1/instances': 'tenant',
  'GET /v1/instances/{id}': 'tenant',
  'PATCH /v1/instances/{id}': 'tenant',
  'DELETE /v1/instances/{id}': 'tenant',
  'POST /v1/instances/{id}/start': 'tenant',
  'POST /v1/instances/{id}/stop': 'tenant',
  'POST /v1/instances/{id}/restart': 'tenant',
  'POST /v1/instances/{id}/scale': 'tenant',
  'POST /v1/instances/{id}/services/{service}/restart': 'tenant',
  'POST /v1/instances/{id}/exec': 'tenant',
  'POST /v1/instances/{id}/suspend': 'operator',
  'POST /v1/instances/{id}/unsuspend': 'operator',
  'POST /v1/instances/{id}/rollback': 'tenant',
  'GET /v1/instances/{id}/releases': 'tenant',
  'GET /v1/instances/{id}/releases/{release}': 'tenant',
  'GET /v1/instances/{id}/wait': 'tenant',
  'GET /v1/instances/{id}/events': 'tenant',
  'GET /v1/instances/{id}/logs': 'tenant',
  'POST /v1/instances/{id}/logs/stream-ticket': 'tenant',
  'GET /v1/instances/{id}/logs/stream': 'tenant',
  'GET /v1/instances/{id}/resources': 'tenant',
  'GET /v1/datacenters': 'admin',
  'POST /v1/datacenters': 'admin',
  'GET /v1/datacenters/{id}': 'admin',
  'PATCH /v1/datacenters/{id}': 'admin',
  'GET /v1/registry-credentials': 'admin',
  'PUT /v1/registry-credentials/{registry}': 'admin',
  'DELETE /v1/registry-credentials/{registry}': 'admin',
  'GET /v1/events': 'tenant',
  'POST /v1/webhooks': 'admin',
  'GET /v1/webhooks': 'admin',
  'GET /v1/webhooks/{id}': 'admin',
  'PATCH /v1/webhooks/{id}': 'admin',
  'DELETE /v1/webhooks/{id}': 'admin',
  'POST /v1/webhooks/{id}/rotate-secret': 'admin',
  'GET /v1/webhooks/{id}/deliveries': 'admin',
  'GET /v1/admin/tenants/{tenantId}/billing': 'operator',
  'PUT /v1/admin/tenants/{tenantId}/billing': 'operator',
  'GET /v1/admin/billing/sweep': 'operator',
  'POST /v1/admin/billing/sweep': 'operator',
  'GET /v1/admin/capacity': 'operator',
} as const satisfies Record<string, RequiredRole>;

export type RouteKey = keyof typeof ROUTE_ROLES;

/** What a role means, as the OpenAPI document and the README say it. */
export const ROLE_DESCRIPTIONS: Record<RequiredRole, string> = {
  tenant: "any authenticated caller, acting in its own tenant (the token's tenant_id)",
  admin: 'the tenant role `admin`, acting in its own tenant',
  operator: 'the platform role `operator`, acting on any tenant',
};
