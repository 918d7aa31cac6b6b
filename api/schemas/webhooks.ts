import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { json, roleProblems } from './openapi-responses.ts';
import { z } from './zod.ts';

/** Requests and answers of /v1/webhooks (a tenant's webhooks and their deliveries), and their paths. */

const timestamp = z.iso.datetime({ offset: true });
const EVENT_TYPE = /^[a-z][a-z0-9_]*\.[a-z][a-z0-9_.]*$/;

const webhookUrl = z
  .string()
  .max(2048)
  .url('must be an http or https URL')
  .refine(
    (raw) => URL.canParse(raw) && /^https?:$/.test(new URL(raw).protocol),
    'must be an http or https URL',
  )
  .refine((raw) => {
    const url = URL.canParse(raw) ? new URL(raw) : undefined;
    return url === undefined || (url.username === '' && url.password === '');
  }, 'must not contain credentials')
  .openapi({
    description:
      'Where deliveries are POSTed. Its host must resolve only to public addresses (unless the operator allows ' +
      'private ones); it is checked again at each delivery.',
    example: 'https://hooks.example.com/ctrlplane',
  });

const eventTypes = z
  .array(z.string().regex(EVENT_TYPE, 'must look like instance.started'))
  .max(50)
  .openapi({ description: 'Only these event types; empty: every type', example: ['instance.started'] });

export const webhookParamsSchema = z.strictObject({
  id: z.string().regex(/^wh_[0-9a-hjkmnp-tv-z]{26}$/, 'must be a wh_ TypeID'),
});

export const createWebhookSchema = z
  .strictObject({
    url: webhookUrl,
    event_types: eventTypes.default([]),
    enabled: z.boolean().default(true),
  })
  .meta({ id: 'WebhookCreate' });

export const patchWebhookSchema = z
  .strictObject({
    url: webhookUrl.optional(),
    event_types: eventTypes.optional(),
    enabled: z.boolean().optional().openapi({
      description: 'false pauses deliveries; events are kept and sent, in order, once it is true again',
    }),
  })
  .meta({ id: 'WebhookPatch' });

export const deliveriesQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(200).default(50),
});

export const webhookSchema = z
  .strictObject({
    id: z.string(),
    url: z.string(),
    event_types: z.array(z.string()),
    enabled: z.boolean(),
    created_at: timestamp,
    updated_at: timestamp,
  })
  .meta({ id: 'Webhook', description: 'A webhook; its secret is shown only when it is created or rotated' });

export const webhookWithSecretSchema = webhookSchema
  .extend({
    secret: z.string().openapi({
      description:
        'Signs every delivery: `X-Ctrlplane-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`. ' +
        'Shown this once.',
    }),
  })
  .meta({ id: 'WebhookWithSecret' });

export const webhookListSchema = z
  .strictObject({ items: z.array(webhookSchema) })
  .meta({ id: 'WebhookList' });

export const webhookDeliverySchema = z
  .strictObject({
    event_id: z
      .string()
      .openapi({ description: 'The delivered event (its id is in the body, for deduplication)' }),
    instance_id: z.string(),
    event_type: z.string(),
    status: z.enum(['pending', 'retrying', 'delivered', 'failed']).openapi({
      description:
        '`pending`: not tried yet; `retrying`: an attempt failed, more follow with backoff for 24 h; ' +
        '`delivered`: the receiver answered 2xx; `failed`: given up (24 h of failures, or a refused address)',
    }),
    attempts: z.number().int(),
    last_response_code: z.number().int().nullable(),
    last_error: z.string().nullable(),
    created_at: timestamp,
    last_attempt_at: timestamp.nullable(),
    delivered_at: timestamp.nullable(),
  })
  .meta({ id: 'WebhookDelivery' });

export const webhookDeliveryListSchema = z
  .strictObject({ items: z.array(webhookDeliverySchema).openapi({ description: 'Newest event first' }) })
  .meta({ id: 'WebhookDeliveryList' });

/** Adds the webhook routes to the API's OpenAPI document. */
export function registerWebhookPaths(registry: OpenAPIRegistry): void {
  const tags = ['webhooks'];
  const missing = { 404: 'No such webhook in the caller’s tenant' };
  registry.registerPath({
    method: 'post',
    path: '/v1/webhooks',
    operationId: 'createWebhook',
    summary: 'Create a webhook (admin); the answer holds its secret, shown this once',
    description:
      'Each lifecycle event of the tenant from now on (of the types asked for) is POSTed as a StreamEvent to ' +
      'the URL, signed with the secret; each instance’s events in order; a failed delivery is retried with ' +
      'backoff for 24 h. The receiver deduplicates by the event id (also in `X-Ctrlplane-Event-Id`).',
    tags,
    request: { body: { required: true, content: { 'application/json': { schema: createWebhookSchema } } } },
    responses: {
      201: json(webhookWithSecretSchema, 'Created'),
      ...roleProblems('admin', {
        400: 'Invalid request, or the URL’s host resolves to a refused address (`errors[].field` is `url`)',
        415: 'The body is not JSON',
        503: 'Temporal did not accept the delivery workflow; nothing was created',
      }),
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/webhooks',
    operationId: 'listWebhooks',
    summary: 'The tenant’s webhooks, without secrets (admin)',
    tags,
    responses: { 200: json(webhookListSchema, 'The webhooks'), ...roleProblems('admin', {}) },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/webhooks/{id}',
    operationId: 'getWebhook',
    summary: 'A webhook, without its secret (admin)',
    tags,
    request: { params: webhookParamsSchema },
    responses: { 200: json(webhookSchema, 'The webhook'), ...roleProblems('admin', missing) },
  });
  registry.registerPath({
    method: 'patch',
    path: '/v1/webhooks/{id}',
    operationId: 'updateWebhook',
    summary: 'Change a webhook’s URL, event types or enabled (admin)',
    tags,
    request: {
      params: webhookParamsSchema,
      body: { required: true, content: { 'application/json': { schema: patchWebhookSchema } } },
    },
    responses: {
      200: json(webhookSchema, 'Changed'),
      ...roleProblems('admin', { ...missing, 415: 'The body is not JSON' }),
    },
  });
  registry.registerPath({
    method: 'delete',
    path: '/v1/webhooks/{id}',
    operationId: 'deleteWebhook',
    summary: 'Delete a webhook and its deliveries (admin); nothing more is sent',
    tags,
    request: { params: webhookParamsSchema },
    responses: { 204: { description: 'Deleted' }, ...roleProblems('admin', missing) },
  });
  registry.registerPath({
    method: 'post',
    path: '/v1/webhooks/{id}/rotate-secret',
    operationId: 'rotateWebhookSecret',
    summary: 'Replace a webhook’s secret (admin); the answer holds the new one, shown this once',
    description: 'Deliveries from now on, retries included, are signed with the new secret only.',
    tags,
    request: { params: webhookParamsSchema },
    responses: { 200: json(webhookWithSecretSchema, 'Rotated'), ...roleProblems('admin', missing) },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/webhooks/{id}/deliveries',
    operationId: 'listWebhookDeliveries',
    summary: 'A webhook’s deliveries, newest first, with status, attempts and last response code (admin)',
    tags,
    request: { params: webhookParamsSchema, query: deliveriesQuerySchema },
    responses: { 200: json(webhookDeliveryListSchema, 'The deliveries'), ...roleProblems('admin', missing) },
  });
}
