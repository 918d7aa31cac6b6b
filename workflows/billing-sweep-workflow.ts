import { ActivityFailure, continueAsNew, log, patched, proxyActivities } from '@temporalio/workflow';
import type {
  BillingActivities,
  BillingCommandInput,
  BillingCommandOutcome,
} from '../activities/billing-activities.ts';
import {
  type BillingSweepPhase,
  billingRequestId,
  billingSuspensionRefusal,
  type SweepTarget,
} from '../domain/billing-policy.ts';
import type { BillingSweepCounts, BillingSweepInput } from './billing-sweep-types.ts';

const DEFAULT_MAX_INSTANCES_PER_RUN = 200;
const DEFAULT_PAGE_SIZE = 20;

/** The reads: PostgreSQL away for a while is worth a couple of minutes of retries, then the sweep fails. */
const reads = proxyActivities<Pick<BillingActivities, 'findBillingSweepTargets'>>({
  startToCloseTimeout: '30 seconds',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '30 seconds',
    maximumAttempts: 8,
  },
});

/**
 * The calls to instance workflows (their suspension, the commands): a few quick attempts; an instance that cannot
 * be reached is counted failed and left to the next sweep.
 */
const sends = proxyActivities<
  Pick<BillingActivities, 'readSuspension' | 'submitBillingCommand' | 'sendBillingCommand'>
>({
  startToCloseTimeout: '30 seconds',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '10 seconds',
    maximumAttempts: 3,
  },
});

/**
 * One billing sweep, started by the `billing-sweep` schedule: suspends (reason `billing`) every settled,
 * not-suspended instance of the tenants past due beyond their grace period, then lifts the `billing`
 * suspensions of the tenants active again. Suspensions for any other reason are never touched.
 *
 * Idempotent: each command's request id is `billing-<command>/<instance>/<read-model seq>` (billingRequestId), so
 * a sweep that sees the instance unchanged (the read model lagging behind an accepted command, a repeated run)
 * sends the same id and the instance workflow ignores it. Bounded: after `maxInstancesPerRun` instances it
 * continues as new from its cursor, carrying its counts; the last run returns the totals.
 */
export async function billingSweepWorkflow(input: BillingSweepInput = {}): Promise<BillingSweepCounts> {
  const maxPerRun = Math.max(1, input.maxInstancesPerRun ?? DEFAULT_MAX_INSTANCES_PER_RUN);
  const pageSize = Math.max(1, input.pageSize ?? DEFAULT_PAGE_SIZE);
  const as_of = input.progress?.as_of ?? new Date().toISOString();
  const counts: BillingSweepCounts = input.progress?.counts ?? {
    suspended: 0,
    unsuspended: 0,
    skipped: 0,
    failed: 0,
  };
  let phase: BillingSweepPhase = input.progress?.phase ?? 'suspend';
  let after = input.progress?.after;
  let handled = 0;

  for (;;) {
    if (handled >= maxPerRun) {
      return continueAsNew<typeof billingSweepWorkflow>({
        maxInstancesPerRun: input.maxInstancesPerRun,
        pageSize: input.pageSize,
        progress: { phase, ...(after ? { after } : {}), as_of, counts },
      });
    }
    const limit = Math.min(pageSize, maxPerRun - handled);
    const page = await reads.findBillingSweepTargets({ phase, as_of, ...(after ? { after } : {}), limit });
    const outcomes = await Promise.all(page.map((target) => send(phase, target)));
    for (const outcome of outcomes) counts[outcome] += 1;
    handled += page.length;
    const last = page[page.length - 1];
    if (last) after = { tenant_id: last.tenant_id, instance_id: last.instance_id };
    if (page.length < limit) {
      if (phase === 'unsuspend') break;
      phase = 'unsuspend';
      after = undefined;
    }
  }
  log.info('billing sweep done', { ...counts, as_of });
  return counts;
}

/**
 * Since this patch the workflow reads the instance's suspension and applies the billing rules itself (one activity
 * more per suspension); runs started before it made the whole decision inside `sendBillingCommand`.
 */
const BILLING_POLICY_PATCH = 'billing-policy-in-workflow';

async function send(phase: BillingSweepPhase, target: SweepTarget): Promise<keyof BillingSweepCounts> {
  const request_id = billingRequestId(phase, target);
  const input = { command: phase, instance_id: target.instance_id, request_id };
  const decideHere = patched(BILLING_POLICY_PATCH);
  try {
    const outcome = decideHere ? await decideAndSubmit(input) : await sends.sendBillingCommand(input);
    if (outcome.outcome === 'accepted') return phase === 'suspend' ? 'suspended' : 'unsuspended';
    log.info('billing command skipped', {
      instance_id: target.instance_id,
      request_id,
      why: outcome.message,
    });
    return 'skipped';
  } catch (err) {
    if (!(err instanceof ActivityFailure)) throw err;
    log.warn('billing command failed', {
      instance_id: target.instance_id,
      request_id,
      error: err.cause?.message,
    });
    return 'failed';
  }
}

/** A suspension only when the instance workflow has none in force or queued (billingSuspensionRefusal). */
async function decideAndSubmit(input: BillingCommandInput): Promise<BillingCommandOutcome> {
  if (input.command === 'suspend') {
    const reading = await sends.readSuspension({ instance_id: input.instance_id });
    if (reading.outcome === 'gone') return reading;
    const refusal = billingSuspensionRefusal(reading.view, input.request_id);
    if (refusal) return { outcome: 'refused', message: refusal };
  }
  return sends.submitBillingCommand(input);
}
