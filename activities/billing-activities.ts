import { ApplicationFailure } from '@temporalio/activity';
import {
  type Client,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
  WorkflowUpdateStage,
} from '@temporalio/client';
import type { Orm } from '../db/database.ts';
import {
  type CommandRequest,
  commandMessages,
  instanceWorkflowId,
  snapshotQuery,
} from '../workflows/messages.ts';

/** The reason the billing sweep suspends with, and the only suspension it lifts. */
export const BILLING_REASON = 'billing';
/** `actor` of the commands the sweep sends, kept on the instances' lifecycle events. */
export const BILLING_ACTOR = 'system:billing-sweep';

export type BillingSweepPhase = 'suspend' | 'unsuspend';

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

/** What the billing sweep workflow may ask of the outside world. The workflow imports this file as types only. */
export interface BillingActivities {
  findBillingSweepTargets(input: FindSweepTargetsInput): Promise<SweepTarget[]>;
  sendBillingCommand(input: BillingCommandInput): Promise<BillingCommandOutcome>;
}

export interface BillingActivityDependencies {
  orm: Orm;
  /** Sends the commands; without it sendBillingCommand fails (non-retryably). */
  client?: Client;
  /** How long a command may take to be accepted by the instance workflow. */
  acceptTimeoutMs?: number;
}

/**
 * Only settled instances: one in the middle of a transition (provisioning, starting, stopping, destroying)
 * is picked up by the next sweep, once the read model shows where it ended.
 */
const SETTLED_STATES = `('running', 'stopped', 'failed')`;

const SUSPEND_TARGETS = `
  select i.tenant_id, i.id as instance_id, i.seq
  from billing_accounts a
  join instances i on i.tenant_id = a.tenant_id
  where a.status = 'past_due'
    and a.past_due_since + make_interval(secs => a.grace_period_seconds) <= ?
    and i.state in ${SETTLED_STATES}
    and i.suspend_reason is null
    and (i.tenant_id, i.id) > (?, ?)
  order by i.tenant_id, i.id
  limit ?`;

const UNSUSPEND_TARGETS = `
  select i.tenant_id, i.id as instance_id, i.seq
  from billing_accounts a
  join instances i on i.tenant_id = a.tenant_id
  where a.status = 'active'
    and i.suspend_reason = ?
    and i.state in ${SETTLED_STATES}
    and (i.tenant_id, i.id) > (?, ?)
  order by i.tenant_id, i.id
  limit ?`;

/** The billing sweep's reads (billing accounts joined with the read model) and its commands to instances. */
export function createBillingActivities(deps: BillingActivityDependencies): BillingActivities {
  const acceptTimeoutMs = deps.acceptTimeoutMs ?? 10_000;
  return {
    async findBillingSweepTargets({ phase, as_of, after, limit }) {
      const position = [after?.tenant_id ?? '', after?.instance_id ?? ''];
      const [sql, first] =
        phase === 'suspend' ? [SUSPEND_TARGETS, new Date(as_of)] : [UNSUSPEND_TARGETS, BILLING_REASON];
      const rows = await deps.orm.em
        .fork()
        .getConnection()
        .execute<{ tenant_id: string; instance_id: string; seq: number }[]>(sql, [first, ...position, limit]);
      return rows.map((r) => ({ tenant_id: r.tenant_id, instance_id: r.instance_id, seq: Number(r.seq) }));
    },

    async sendBillingCommand({ command, instance_id, request_id }) {
      const client = deps.client;
      if (!client) {
        throw ApplicationFailure.nonRetryable(
          'the worker was built without a Temporal client: billing commands cannot be sent',
          'internal',
        );
      }
      const request: CommandRequest<'suspend'> = { request_id, actor: BILLING_ACTOR, reason: BILLING_REASON };
      const handle = client.workflow.getHandle(instanceWorkflowId(instance_id));
      const deadline = () => Date.now() + acceptTimeoutMs;
      try {
        if (command === 'suspend') {
          // The instance workflow lets a new suspension replace the reason of an existing one; billing must never
          // replace another reason (paying would then lift an abuse suspension). The read model may lag, so
          // ask the workflow itself: suspended, or with a suspension queued, it is left alone.
          const { instance, pending } = await client.withDeadline(deadline(), () =>
            handle.query(snapshotQuery),
          );
          const queued = pending.find((c) => c.name === 'suspend' && c.request_id !== request_id);
          if (instance.suspend_reason !== undefined || queued) {
            const reason = instance.suspend_reason ?? String(queued?.args?.reason);
            return { outcome: 'refused', message: `already suspended (${reason})` };
          }
        }
        // An update, not a signal: the validator tells at once whether the workflow takes the command, so the
        // sweep counts what it did. It waits only for acceptance, never for the containers to stop or start.
        const update = await client.withDeadline(deadline(), () =>
          handle.startUpdate(
            commandMessages[command].update as (typeof commandMessages)['suspend']['update'],
            {
              args: [request],
              updateId: request_id,
              waitForStage: WorkflowUpdateStage.ACCEPTED,
            },
          ),
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
        if (err instanceof WorkflowNotFoundError) {
          return { outcome: 'gone', message: `the workflow of instance ${instance_id} has ended` };
        }
        throw err;
      }
    },
  };
}
