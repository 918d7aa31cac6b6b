import type { InstanceState } from './instance-state.ts';

/**
 * The billing sweep's rules, pure: which instances it acts on, the command it sends each, and when a
 * suspension must be left alone. The workflow applies them; the store reads by them; the activities only
 * read, and send what the workflow decided.
 */

/** The reason the billing sweep suspends with, and the only suspension it lifts. */
export const BILLING_REASON = 'billing';
/** `actor` of the commands the sweep sends, kept on the instances' lifecycle events. */
export const BILLING_ACTOR = 'system:billing-sweep';

/**
 * First the instances of tenants past due beyond their grace period are suspended, then the billing
 * suspensions of tenants active again are lifted. The phase is also the command sent.
 */
export type BillingSweepPhase = 'suspend' | 'unsuspend';

/**
 * Only settled instances: one in the middle of a transition (provisioning, starting, stopping, destroying)
 * is picked up by the next sweep, once the read model shows where it ended.
 */
export const BILLING_SWEEP_STATES: readonly InstanceState[] = ['running', 'stopped', 'failed'];

/** Keyset position in the sweep's ordering (tenant, then instance). */
export interface SweepCursor {
  tenant_id: string;
  instance_id: string;
}

/** An instance the sweep should act on, as the read model has it now. */
export interface SweepTarget extends SweepCursor {
  /** The read model's sequence number: part of the request id, so one sweep's command is applied once. */
  seq: number;
}

/**
 * `billing-<command>/<instance>/<read-model seq>`: a sweep that sees the instance unchanged (the read model
 * lagging behind an accepted command, a repeated run) sends the same id, and the instance workflow ignores it.
 */
export function billingRequestId(phase: BillingSweepPhase, target: SweepTarget): string {
  return `billing-${phase}/${target.instance_id}/${target.seq}`;
}

/** What the instance workflow itself says about the instance's suspension (the read model may lag). */
export interface SuspensionView {
  /** The reason of the suspension in force, if suspended. */
  suspend_reason?: string;
  /** Suspensions queued in the workflow, not yet applied. */
  queued: { request_id: string; reason?: string }[];
}

/**
 * Why a billing suspension must not be sent, or undefined when it may. The instance workflow lets a new
 * suspension replace the reason of an existing one; billing must never replace another reason (paying would
 * then lift an abuse suspension): suspended, or with another suspension queued, the instance is left alone.
 */
export function billingSuspensionRefusal(view: SuspensionView, request_id: string): string | undefined {
  const queued = view.queued.find((c) => c.request_id !== request_id);
  if (view.suspend_reason === undefined && !queued) return undefined;
  return `already suspended (${view.suspend_reason ?? String(queued?.reason)})`;
}
