import type { BillingSweepPhase, SweepCursor } from '../domain/billing-policy.ts';

/** The billing sweep's public surface: what the schedule starts it with and what it returns. */
export const BILLING_SWEEP_WORKFLOW_TYPE = 'billingSweepWorkflow';

export interface BillingSweepCounts {
  /** Instances whose workflow accepted a billing suspension. */
  suspended: number;
  /** Instances whose workflow accepted the lifting of their billing suspension. */
  unsuspended: number;
  /** Instances whose workflow refused the command (changed since the read model saw it) or has ended. */
  skipped: number;
  /** Instances the command could not be sent to (after retries); the next sweep tries them again. */
  failed: number;
}

export interface BillingSweepOptions {
  /** Instances handled by one run before it continues as new (keeps each run's history small). */
  maxInstancesPerRun?: number;
  /** Instances read per query; the commands of one page are sent concurrently. */
  pageSize?: number;
}

export interface BillingSweepInput extends BillingSweepOptions {
  /** Where the previous run stopped; absent on the first run of a sweep. */
  progress?: {
    phase: BillingSweepPhase;
    after?: SweepCursor;
    as_of: string;
    counts: BillingSweepCounts;
  };
}
