import {
  type Client,
  ScheduleAlreadyRunning,
  type ScheduleDescription,
  type ScheduleOptionsStartWorkflowAction,
  ScheduleOverlapPolicy,
  type Workflow,
} from '@temporalio/client';
import type { Config } from '../config/env.ts';
import type { Logger } from '../config/logger.ts';
import { durationSeconds } from '../domain/duration.ts';
import { BILLING_SWEEP_WORKFLOW_TYPE, type BillingSweepInput } from '../workflows/billing-sweep-types.ts';

/** Production schedule id; tests use their own (CTRLPLANE_BILLING_SCHEDULE_ID) so files never share one. */
export const BILLING_SCHEDULE_ID = 'billing-sweep';

export const BILLING_SCHEDULE_NOTE =
  'ctrlplane billing sweep: suspends (reason "billing") the instances of tenants past due beyond their grace ' +
  'period, and lifts billing suspensions once a tenant is active again. Managed by the ctrlplane worker ' +
  '(created or updated at every worker start); trigger now with POST /v1/admin/billing/sweep.';

export interface BillingScheduleSettings {
  scheduleId: string;
  /** Task queue of the sweep workflow (the instances' queue: the same workers run it). */
  taskQueue: string;
  intervalSeconds: number;
  maxInstancesPerRun: number;
}

export function billingScheduleSettings(config: Config): BillingScheduleSettings {
  const intervalSeconds = durationSeconds(config.CTRLPLANE_BILLING_SWEEP_INTERVAL);
  if (!intervalSeconds) {
    throw new Error(
      `CTRLPLANE_BILLING_SWEEP_INTERVAL: ${config.CTRLPLANE_BILLING_SWEEP_INTERVAL} is not a positive duration`,
    );
  }
  return {
    scheduleId: config.CTRLPLANE_BILLING_SCHEDULE_ID,
    taskQueue: config.CTRLPLANE_TASK_QUEUE,
    intervalSeconds,
    maxInstancesPerRun: config.CTRLPLANE_BILLING_SWEEP_MAX_INSTANCES_PER_RUN,
  };
}

/** Worker start: the schedule as configured, logged. */
export async function setUpBillingSchedule(client: Client, config: Config, logger: Logger): Promise<void> {
  const settings = billingScheduleSettings(config);
  const result = await ensureBillingSchedule(client, settings);
  logger.info(
    { scheduleId: settings.scheduleId, intervalSeconds: settings.intervalSeconds, result },
    'billing sweep schedule',
  );
}

export type EnsureScheduleResult = 'created' | 'updated' | 'unchanged';

/**
 * Creates the `billing-sweep` schedule, or brings an existing one to the configured interval and action:
 * safe at every worker start, from any number of workers. An operator's pause (and its note) is kept.
 */
export async function ensureBillingSchedule(
  client: Client,
  settings: BillingScheduleSettings,
): Promise<EnsureScheduleResult> {
  const intervalMs = settings.intervalSeconds * 1000;
  const action = sweepAction(settings);
  const spec = { intervals: [{ every: intervalMs }] };
  // Catching up after an outage: at most the one run the interval would have taken.
  const policies = { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: Math.max(intervalMs, 10_000) };
  try {
    await client.schedule.create({
      scheduleId: settings.scheduleId,
      spec,
      action,
      policies,
      state: { note: BILLING_SCHEDULE_NOTE },
      memo: { description: BILLING_SCHEDULE_NOTE, managed_by: 'ctrlplane-worker' },
    });
    return 'created';
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
  }
  const handle = client.schedule.getHandle(settings.scheduleId);
  if (isCurrent(await handle.describe(), settings, intervalMs, policies.catchupWindow)) return 'unchanged';
  await handle.update((previous) => ({
    ...previous,
    spec,
    action,
    policies,
    state: previous.state.paused ? previous.state : { ...previous.state, note: BILLING_SCHEDULE_NOTE },
  }));
  return 'updated';
}

function sweepAction(settings: BillingScheduleSettings): ScheduleOptionsStartWorkflowAction<Workflow> {
  const input: BillingSweepInput = { maxInstancesPerRun: settings.maxInstancesPerRun };
  return {
    type: 'startWorkflow',
    workflowType: BILLING_SWEEP_WORKFLOW_TYPE,
    // The server appends the scheduled time: `billing-sweep-2026-11-26T02:00:00Z`.
    workflowId: settings.scheduleId,
    taskQueue: settings.taskQueue,
    args: [input],
    staticSummary: 'Billing sweep: suspend overdue tenants, lift billing suspensions of paying tenants',
  };
}

function isCurrent(
  current: ScheduleDescription,
  settings: BillingScheduleSettings,
  intervalMs: number,
  catchupWindowMs: number,
): boolean {
  const intervals = current.spec.intervals ?? [];
  const args = current.action.args ?? [];
  return (
    intervals.length === 1 &&
    intervals[0]?.every === intervalMs &&
    (current.spec.calendars ?? []).length === 0 &&
    current.policies.overlap === ScheduleOverlapPolicy.SKIP &&
    current.policies.catchupWindow === catchupWindowMs &&
    current.action.workflowType === BILLING_SWEEP_WORKFLOW_TYPE &&
    current.action.taskQueue === settings.taskQueue &&
    current.action.workflowId === settings.scheduleId &&
    JSON.stringify(args) === JSON.stringify([{ maxInstancesPerRun: settings.maxInstancesPerRun }]) &&
    (current.state.paused || current.state.note === BILLING_SCHEDULE_NOTE)
  );
}
