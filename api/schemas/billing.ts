import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { BILLING_STATUSES } from '../../db/entities/billing-account.ts';
import { DURATION_PATTERN, durationSeconds } from '../../domain/duration.ts';
import { json, roleProblems } from './openapi-responses.ts';
import { z } from './zod.ts';

/** Longest grace period an account may have (ten years; the column is a 32-bit integer of seconds). */
export const MAX_GRACE_PERIOD_SECONDS = 3650 * 86_400;

const timestamp = z.iso.datetime({ offset: true });

export const tenantIdParamsSchema = z.strictObject({
  tenantId: z
    .string()
    .min(1)
    .max(128)
    .refine((s) => !/\p{Cc}/u.test(s), 'must not contain control characters')
    .openapi({ description: 'The tenant (the `tenant_id` claim of its tokens)', example: 'ten_acme' }),
});

/**
 * A grace period: a duration string (`72h`, `30m`, `3d`, `0s`) or a whole number of seconds. Zero
 * suspends at the first sweep after the tenant falls past due.
 */
const GRACE_PERIOD_FORMAT = 'must be a duration such as 72h, 30m, 3d or 0s, or a whole number of seconds';
const GRACE_PERIOD_MAX = `must be at most 3650d (${MAX_GRACE_PERIOD_SECONDS} seconds)`;

export const gracePeriodSchema = z
  .union(
    [
      z
        .string()
        .regex(DURATION_PATTERN, GRACE_PERIOD_FORMAT)
        .refine((s) => (durationSeconds(s) ?? 0) <= MAX_GRACE_PERIOD_SECONDS, GRACE_PERIOD_MAX),
      z
        .number()
        .int(GRACE_PERIOD_FORMAT)
        .min(0, GRACE_PERIOD_FORMAT)
        .max(MAX_GRACE_PERIOD_SECONDS, GRACE_PERIOD_MAX),
    ],
    { error: GRACE_PERIOD_FORMAT },
  )
  .openapi({ example: '72h' });

export function gracePeriodSeconds(value: string | number): number | undefined {
  return typeof value === 'number' ? value : durationSeconds(value);
}

/** PUT /v1/admin/tenants/{tenantId}/billing: the tenant's standing, as the billing system reports it. */
export const putBillingAccountSchema = z
  .strictObject({
    status: z.enum(BILLING_STATUSES).openapi({
      description:
        '`past_due` keeps the time the tenant first fell past due (a repeated past_due does not restart the ' +
        'grace period); `active` clears it, and the next sweep lifts the billing suspensions',
    }),
    grace_period: gracePeriodSchema.optional().openapi({
      description: 'Absent: unchanged (a new account gets CTRLPLANE_BILLING_GRACE_PERIOD)',
    }),
  })
  .meta({ id: 'BillingAccountUpdate' });

export type PutBillingAccount = z.infer<typeof putBillingAccountSchema>;

export const billingAccountSchema = z
  .strictObject({
    tenant_id: z.string(),
    status: z.enum(BILLING_STATUSES),
    past_due_since: timestamp.nullable(),
    grace_period: z.string().openapi({ example: '72h' }),
    grace_period_seconds: z.number().int(),
    suspend_after: timestamp
      .nullable()
      .openapi({ description: 'When past due: the first sweep after this time suspends the instances' }),
    updated_at: timestamp,
  })
  .meta({ id: 'BillingAccount' });

export const sweepTriggeredSchema = z
  .strictObject({
    schedule_id: z.string(),
    overlap: z.literal('skip'),
    detail: z.string(),
  })
  .meta({ id: 'BillingSweepTriggered' });

const sweepRunSchema = z.strictObject({
  workflow_id: z.string(),
  run_id: z.string(),
  scheduled_at: timestamp.optional(),
  started_at: timestamp.optional(),
});

export const sweepScheduleSchema = z
  .strictObject({
    schedule_id: z.string(),
    interval: z.string().openapi({ example: '5m' }),
    paused: z.boolean(),
    note: z.string().optional(),
    next_runs: z.array(timestamp),
    recent_runs: z.array(sweepRunSchema).openapi({ description: 'Oldest first' }),
    running: z.array(sweepRunSchema.pick({ workflow_id: true, run_id: true })),
    skipped_overlap: z.number().int(),
  })
  .meta({ id: 'BillingSweepSchedule' });

/** Adds the billing admin routes to the API's OpenAPI document. */
export function registerBillingPaths(registry: OpenAPIRegistry): void {
  const tags = ['billing'];
  registry.registerPath({
    method: 'get',
    path: '/v1/admin/tenants/{tenantId}/billing',
    operationId: 'getBillingAccount',
    summary: "A tenant's billing account (operator)",
    tags,
    request: { params: tenantIdParamsSchema },
    responses: {
      200: json(billingAccountSchema, 'The billing account'),
      ...roleProblems('operator', { 404: 'The tenant has no billing account' }),
    },
  });
  registry.registerPath({
    method: 'put',
    path: '/v1/admin/tenants/{tenantId}/billing',
    operationId: 'putBillingAccount',
    summary: "Set a tenant's billing status and grace period (operator)",
    tags,
    request: {
      params: tenantIdParamsSchema,
      body: { required: true, content: { 'application/json': { schema: putBillingAccountSchema } } },
    },
    responses: {
      200: json(billingAccountSchema, 'Updated'),
      201: json(billingAccountSchema, 'Created'),
      ...roleProblems('operator', { 415: 'The body is not JSON' }),
    },
  });
  registry.registerPath({
    method: 'post',
    path: '/v1/admin/billing/sweep',
    operationId: 'triggerBillingSweep',
    summary: 'Run the billing sweep now (operator); skipped if a sweep is already running',
    tags,
    responses: {
      202: json(sweepTriggeredSchema, 'The schedule was triggered'),
      ...roleProblems('operator', {
        503: 'Temporal is unavailable, or no worker has created the schedule yet',
      }),
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/admin/billing/sweep',
    operationId: 'getBillingSweep',
    summary: 'The billing sweep schedule: interval, next and recent runs (operator)',
    tags,
    responses: {
      200: json(sweepScheduleSchema, 'The schedule'),
      ...roleProblems('operator', {
        503: 'Temporal is unavailable, or no worker has created the schedule yet',
      }),
    },
  });
}
