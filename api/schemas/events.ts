import type { OpenAPIRegistry, ResponseConfig } from '@asteasolutions/zod-to-openapi';
import { z } from './zod.ts';

/** GET /v1/events (the tenant's lifecycle event stream), its query, its event and its path. */

const EVENT_ID = /^evt_[0-9a-hjkmnp-tv-z]{26}$/;
const EVENT_TYPE = /^[a-z][a-z0-9_]*\.[a-z][a-z0-9_.]*$/;

export const eventIdSchema = z.string().regex(EVENT_ID, 'must be an evt_ TypeID');

/** Comma-separated event types, each like `instance.started`. */
export const eventTypesSchema = z
  .string()
  .max(2000)
  .transform((raw) => raw.split(',').map((t) => t.trim()))
  .pipe(
    z
      .array(z.string().regex(EVENT_TYPE, 'each type must look like instance.started'))
      .min(1)
      .max(50, 'at most 50 types'),
  );

const flag = z
  .enum(['true', 'false', '1', '0'])
  .transform((v) => v === 'true' || v === '1')
  .optional();

export const eventStreamQuerySchema = z.strictObject({
  instance: z
    .string()
    .regex(/^inst_[0-9a-hjkmnp-tv-z]{26}$/, 'must be an inst_ TypeID')
    .optional()
    .openapi({ description: 'Only this instance’s events.' }),
  type: eventTypesSchema.optional().openapi({
    type: 'string',
    description: 'Only these event types, comma-separated (e.g. `instance.started,instance.stopped`).',
  }),
  follow: flag.openapi({
    type: 'string',
    enum: ['true', 'false', '1', '0'],
    description:
      'Keep the stream open and send new events as they happen (default false: end when caught up).',
  }),
  after: eventIdSchema.optional().openapi({
    description:
      'Start after this event (an id the stream sent); the `Last-Event-ID` header does the same and wins. ' +
      'Absent: from the oldest event.',
  }),
  tenant_id: z
    .string()
    .min(1)
    .max(128)
    .optional()
    .openapi({ description: 'Operator role only: this tenant’s events instead of the caller’s own.' }),
  all_tenants: flag.openapi({
    type: 'string',
    enum: ['true', 'false', '1', '0'],
    description: 'Operator role only: every tenant’s events.',
  }),
});

export type EventStreamQuery = z.infer<typeof eventStreamQuerySchema>;

export const streamEventSchema = z
  .strictObject({
    id: z
      .string()
      .openapi({ description: 'The event’s id (evt_ TypeID): resume after it, deduplicate by it' }),
    type: z.string().openapi({ example: 'instance.started' }),
    tenant_id: z.string(),
    instance_id: z.string(),
    seq: z.number().int().openapi({ description: 'The event’s place among its instance’s events' }),
    occurred_at: z.iso.datetime({ offset: true }),
    payload: z.record(z.string(), z.unknown()).nullable(),
  })
  .meta({
    id: 'StreamEvent',
    description: 'A lifecycle event, as the stream and webhook deliveries send it',
  });

export function registerEventPaths(
  registry: OpenAPIRegistry,
  problems: Record<number, ResponseConfig>,
): void {
  registry.registerPath({
    method: 'get',
    path: '/v1/events',
    operationId: 'eventStream',
    summary: 'The tenant’s lifecycle events, oldest first (NDJSON, or SSE with Accept: text/event-stream)',
    description:
      'Every lifecycle event of the caller’s tenant’s instances, in one order that never changes: resuming ' +
      'after an event (`?after=` or `Last-Event-ID`) sends each later event exactly once, none skipped, also ' +
      'when events were being written concurrently. An event is sent once its transaction and every older one ' +
      'have ended. With `follow=true` the stream stays open (SSE sends `: ping` every 15 s) and ends when the ' +
      'API shuts down; the client reconnects with the last id it saw.',
    tags: ['events'],
    request: {
      query: eventStreamQuerySchema,
      headers: z.object({
        'last-event-id': eventIdSchema.optional().openapi({ description: 'Resume after this event (SSE)' }),
      }),
    },
    responses: {
      200: {
        description:
          'application/x-ndjson: one StreamEvent per line. text/event-stream: per event `id: <event id>` and ' +
          '`data: <StreamEvent>`.',
        content: {
          'application/x-ndjson': { schema: streamEventSchema },
          'text/event-stream': { schema: { type: 'string' } },
        },
      },
      ...problems,
    },
  });
}
