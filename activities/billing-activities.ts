import { ApplicationFailure } from '@temporalio/activity';
import {
  type Client,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
  WorkflowUpdateStage,
} from '@temporalio/client';
import type { BillingStore } from '../db/billing-store.ts';
import {
  BILLING_ACTOR,
  BILLING_REASON,
  BILLING_SWEEP_STATES,
  type BillingSweepPhase,
  billingSuspensionRefusal,
  type SuspensionView,
  type SweepCursor,
  type SweepTarget,
} from '../domain/billing-policy.ts';
import type { Instance } from '../domain/instance.ts';
import type { CommandRequest, InstanceSnapshot } from '../workflows/messages.ts';

export interface FindSweepTargetsInput {
  phase: BillingSweepPhase;
  /** ISO time the sweep judges "past due beyond the grace period" against (fixed for a whole sweep). */
  as_of: string;
  after?: SweepCursor;
  limit: number;
}

export interface BillingCommandInput {
  command: BillingSweepPhase;
  instance_id: string;
  request_id: string;
}

/**
 * `accepted`: the instance workflow took the command (it runs it in its own time).
 * `refused`: its validator refused (the instance changed since the read model saw it; e.g. it is now
 * suspended for another reason). `gone`: the workflow has ended (the instance was deleted).
 */
export type BillingCommandOutcome =
  | { outcome: 'accepted' }
  | { outcome: 'refused' | 'gone'; message: string };

/** The instance workflow's own view of its suspension, or `gone` when the workflow has ended. */
export type SuspensionReading =
  | { outcome: 'read'; view: SuspensionView }
  | { outcome: 'gone'; message: string };

/** What the billing sweep workflow may ask of the outside world. The workflow imports this file as types only. */
export interface BillingActivities {
  findBillingSweepTargets(input: FindSweepTargetsInput): Promise<SweepTarget[]>;
  /** Asks the instance workflow itself (the read model may lag) whether it is suspended or has a suspension queued. */
  readSuspension(input: { instance_id: string }): Promise<SuspensionReading>;
  /** Sends the command the sweep decided on; waits only for the workflow to accept or refuse it. */
  submitBillingCommand(input: BillingCommandInput): Promise<BillingCommandOutcome>;
  /**
   * readSuspension, billingSuspensionRefusal and submitBillingCommand in one activity: what sweeps started before
   * the sweep workflow made that decision itself (patch `billing-policy-in-workflow`) still call.
   */
  sendBillingCommand(input: BillingCommandInput): Promise<BillingCommandOutcome>;
}

export interface BillingActivityDependencies {
  store: BillingStore;
  /** Sends the commands; without it readSuspension and submitBillingCommand fail (non-retryably). */
  client?: Client;
  /** How long a command may take to be accepted by the instance workflow. */
  acceptTimeoutMs?: number;
}

// The instance workflow's id and message names as workflows/messages.ts defines them; that module is imported
// as types only, so activities never load workflow code.
const instanceWorkflowId = (instanceId: string) => `instance/${instanceId}`;
const SNAPSHOT_QUERY = 'snapshot';

/** The billing sweep's reads (billing accounts joined with the read model) and its commands to instances. */
export function createBillingActivities(deps: BillingActivityDependencies): BillingActivities {
  const acceptTimeoutMs = deps.acceptTimeoutMs ?? 10_000;
  const deadline = () => Date.now() + acceptTimeoutMs;

  function clientOrFail(): Client {
    if (!deps.client) {
      throw ApplicationFailure.nonRetryable(
        'the worker was built without a Temporal client: billing commands cannot be sent',
        'internal',
      );
    }
    return deps.client;
  }

  const activities: BillingActivities = {
    findBillingSweepTargets: ({ phase, as_of, after, limit }) =>
      deps.store.sweepTargets({
        phase,
        asOf: new Date(as_of),
        states: BILLING_SWEEP_STATES,
        reason: BILLING_REASON,
        ...(after ? { after } : {}),
        limit,
      }),

    async readSuspension({ instance_id }) {
      const client = clientOrFail();
      const handle = client.workflow.getHandle(instanceWorkflowId(instance_id));
      try {
        const { instance, pending } = await client.withDeadline(deadline(), () =>
          handle.query<InstanceSnapshot>(SNAPSHOT_QUERY),
        );
        const queued = pending
          .filter((c) => c.name === 'suspend')
          .map((c) => {
            const reason = c.args?.reason;
            return { request_id: c.request_id, ...(reason === undefined ? {} : { reason: String(reason) }) };
          });
        return {
          outcome: 'read',
          view: {
            ...(instance.suspend_reason === undefined ? {} : { suspend_reason: instance.suspend_reason }),
            queued,
          },
        };
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return gone(instance_id);
        throw err;
      }
    },

    async submitBillingCommand({ command, instance_id, request_id }) {
      const client = clientOrFail();
      // The same request for both commands: unsuspend ignores the reason.
      const request: CommandRequest<'suspend'> = { request_id, actor: BILLING_ACTOR, reason: BILLING_REASON };
      const handle = client.workflow.getHandle(instanceWorkflowId(instance_id));
      try {
        // An update, not a signal: the validator tells at once whether the workflow takes the command, so the
        // sweep counts what it did. It waits only for acceptance, never for the containers to stop or start.
        const update = await client.withDeadline(deadline(), () =>
          handle.startUpdate<Instance, [CommandRequest<'suspend'>]>(command, {
            args: [request],
            updateId: request_id,
            waitForStage: WorkflowUpdateStage.ACCEPTED,
          }),
        );
        // A validator's refusal comes back inside the handle; a deadline already past reads it without a call.
        await client
          .withDeadline(Date.now() - 1, () => update.result())
          .catch((err) => {
            if (!(err instanceof WorkflowUpdateRPCTimeoutOrCancelledError)) throw err;
          });
        return { outcome: 'accepted' };
      } catch (err) {
        if (err instanceof WorkflowUpdateFailedError) {
          return { outcome: 'refused', message: err.cause?.message ?? err.message };
        }
        if (err instanceof WorkflowNotFoundError) return gone(instance_id);
        throw err;
      }
    },

    async sendBillingCommand(input) {
      if (input.command === 'suspend') {
        const reading = await activities.readSuspension({ instance_id: input.instance_id });
        if (reading.outcome === 'gone') return reading;
        const refusal = billingSuspensionRefusal(reading.view, input.request_id);
        if (refusal) return { outcome: 'refused', message: refusal };
      }
      return activities.submitBillingCommand(input);
    },
  };
  return activities;
}

function gone(instanceId: string): { outcome: 'gone'; message: string } {
  return { outcome: 'gone', message: `the workflow of instance ${instanceId} has ended` };
}
