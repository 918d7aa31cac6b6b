import { INSTANCE_STATES } from '../../domain/instance-state.ts';
import { instanceNameSchema, labelsSchema } from '../../domain/schemas/instance-fields.ts';
import { createPolicyFields } from '../../domain/schemas/lifecycle-policy.ts';
import { servicesSchema } from '../../domain/schemas/service-spec.ts';
import { deploymentSourceSchema, variablesSchema, variableValuesSchema } from './deployment-source.ts';
import { z } from './zod.ts';

/**
 * One schema per request: each validates its input in the route and documents it in /openapi.json.
 * Bodies are strict objects (an unknown field is a 400 naming it); query strings are strict too.
 */

/** POST /v1/instances: the seed doc's CreateRequest. */
export const createInstanceSchema = z
  .strictObject({
    name: instanceNameSchema,
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
    ...createPolicyFields,
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

export {
  emptyBodySchema,
  restartServiceSchema,
  scaleInstanceSchema,
  stopInstanceSchema,
  suspendInstanceSchema,
  unsuspendInstanceSchema,
  updateInstanceSchema,
} from '../../domain/commands.ts';
export { labelsSchema } from '../../domain/schemas/instance-fields.ts';

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
