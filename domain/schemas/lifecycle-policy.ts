import { z } from 'zod';
import { DURATION_PATTERN, durationSeconds } from '../duration.ts';
import { cronOf } from '../lifecycle-policy.ts';

/**
 * Lifecycle policies as create and PATCH take them (domain/lifecycle-policy.ts). On PATCH, `null` removes a
 * policy. Parsed in the API and again in the instance workflow's update validator.
 */

const MAX_POLICY_SECONDS = 366 * 86_400;

const policyDuration = z.string().superRefine((text, ctx) => {
  if (!DURATION_PATTERN.test(text)) {
    ctx.addIssue({ code: 'custom', message: 'must be a duration such as 90s, 30m, 2h or 7d' });
    return;
  }
  const seconds = durationSeconds(text) ?? 0;
  if (seconds < 1 || seconds > MAX_POLICY_SECONDS) {
    ctx.addIssue({ code: 'custom', message: 'must be between 1s and 366d' });
  }
});

const cronExpression = z
  .string()
  .max(200)
  .refine((pattern) => {
    try {
      cronOf(pattern);
      return true;
    } catch {
      return false;
    }
  }, 'must be a cron expression: five fields (minute hour day month weekday), or six with seconds first');

const timezone = z
  .string()
  .max(64)
  .refine((zone) => {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: zone });
      return true;
    } catch {
      return false;
    }
  }, 'must be an IANA time zone such as Europe/Berlin or UTC');

export const autoStopSchema = z
  .strictObject({ after: policyDuration })
  .meta({ id: 'AutoStopPolicy', description: 'Stop the instance this long after it last started.' });

export const autoDeleteSchema = z.strictObject({ after_stopped: policyDuration }).meta({
  id: 'AutoDeletePolicy',
  description: 'Delete the instance once it has been stopped this long.',
});

export const expiresAtSchema = z.iso
  .datetime({ offset: true, message: 'must be an RFC 3339 time such as 2026-12-31T23:00:00Z' })
  .meta({ description: 'Delete the instance at this time (RFC 3339).' });

export const scheduleSchema = z
  .strictObject({
    start: cronExpression.optional(),
    stop: cronExpression.optional(),
    timezone,
  })
  .superRefine((schedule, ctx) => {
    if (schedule.start === undefined && schedule.stop === undefined) {
      ctx.addIssue({ code: 'custom', path: ['start'], message: 'give start, stop or both' });
    }
  })
  .meta({
    id: 'SchedulePolicy',
    description:
      'Start a stopped instance at `start` and stop a running one at `stop` (cron expressions read in `timezone`).',
  });

/** The policy fields of a create request. */
export const createPolicyFields = {
  auto_stop: autoStopSchema.optional(),
  auto_delete: autoDeleteSchema.optional(),
  expires_at: expiresAtSchema.optional(),
  schedule: scheduleSchema.optional(),
};

/** The policy fields of a PATCH: a value replaces the policy, `null` removes it. */
export const updatePolicyFields = {
  auto_stop: z.union([autoStopSchema, z.null()]).optional(),
  auto_delete: z.union([autoDeleteSchema, z.null()]).optional(),
  expires_at: z.union([expiresAtSchema, z.null()]).optional(),
  schedule: z.union([scheduleSchema, z.null()]).optional(),
};

export const POLICY_FIELDS = ['auto_stop', 'auto_delete', 'expires_at', 'schedule'] as const;
