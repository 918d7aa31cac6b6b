import {
  OpenAPIRegistry,
  OpenApiGeneratorV31,
  type ResponseConfig,
  type RouteConfig,
} from '@asteasolutions/zod-to-openapi';

import type { ZodType } from 'zod';
import { COMMAND_NAMES } from '../domain/commands.ts';
import { ERROR_STATUS } from '../domain/errors.ts';
import { ROLE_DESCRIPTIONS, ROUTE_ROLES } from './route-roles.ts';
import { registerBillingPaths } from './schemas/billing.ts';
import { registerDatacenterPaths } from './schemas/datacenters.ts';
import { registerEventPaths } from './schemas/events.ts';
import { execRequestSchema, execResultSchema } from './schemas/instance-exec.ts';
import {
  commandQuerySchema,
  createInstanceSchema,
  emptyBodySchema,
  eventsQuerySchema,
  idempotencyKeyHeader,
  ifMatchHeader,
  instanceIdParamsSchema,
  listInstancesQuerySchema,
  logStreamQuerySchema,
  logsQuerySchema,
  scaleInstanceSchema,
  stopInstanceSchema,
  suspendInstanceSchema,
  unsuspendInstanceSchema,
  updateInstanceSchema,
  waitForStateQuerySchema,
} from './schemas/instance-requests.ts';
import {
  capacityReportSchema,
  healthSchema,
  instanceEventListSchema,
  instanceListSchema,
  instanceSchema,
  logLineSchema,
  readinessSchema,
  resourceUsageSchema,
  streamTicketSchema,
} from './schemas/instance-responses.ts';
import { json, problemResponse } from './schemas/openapi-responses.ts';
import { registerRegistryCredentialPaths } from './schemas/registry-credentials.ts';
import { deployQuerySchema, registerReleasePaths, rollbackInstanceSchema } from './schemas/releases.ts';
import { registerWebhookPaths } from './schemas/webhooks.ts';
import { z } from './schemas/zod.ts';

export const API_VERSION = '1.0.0';

const PROBLEM_TEXT: Partial<Record<number, string>> = {
  400: 'Invalid request: the offending fields are named in `errors`',
  401: 'Missing, invalid or expired token',
  403: 'The caller lacks the role this operation needs',
  404: "No such instance in the caller's tenant (or no such route)",
  405: 'Method not allowed (see `Allow`)',
  408: 'The wait ended before the state was reached',
  409: 'The workflow refused the command (invalid_state, suspended), the slug is taken, or a request with the same Idempotency-Key is still running',
  412: 'If-Match does not name the current version',
  415: 'The body is not JSON',
  422: 'The Idempotency-Key was used with another request, or the provider cannot do this (not_supported)',
  429: 'Rate limited (per tenant, or too many commands in flight on one instance); see Retry-After',
  500: 'Unexpected error (logged)',
  502: 'The provider failed the command',
  503: 'Temporal or the provider is unavailable; see Retry-After',
};

/** problem+json responses for the given statuses (always 401, 429 and 500 on authenticated routes). */
function problems(...statuses: number[]): Record<number, ResponseConfig> {
  const all = new Set([...statuses, 500]);
  return Object.fromEntries(
    [...all].map((status) => [status, problemResponse(PROBLEM_TEXT[status] ?? 'Error')]),
  );
}

const AUTHENTICATED = [400, 401, 429];
const ETAG_HEADER = {
  ETag: { description: 'The instance version, for If-Match', schema: { type: 'string' as const } },
};
const commandHeaders = z.object({ 'idempotency-key': idempotencyKeyHeader, 'if-match': ifMatchHeader });
const idParams = instanceIdParamsSchema;

function commandRoute(
  name: string,
  summary: string,
  body: ZodType | undefined,
  extra: {
    operator?: boolean;
    query?: NonNullable<RouteConfig['request']>['query'];
    description?: string;
  } = {},
): RouteConfig {
  return {
    method: 'post',
    path: `/v1/instances/{id}/${name}`,
    operationId: `${name}Instance`,
    summary,
    ...(extra.description ? { description: extra.description } : {}),
    tags: ['commands'],
    request: {
      params: idParams,
      query: extra.query ?? commandQuerySchema,
      headers: commandHeaders,
      ...(body
        ? {
            body: {
              required: name === 'scale' || name === 'suspend' || name === 'rollback',
              content: { 'application/json': { schema: body } },
            },
          }
        : {}),
    },
    responses: {
      200: json(instanceSchema, 'With ?wait: the command completed', ETAG_HEADER),
      202: json(
        instanceSchema,
        'The workflow accepted the command; the instance as the read model has it',
        ETAG_HEADER,
      ),
      ...problems(...AUTHENTICATED, ...(extra.operator ? [403] : []), 404, 409, 412, 415, 422, 502, 503),
    },
  };
}

function buildRegistry(): OpenAPIRegistry {
  const registry = new OpenAPIRegistry();
  registry.registerComponent('securitySchemes', 'bearer', {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
    description:
      'HS256 (shared secret) or a key of the configured JWKS; claims sub, tenant_id, roles and exp (required); ' +
      'with a JWKS also iss and aud (required, the configured ones). Roles: `admin` (tenant) and `operator` ' +
      "(platform); each operation's `x-required-role` says which it needs.",
  });

  registry.registerPath({
    method: 'post',
    path: '/v1/instances',
    operationId: 'createInstance',
    summary: 'Create an instance (it is provisioned and started by its workflow)',
    description:
      'Before anything is written: the provider is resolved (datacenter_id → its provider and, when region is ' +
      'not given, its region; else provider_name; else the default), its health is checked, the source is ' +
      'validated against what the provider runs, and the variables are resolved and the templates rendered ' +
      'against {instance: {id, name}, tenant: {id}, region}. The instance keeps the source as submitted; the ' +
      'rendered form (with secret variables filled in from the secret store) exists only at provision time.',
    tags: ['instances'],
    request: {
      query: commandQuerySchema,
      headers: z.object({ 'idempotency-key': idempotencyKeyHeader }),
      body: { required: true, content: { 'application/json': { schema: createInstanceSchema } } },
    },
    responses: {
      201: json(instanceSchema, 'Created (state provisioning; with ?wait, once settled)', {
        ...ETAG_HEADER,
        Location: { description: 'The new instance', schema: { type: 'string' } },
      }),
      ...problems(...AUTHENTICATED, 409, 415, 422, 503),
      400: problemResponse(
        'Invalid request (fields named in `errors`): invalid_request, provider_not_found, datacenter_not_found, ' +
          'invalid_source, unsupported_source, invalid_definition, missing_required, invalid_value, cycle, render_failed',
      ),
      409: problemResponse(
        'The slug is taken (already_exists), the datacenter is not active (datacenter_unavailable), or a ' +
          'request with the same Idempotency-Key is still running',
      ),
      422: problemResponse(
        "A secret variable's secret.key is not a key of the caller's tenant (invalid_secret_key, field named in " +
          '`errors`), or the Idempotency-Key was used with another request (idempotency_key_reused)',
      ),
      503: problemResponse(
        'The provider is unavailable (provider_unavailable) or Temporal is, or the provider host is full ' +
          '(capacity_exhausted: nothing was written); see Retry-After',
      ),
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/instances',
    operationId: 'listInstances',
    summary: 'List instances, newest first, with filters and a keyset cursor',
    tags: ['instances'],
    request: { query: listInstancesQuerySchema },
    responses: {
      200: json(instanceListSchema, 'A page of instances'),
      ...problems(...AUTHENTICATED, 403),
      403: problemResponse('tenant_id was given by a caller without the operator role'),
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/instances/{id}',
    operationId: 'getInstance',
    summary: 'Get an instance',
    tags: ['instances'],
    request: { params: idParams, headers: z.object({ 'if-none-match': z.string().optional() }) },
    responses: {
      200: json(instanceSchema, 'The instance', ETAG_HEADER),
      304: { description: 'Not modified (If-None-Match named the current ETag)' },
      ...problems(...AUTHENTICATED, 404),
    },
  });
  registry.registerPath({
    method: 'patch',
    path: '/v1/instances/{id}',
    operationId: 'updateInstance',
    summary:
      'Rename, replace services, labels or lifecycle policies (null removes one) (the update command; waits for it unless ?wait=false)',
    description:
      'New services make a new release (GET /v1/instances/{id}/releases). On a running instance it is deployed at ' +
      'once; if it fails to provision or start, the instance goes back to the previous release and keeps serving, ' +
      'the release is marked failed and the update fails (unless ?rollback_on_failure=false: then the instance is ' +
      'left failed). On a stopped or failed instance it is deployed at the next start.',
    tags: ['instances'],
    request: {
      params: idParams,
      query: deployQuerySchema,
      headers: commandHeaders,
      body: { required: true, content: { 'application/json': { schema: updateInstanceSchema } } },
    },
    responses: {
      200: json(instanceSchema, 'Updated', ETAG_HEADER),
      202: json(
        instanceSchema,
        'Accepted, still being applied (?wait=false or the wait ran out)',
        ETAG_HEADER,
      ),
      ...problems(...AUTHENTICATED, 404, 409, 412, 415, 422, 502, 503),
    },
  });
  registry.registerPath({
    method: 'delete',
    path: '/v1/instances/{id}',
    operationId: 'deleteInstance',
    summary: 'Delete an instance (convergent: deleting a destroyed instance succeeds)',
    tags: ['instances'],
    request: { params: idParams, query: commandQuerySchema, headers: commandHeaders },
    responses: {
      202: json(instanceSchema, 'Accepted: the workflow deprovisions the instance', ETAG_HEADER),
      204: { description: 'With ?wait: the instance is destroyed' },
      ...problems(...AUTHENTICATED, 404, 409, 412, 415, 422, 502, 503),
    },
  });

  registry.registerPath(
    commandRoute('start', 'Start a stopped or failed instance', emptyBodySchema.optional()),
  );
  registry.registerPath({
    ...commandRoute('stop', 'Stop a running instance', stopInstanceSchema.optional()),
    description:
      "Each container gets `signal` (default: the container's own STOPSIGNAL, else SIGTERM) and `timeout` " +
      'seconds (default: the configured stop timeout) before it is killed. A provider that cannot send a chosen ' +
      'signal or apply a chosen timeout (Kubernetes: the pod spec decides) answers 422 not_supported, naming it.',
  });
  registry.registerPath({
    ...commandRoute('services/{service}/restart', 'Restart one service of a running instance', undefined),
    operationId: 'restartService',
    description:
      "Restarts that service's container only (stop with the configured timeout, then start); the instance stays " +
      'running and the workflow records `instance.service_restarted`. A provider that cannot (Kubernetes: the ' +
      'services share one pod) answers 422 not_supported, naming it. An unknown service is a 404.',
    request: {
      params: idParams.extend({ service: z.string().openapi({ description: 'A service of the instance.' }) }),
      query: commandQuerySchema,
      headers: commandHeaders,
    },
  });
  registry.registerPath({
    method: 'post',
    path: '/v1/instances/{id}/exec',
    operationId: 'execInstance',
    summary: 'Run a command in a service of a running instance',
    description:
      "Runs `command` (no shell) in the service's container as the container's own user, without a TTY, and " +
      'answers its exit code and output (each stream cut at 1 MiB, `*_truncated` then true). After `timeout` ' +
      'seconds (at most 60) the answer has `timed_out` and no exit code. Only a running instance (409 else); ' +
      'every exec is recorded as an `instance.exec` event with the caller (token `sub`), the command and its ' +
      'exit code, never its output. A provider without exec answers 422 not_supported.',
    tags: ['instances'],
    request: {
      params: idParams,
      body: { required: true, content: { 'application/json': { schema: execRequestSchema } } },
    },
    responses: {
      200: json(execResultSchema, 'The command ran (whatever its exit code)'),
      ...problems(...AUTHENTICATED, 404, 409, 415, 422, 502, 503),
    },
  });
  registry.registerPath(commandRoute('restart', 'Restart a running instance', emptyBodySchema.optional()));
  registry.registerPath(commandRoute('scale', 'Change the main service resources', scaleInstanceSchema));
  registry.registerPath(
    commandRoute(
      'suspend',
      "Suspend any tenant's instance (stop it; it refuses start, restart, scale); operator",
      suspendInstanceSchema,
      { operator: true },
    ),
  );
  registry.registerPath(
    commandRoute(
      'unsuspend',
      "Lift the suspension of any tenant's instance (optionally only one for `reason`); operator",
      unsuspendInstanceSchema.optional(),
      { operator: true },
    ),
  );

  registry.registerPath(
    commandRoute(
      'rollback',
      'Re-apply an earlier release as a new release ("rollback to v3")',
      rollbackInstanceSchema,
      {
        query: deployQuerySchema,
        description:
          'Accepted while the instance is running, stopped or failed. The release (a number or a rel_ id; 404 ' +
          'naming `release` when the instance has none such) has its spec re-applied as a new release: at once ' +
          'on a running instance (going back on failure, as for PATCH), else at the next start.',
      },
    ),
  );
  registerReleasePaths(registry);

  registry.registerPath({
    method: 'get',
    path: '/v1/instances/{id}/wait',
    operationId: 'waitForInstanceState',
    summary: 'Wait until the instance is in a state',
    tags: ['observation'],
    request: { params: idParams, query: waitForStateQuerySchema },
    responses: {
      200: json(instanceSchema, 'The state was reached', ETAG_HEADER),
      ...problems(...AUTHENTICATED, 404, 408, 409),
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/instances/{id}/events',
    operationId: 'listInstanceEvents',
    summary: 'Lifecycle events, oldest first, cursor-paged',
    tags: ['observation'],
    request: { params: idParams, query: eventsQuerySchema },
    responses: { 200: json(instanceEventListSchema, 'A page of events'), ...problems(...AUTHENTICATED, 404) },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/instances/{id}/logs',
    operationId: 'instanceLogs',
    summary: 'Log lines of one service as NDJSON (one LogLine per line)',
    tags: ['observation'],
    request: { params: idParams, query: logsQuerySchema },
    responses: {
      200: {
        description: 'NDJSON: one LogLine object per line; with follow=true the stream stays open',
        content: { 'application/x-ndjson': { schema: logLineSchema } },
      },
      ...problems(...AUTHENTICATED, 404, 503),
    },
  });
  registry.registerPath({
    method: 'post',
    path: '/v1/instances/{id}/logs/stream-ticket',
    operationId: 'issueLogStreamTicket',
    summary: 'A one-time ticket for the SSE log stream (for EventSource, which cannot send the header)',
    description:
      'The ticket opens GET /v1/instances/{id}/logs/stream?ticket=… once, for this instance only, within 30 s; ' +
      'a reconnecting client asks for a new one. Tokens are never accepted in a query string.',
    tags: ['observation'],
    request: {
      params: idParams,
      body: { required: false, content: { 'application/json': { schema: emptyBodySchema } } },
    },
    responses: { 201: json(streamTicketSchema, 'The ticket'), ...problems(...AUTHENTICATED, 404, 415) },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/instances/{id}/logs/stream',
    operationId: 'instanceLogStream',
    summary: 'Log lines as server-sent events (`event: log`, data a LogLine; `: ping` every 15 s)',
    tags: ['observation'],
    request: { params: idParams, query: logStreamQuerySchema },
    responses: {
      200: {
        description:
          'text/event-stream: `event: log` per line, `event: end` when the log ends, `event: error` on failure',
        content: { 'text/event-stream': { schema: { type: 'string' } } },
      },
      ...problems(...AUTHENTICATED, 404, 503),
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/instances/{id}/resources',
    operationId: 'instanceResources',
    summary: 'A usage sample summed over the instance (zero when nothing runs)',
    tags: ['observation'],
    request: { params: idParams },
    responses: { 200: json(resourceUsageSchema, 'Usage'), ...problems(...AUTHENTICATED, 404, 503) },
  });

  registerBillingPaths(registry);
  registerDatacenterPaths(registry);
  registry.registerPath({
    method: 'get',
    path: '/v1/admin/capacity',
    operationId: 'getCapacity',
    summary: 'What each provider host with a known limit can still take (operator)',
    tags: ['operations'],
    responses: {
      200: json(capacityReportSchema, 'Per provider'),
      ...problems(...AUTHENTICATED, 403),
    },
  });
  registerRegistryCredentialPaths(registry);
  registerEventPaths(registry, problems(...AUTHENTICATED, 403));
  registerWebhookPaths(registry);

  registry.registerPath({
    method: 'get',
    path: '/healthz',
    operationId: 'health',
    summary: 'Liveness',
    tags: ['operations'],
    security: [],
    responses: { 200: json(healthSchema, 'Alive') },
  });
  registry.registerPath({
    method: 'get',
    path: '/readyz',
    operationId: 'readiness',
    summary:
      'Readiness: PostgreSQL, Temporal and each provider, ok or down; ready with both and at least one provider (answers cached for 2 s)',
    tags: ['operations'],
    security: [],
    responses: { 200: json(readinessSchema, 'Ready'), 503: json(readinessSchema, 'Not ready') },
  });
  registry.registerPath({
    method: 'get',
    path: '/metrics',
    operationId: 'metrics',
    summary: 'Prometheus metrics',
    tags: ['operations'],
    security: [],
    responses: {
      200: {
        description: 'Prometheus text format',
        content: { 'text/plain': { schema: { type: 'string' } } },
      },
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/openapi.json',
    operationId: 'openapi',
    summary: 'This document',
    tags: ['operations'],
    security: [],
    responses: {
      200: { description: 'OpenAPI 3.1', content: { 'application/json': { schema: { type: 'object' } } } },
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/docs',
    operationId: 'docs',
    summary: 'This document in Swagger UI, with Try it out (paste a token under Authorize)',
    tags: ['operations'],
    security: [],
    responses: { 200: { description: 'HTML', content: { 'text/html': { schema: { type: 'string' } } } } },
  });
  return registry;
}

export type OpenApiDocument = ReturnType<OpenApiGeneratorV31['generateDocument']>;

const METHODS = ['get', 'put', 'post', 'patch', 'delete'] as const;

/**
 * Sets `x-required-role` on every /v1 operation, from ROUTE_ROLES, and says it in the description. A /v1
 * operation missing from the table, or an entry without an operation, is a programming error.
 */
function withRequiredRoles(document: OpenApiDocument): OpenApiDocument {
  const roles: Record<string, string> = ROUTE_ROLES;
  const seen = new Set<string>();
  for (const [path, item] of Object.entries(document.paths ?? {})) {
    if (!path.startsWith('/v1/')) continue;
    for (const method of METHODS) {
      const operation = item[method];
      if (!operation) continue;
      const key = `${method.toUpperCase()} ${path}`;
      const role = roles[key] as keyof typeof ROLE_DESCRIPTIONS | undefined;
      if (!role) throw new Error(`openapi: ${key} has no entry in ROUTE_ROLES`);
      seen.add(key);
      Object.assign(operation, { 'x-required-role': role });
      const needs = `Requires ${ROLE_DESCRIPTIONS[role]}.`;
      operation.description = operation.description ? `${needs} ${operation.description}` : needs;
    }
  }
  const unused = Object.keys(roles).filter((key) => !seen.has(key));
  if (unused.length > 0) throw new Error(`openapi: ROUTE_ROLES names no operation: ${unused.join(', ')}`);
  return document;
}

let cached: OpenApiDocument | undefined;

/** The OpenAPI 3.1 document of the API, generated from the same zod schemas the routes validate with. */
export function openApiDocument(): OpenApiDocument {
  cached ??= withRequiredRoles(generate());
  return cached;
}

function generate(): OpenApiDocument {
  return new OpenApiGeneratorV31(buildRegistry().definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'ctrlplane',
      version: API_VERSION,
      description:
        'Control plane for instances on Docker and Kubernetes. Every error is application/problem+json ' +
        `with a stable code (${Object.keys(ERROR_STATUS).join(', ')}). Commands: ${COMMAND_NAMES.join(', ')}.`,
    },
    security: [{ bearer: [] }],
    tags: [
      { name: 'instances', description: 'Create, read, update and delete' },
      {
        name: 'commands',
        description: 'Lifecycle commands, processed one at a time by the instance workflow',
      },
      { name: 'observation', description: 'Events, logs, usage, waiting for a state' },
      { name: 'releases', description: 'What each instance ran, release by release' },
      { name: 'billing', description: 'Billing accounts and the suspension sweep (operator)' },
      { name: 'datacenters', description: "The tenant's datacenters: provider, region and status (admin)" },
      {
        name: 'registry-credentials',
        description: "The tenant's own image registry credentials, used to pull its images (admin)",
      },
      { name: 'events', description: "The tenant's lifecycle events as one resumable stream (NDJSON, SSE)" },
      {
        name: 'webhooks',
        description: "Signed deliveries of the tenant's lifecycle events to its URLs (admin)",
      },
      {
        name: 'operations',
        description: 'Operational endpoints: unauthenticated ones, and host capacity (operator)',
      },
    ],
  });
}
