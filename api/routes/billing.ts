import {
  type Client,
  type ScheduleDescription,
  type ScheduleExecutionResult,
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
} from '@temporalio/client';
import { type Request, type RequestHandler, type Response, Router } from 'express';
import type { BillingStore } from '../../db/billing-store.ts';
import type { BillingAccountRecord } from '../../db/entities/billing-account.ts';
import { durationSeconds, formatDuration } from '../../domain/duration.ts';
import { CtrlplaneError } from '../../domain/errors.ts';
import { routeLabel } from '../metrics.ts';
import { RetryableError } from '../problem.ts';
import { OPERATOR_ROLE, requireRole } from '../roles.ts';
import {
  gracePeriodSeconds,
  MAX_GRACE_PERIOD_SECONDS,
  putBillingAccountSchema,
  tenantIdParamsSchema,
} from '../schemas/billing.ts';
import { z } from '../schemas/zod.ts';
import { parseInput } from '../validate.ts';

export interface BillingRoutesDeps {
  accounts: BillingStore;
  client: Client;
  /** The schedule POST /billing/sweep triggers (CTRLPLANE_BILLING_SCHEDULE_ID). */
  scheduleId: string;
  /** Grace period of a new account that does not give one (CTRLPLANE_BILLING_GRACE_PERIOD, e.g. `72h`). */
  defaultGracePeriod: string;
  /** Deadline of each call to Temporal; a timeout is a 503. */
  temporalTimeoutMs?: number;
}

const MOUNT = '/v1/admin';
const noBodySchema = z.strictObject({}).optional();

/**
 * The billing admin routes, for the operator role (never a tenant's admin); mount at `/v1/admin` behind authentication:
 * GET and PUT /tenants/:tenantId/billing, GET and POST /billing/sweep.
 */
export function billingRoutes(deps: BillingRoutesDeps): Router {
  const defaultGraceSeconds = durationSeconds(deps.defaultGracePeriod);
  if (defaultGraceSeconds === undefined || defaultGraceSeconds > MAX_GRACE_PERIOD_SECONDS) {
    throw new Error(
      `CTRLPLANE_BILLING_GRACE_PERIOD: ${deps.defaultGracePeriod} is not a duration of at most 3650d`,
    );
  }
  const timeoutMs = deps.temporalTimeoutMs ?? 10_000;
  const router = Router();
  const allowed = new Map<string, string[]>();

  function route(method: 'get' | 'put' | 'post', path: string, handler: RequestHandler): void {
    router[method](path, routeLabel(`${MOUNT}${path}`), (req, _res, next) => {
      requireRole(req, OPERATOR_ROLE);
      next();
    });
    router[method](path, handler);
    allowed.set(path, [...(allowed.get(path) ?? []), method.toUpperCase()]);
  }

  route('get', '/tenants/:tenantId/billing', async (req: Request, res: Response) => {
    const { tenantId } = parseInput(tenantIdParamsSchema, req.params, 'query');
    const account = await deps.accounts.getAccount(tenantId);
    if (!account) throw new CtrlplaneError('not_found', `tenant ${tenantId} has no billing account`);
    res.json(accountBody(account));
  });

  route('put', '/tenants/:tenantId/billing', async (req: Request, res: Response) => {
    const { tenantId } = parseInput(tenantIdParamsSchema, req.params, 'query');
    const body = parseInput(putBillingAccountSchema, req.body, 'body');
    const given = body.grace_period === undefined ? null : (gracePeriodSeconds(body.grace_period) ?? null);
    const { account, created } = await deps.accounts.putAccount({
      tenantId,
      status: body.status,
      gracePeriodSeconds: given,
      defaultGraceSeconds,
    });
    res.status(created ? 201 : 200).json(accountBody(account));
  });

  route('post', '/billing/sweep', async (req: Request, res: Response) => {
    parseInput(noBodySchema, req.body, 'body');
    const handle = deps.client.schedule.getHandle(deps.scheduleId);
    // trigger() defaults to ALLOW_ALL; a sweep already running makes this one a no-op instead.
    await temporal(() => handle.trigger(ScheduleOverlapPolicy.SKIP));
    res.status(202).json({
      schedule_id: deps.scheduleId,
      overlap: 'skip',
      detail: 'a billing sweep starts now, unless one is already running',
    });
  });

  route('get', '/billing/sweep', async (_req: Request, res: Response) => {
    const handle = deps.client.schedule.getHandle(deps.scheduleId);
    res.json(scheduleBody(await temporal(() => handle.describe())));
  });

  for (const [path, methods] of allowed) {
    router.all(path, (req: Request, res: Response) => {
      requireRole(req, OPERATOR_ROLE);
      res.setHeader('Allow', methods.join(', '));
      throw new CtrlplaneError(
        'method_not_allowed',
        `${req.method} is not allowed here; use ${methods.join(', ')}`,
      );
    });
  }

  async function temporal<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await deps.client.withDeadline(Date.now() + timeoutMs, call);
    } catch (err) {
      if (err instanceof ScheduleNotFoundError) {
        throw new RetryableError(
          'temporal_unavailable',
          `the ${deps.scheduleId} schedule does not exist yet: a worker creates it when it starts`,
          30,
        );
      }
      const detail = err instanceof Error ? err.message : String(err);
      throw new RetryableError(
        'temporal_unavailable',
        `the workflow service did not answer in time: ${detail}`,
        5,
      );
    }
  }

  return router;
}

function accountBody(account: BillingAccountRecord) {
  const pastDueSince = account.past_due_since ? new Date(account.past_due_since) : null;
  return {
    tenant_id: account.tenant_id,
    status: account.status,
    past_due_since: pastDueSince?.toISOString() ?? null,
    grace_period: formatDuration(account.grace_period_seconds),
    grace_period_seconds: account.grace_period_seconds,
    suspend_after: pastDueSince
      ? new Date(pastDueSince.getTime() + account.grace_period_seconds * 1000).toISOString()
      : null,
    updated_at: new Date(account.updated_at).toISOString(),
  };
}

function scheduleBody(schedule: ScheduleDescription) {
  const every = schedule.spec.intervals?.[0]?.every;
  const run = (r: ScheduleExecutionResult) => ({
    workflow_id: r.action.workflow.workflowId,
    run_id: r.action.workflow.firstExecutionRunId,
    scheduled_at: r.scheduledAt.toISOString(),
    started_at: r.takenAt.toISOString(),
  });
  return {
    schedule_id: schedule.scheduleId,
    interval: every !== undefined ? formatDuration(Math.round(every / 1000)) : '',
    paused: schedule.state.paused,
    ...(schedule.state.note ? { note: schedule.state.note } : {}),
    next_runs: schedule.info.nextActionTimes.map((t) => t.toISOString()),
    recent_runs: schedule.info.recentActions.map(run),
    running: schedule.info.runningActions.map((r) => ({
      workflow_id: r.workflow.workflowId,
      run_id: r.workflow.firstExecutionRunId,
    })),
    skipped_overlap: schedule.info.numActionsSkippedOverlap,
  };
}
