import { INSTANCE_STATES } from '../../domain/instance-state.ts';
import { deploymentSourceSchema, variablesSchema, variableValuesSchema } from './deployment-source.ts';
import { servicesSchema } from './service-spec.ts';
import { z } from './zod.ts';

/**
 * One schema per request: each validates its input in the route and documents it in /openapi.json.
 * Bodies are strict objects (an unknown field is a 400 naming it); query strings are strict too.
 */

const LABEL_KEY = /^([a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?\/)?[a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?$/;

const MAX_LABELS = 64;

export const labelsSchema = z
  .record(
    z
      .string()
      .max(253)
      .regex(LABEL_KEY, 'must be a label key: letters, digits, "-", "_", "." and an optional prefix/'),
    z.string().max(253),
  )
  .refine((labels) => Object.keys(labels).length <= MAX_LABELS, `at most ${MAX_LABELS} labels`)
  .meta({ id: 'Labels', description: 'Labels; a PATCH replaces the whole map ({} clears it).' });

const nameSchema = z
  .string()
  .trim()
  .min(1, 'is required')
  .max(200)
  .refine((s) => !/\p{Cc}/u.test(s), 'must not contain control characters');

/** POST /v1/instances: the seed doc's CreateRequest. */
export const createInstanceSchema = z
  .strictObject({
    name: nameSchema,
    datacenter_id: z
      .string()
      .max(64)
      .optional()
      .openapi({
        description:
          "A datacenter of the caller's tenant (dc_ TypeID): its provider_name overrides provider_name, and its " +
          'region is used when region is not given. It must be active.',
      }),
    provider_name: z
      .string()
      .min(1)
      .max(64)
      .optional()
      .openapi({ description: 'A registered provider (default: the configured default provider)' }),
    region: z.string().max(64).optional().openapi({ description: 'Also `{{ .region }}` in templates' }),
    kind: z.enum(['deployment', 'stateful_set']).optional(),
    services: servicesSchema
      .optional()
      .openapi({ description: 'Shorthand for source {type: services, services}' }),
    labels: labelsSchema.optional(),
    source: deploymentSourceSchema.optional(),
    variables: variablesSchema.optional(),
    variable_values: variableValuesSchema.optional(),
  })
  .superRefine((req, ctx) => {
    if (!req.source && !req.services) {
      ctx.addIssue({ code: 'custom', path: ['services'], message: 'a source or services is required' });
    }
    if (req.source && req.services) {
      ctx.addIssue({
        code: 'custom',
        path: ['services'],
        message: 'give either source or services, not both',
      });
    }
  })
  .meta({ id: 'CreateRequest' });

export type CreateInstanceRequest = z.infer<typeof createInstanceSchema>;

/** PATCH /v1/instances/{id}: the seed doc's UpdateRequest; each field present replaces the stored one. */
export const updateInstanceSchema = z
  .strictObject({
    name: nameSchema.optional(),
    services: servicesSchema.optional(),
    labels: labelsSchema.optional(),
  })
  .superRefine((req, ctx) => {
    if (req.name === undefined && req.services === undefined && req.labels === undefined) {
      ctx.addIssue({ code: 'custom', path: [], message: 'give at least one of name, services, labels' });
    }
  })
  .meta({ id: 'UpdateRequest' });

export type UpdateInstanceRequest = z.infer<typeof updateInstanceSchema>;

/** POST /v1/instances/{id}/scale: the seed doc's ScaleRequest (main service resources). */
export const scaleInstanceSchema = z
  .strictObject({
    cpu_millis: z.number().int().min(0).max(1_000_000).optional(),
    memory_mb: z.number().int().min(0).max(16_777_216).optional(),
    replicas: z.number().int().min(1).max(1000).optional(),
  })
  .superRefine((req, ctx) => {
    if (req.cpu_millis === undefined && req.memory_mb === undefined && req.replicas === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: [],
        message: 'give at least one of cpu_millis, memory_mb, replicas',
      });
    }
  })
  .meta({ id: 'ScaleRequest' });

const reasonSchema = z
  .string()
  .trim()
  .min(1, 'is required')
  .max(200)
  .refine((s) => !/\p{Cc}/u.test(s), 'must not contain control characters');

/** POST /v1/instances/{id}/suspend (operator role, any tenant's instance). */
export const suspendInstanceSchema = z.strictObject({ reason: reasonSchema }).meta({ id: 'SuspendRequest' });

/** POST /v1/instances/{id}/unsuspend (operator role): with a reason, lifts only a suspension for that reason. */
export const unsuspendInstanceSchema = z
  .strictObject({ reason: reasonSchema.optional() })
  .meta({ id: 'UnsuspendRequest' });

/** start, stop, restart and delete take no body; an empty object is accepted. */
export const emptyBodySchema = z.strictObject({}).meta({ id: 'EmptyRequest' });

const singleOrMany = z
  .union([z.string(), z.array(z.string())])
  .transform((v) => (Array.isArray(v) ? v : [v]));

/** GET /v1/instances query: the seed doc's ListOptions, with repeatable labels and a keyset cursor. */
export const listInstancesQuerySchema = z.strictObject({
  state: z.enum(INSTANCE_STATES).optional().openapi({
    description: 'Only instances in this state (destroyed ones are listed only when asked for).',
  }),
  label: singleOrMany
    .pipe(
      z
        .array(
          z
            .string()
            .max(600)
            .regex(/^[^=]+=.*$/, 'must be key=value'),
        )
        .max(20),
    )
    .optional()
    .openapi({
      description: '`key=value`; repeat it to require several labels (all must match).',
      param: { style: 'form', explode: true },
    }),
  provider: z.string().min(1).max(64).optional().openapi({ description: 'provider_name' }),
  datacenter: z.string().min(1).max(64).optional().openapi({ description: 'datacenter_id' }),
  slug: z.string().min(1).max(300).optional().openapi({ description: 'The instance with this slug.' }),
  cursor: z.string().max(512).optional().openapi({ description: 'next_cursor of the previous page.' }),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  tenant_id: z.string().min(1).max(128).optional().openapi({
    description: "Operator role only: list this tenant's instances instead of the caller's own.",
  }),
});

export type ListInstancesQuery = z.infer<typeof listInstancesQuerySchema>;

const DURATION = /^\d{1,9}(ms|s|m)$/;

const waitParam = z
  .string()
  .regex(/^(true|false|\d{1,9}(ms|s|m))$/, 'must be true, false or a duration such as 30s')
  .optional()
  .openapi({
    description:
      'Wait for the command to finish: `true` (30 s) or a duration (`500ms`, `30s`, `2m`; capped by the server).',
  });

/** `?wait=` on create and on every command. */
export const commandQuerySchema = z.strictObject({ wait: waitParam });

/** GET /v1/instances/{id}/wait */
export const waitForStateQuerySchema = z.strictObject({
  state: z.enum(INSTANCE_STATES).openapi({ description: 'The state to wait for.' }),
  timeout: z
    .string()
    .regex(DURATION, 'must be a duration such as 30s')
    .optional()
    .openapi({ description: 'How long to wait (default 30s; capped by the server).' }),
});

/** GET /v1/instances/{id}/events */
export const eventsQuerySchema = z.strictObject({
  cursor: z.string().max(64).optional().openapi({ description: 'next_cursor of the previous page.' }),
  limit: z.coerce.number().int().min(1).max(200).default(50),
});

const SINCE = /^(\d{1,9}(s|m|h)|\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2}))$/;

const flag = z
  .enum(['true', 'false', '1', '0'])
  .transform((v) => v === 'true' || v === '1')
  .optional();

function logsQuery(defaults: { follow: boolean; tail?: number }) {
  return {
    service: z
      .string()
      .min(1)
      .max(63)
      .optional()
      .openapi({ description: 'A service of the instance (default: the main service).' }),
    follow: flag.openapi({ description: `Keep streaming new lines (default ${defaults.follow}).` }),
    tail: z.coerce
      .number()
      .int()
      .min(0)
      .max(100_000)
      .optional()
      .openapi({
        description: `Only the last N lines; 0 means all (default ${defaults.tail ?? 'all'}).`,
      }),
    since: z.string().regex(SINCE, 'must be an RFC 3339 time or a duration such as 10m').optional().openapi({
      description: 'Only lines at or after this RFC 3339 time, or this long ago (`90s`, `10m`, `2h`).',
    }),
  };
}

/** GET /v1/instances/{id}/logs (NDJSON) */
export const logsQuerySchema = z.strictObject(logsQuery({ follow: false }));

/**
 * GET /v1/instances/{id}/logs/stream (SSE): `ticket` because EventSource cannot send an Authorization header.
 * A token is never accepted in the query (it would end up in proxies' and browsers' logs).
 */
export const logStreamQuerySchema = z.strictObject({
  ...logsQuery({ follow: true, tail: 100 }),
  ticket: z
    .string()
    .max(128)
    .optional()
    .openapi({
      description:
        'A stream ticket from POST /v1/instances/{id}/logs/stream-ticket, for clients (EventSource) that cannot ' +
        'send the Authorization header: it opens one stream of this instance, once, within 30 s of being issued.',
    }),
});

export type LogsQuery = z.infer<typeof logsQuerySchema>;

/** The `{id}` path parameter. */
export const instanceIdParamsSchema = z.strictObject({
  id: z.string().openapi({ description: 'An inst_ TypeID.', example: 'inst_01h455vb4pex5vsknk084sn02q' }),
});

/** Headers the mutating routes honour. */
export const idempotencyKeyHeader = z
  .string()
  .regex(/^[\x21-\x7e]{1,255}$/)
  .optional()
  .openapi({
    description:
      'Repeating a request with the same key and body returns the first response without doing the work again; ' +
      'the same key with another body is a 422. Keys are kept 24 h per tenant.',
  });

export const ifMatchHeader = z
  .string()
  .optional()
  .openapi({ description: 'The ETag of GET /v1/instances/{id}; another version of the instance gives 412.' });
