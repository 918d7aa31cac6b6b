import { ApplicationFailure, condition, patched, workflowInfo } from '@temporalio/workflow';
import { commandRefusal, type InstanceView, viewAfter } from '../domain/command-rules.ts';
import type { CommandName } from '../domain/commands.ts';
import type { Instance } from '../domain/instance.ts';
import { autoActionCommand, type NextAutoAction } from '../domain/lifecycle-policy.ts';
import type { CommandRequest, InstanceWorkflowInput, QueuedCommand } from './messages.ts';
import { RequestTraces } from './request-traces.ts';
import { commandWork, fromQueued, type Outcome, toQueued, type WorkItem } from './work-items.ts';

const RECENT_REQUEST_IDS_KEPT = 1000;
/** Patch: a signal without a request_id (sent by hand) is applied under a derived one; it used to be dropped. */
const DERIVED_SIGNAL_REQUEST_IDS = 'derived-signal-request-ids';

/**
 * The instance workflow's queue and its memory of requests: message handlers validate and submit (updates) or
 * signal (signals) into it, the loop takes the next item and concludes it. A request id seen before is not
 * applied again, in this run (outcomes) or an earlier one (recent ids, carried across continue-as-new).
 * Nothing here calls an activity.
 */
export class CommandInbox {
  private readonly queue: WorkItem[];
  private readonly recentRequestIds: string[];
  private readonly outcomes = new Map<string, Outcome>();
  private readonly traces = new RequestTraces();
  private concludedThisRun = 0;
  private driftChecks = 0;
  private derivedRequestIds = 0;

  constructor(
    carried: Pick<InstanceWorkflowInput, 'pending' | 'recent_request_ids'>,
    /** The instance as it is now, for the rules to judge a new command against. */
    private readonly currentView: () => InstanceView,
    private readonly currentInstance: () => Instance,
  ) {
    this.queue = (carried.pending ?? []).map(fromQueued);
    this.recentRequestIds = [...(carried.recent_request_ids ?? [])];
  }

  /** Update validator: throws, without touching history, when the command cannot be accepted. */
  validate(name: CommandName, request: CommandRequest): void {
    const requestId = requestIdOf(request);
    if (requestId === undefined) {
      throw ApplicationFailure.nonRetryable('request_id is required', 'invalid_request');
    }
    if (this.isKnownRequest(requestId)) return;
    const work = commandWork(name, argsOf(request), { request_id: requestId, via: 'update' });
    const refusal =
      work.kind === 'invalid_command' ? work.refusal : commandRefusal(work.command, this.viewAfterQueue());
    if (refusal) throw ApplicationFailure.nonRetryable(refusal.message, refusal.code);
  }

  /** Update handler: queue the command and resolve with its outcome. */
  async submit(name: CommandName, request: CommandRequest): Promise<Instance> {
    const requestId = request.request_id;
    if (!this.isKnownRequest(requestId)) this.enqueue(name, request, requestId, 'update');
    await condition(() => this.outcomes.has(requestId) || this.isForgottenOutcome(requestId));
    const outcome = this.outcomes.get(requestId);
    if (!outcome) return this.currentInstance(); // applied in an earlier run; its outcome is the current state
    if (!outcome.ok) throw ApplicationFailure.nonRetryable(outcome.message, outcome.code);
    return outcome.instance;
  }

  /**
   * Signal handler: a command nobody waits for. One without a request_id (the Temporal CLI or UI sends none,
   * or no input at all) gets one derived from its place among this run's signals, the same on every replay.
   * An invalid one is recorded as rejected when its turn comes, not applied.
   */
  signal(name: CommandName, request: CommandRequest | undefined): void {
    const requestId = requestIdOf(request) ?? this.deriveRequestId();
    if (requestId === undefined || this.isKnownRequest(requestId)) return;
    this.enqueue(name, request, requestId, 'signal');
  }

  /** The first provision goes first. */
  requestProvision(instanceId: string): void {
    if (this.queue.some((item) => item.kind === 'provision')) return;
    this.queue.unshift({ kind: 'provision', request_id: `provision/${instanceId}` });
  }

  /** A drift check, unless commands are waiting (they come first; the next check will look). */
  requestDriftCheck(): void {
    if (this.queue.length > 0) return;
    this.driftChecks += 1;
    this.queue.push({
      kind: 'reconcile',
      request_id: `reconcile/${workflowInfo().runId}/${this.driftChecks}`,
    });
  }

  /** A lifecycle policy fell due: its command, under a request id naming the action and its time. */
  requestAutoAction(action: NextAutoAction): void {
    const requestId = `${action.action}/${action.at}`;
    if (this.isKnownRequest(requestId)) return;
    this.queue.push({
      kind: 'command',
      command: autoActionCommand(action.action),
      request_id: requestId,
      via: 'workflow',
      auto: action,
    });
  }

  /** A provider watcher saw a change: look again after what is queued, unless a later look is queued already. */
  requestObservation(): void {
    if (this.queue.slice(1).some((item) => item.kind === 'reconcile')) return;
    this.driftChecks += 1;
    this.queue.push({
      kind: 'reconcile',
      request_id: `reconcile/${workflowInfo().runId}/${this.driftChecks}`,
    });
  }

  hasWork(): boolean {
    return this.queue.length > 0;
  }

  /** The item to run next; it stays queued (and its request id known) until `conclude`. */
  next(): WorkItem | undefined {
    return this.queue[0];
  }

  /** Runs `item` in the trace of the request that asked for it. */
  runInTraceOf<T>(item: WorkItem, work: () => Promise<T>): Promise<T> {
    return this.traces.within(item.request_id, work);
  }

  /** Takes the item run last off the queue and answers whoever waits for it. */
  conclude(item: WorkItem, outcome: Outcome): void {
    this.queue.shift();
    this.concludedThisRun += 1;
    if (item.kind === 'reconcile') return;
    this.outcomes.set(item.request_id, outcome);
    this.recentRequestIds.push(item.request_id);
    if (this.recentRequestIds.length > RECENT_REQUEST_IDS_KEPT * 2) {
      this.recentRequestIds.splice(0, this.recentRequestIds.length - RECENT_REQUEST_IDS_KEPT);
    }
  }

  /** Items run to their end in this run: continue-as-new comes after a number of them. */
  get concluded(): number {
    return this.concludedThisRun;
  }

  pending(): QueuedCommand[] {
    return this.queue.map(toQueued);
  }

  /** This part of the continue-as-new input. */
  carryOver(): Pick<InstanceWorkflowInput, 'pending' | 'recent_request_ids'> {
    return {
      pending: this.pending(),
      recent_request_ids: this.recentRequestIds.slice(-RECENT_REQUEST_IDS_KEPT),
    };
  }

  /** The instance as it will be once every queued command has succeeded. */
  private viewAfterQueue(): InstanceView {
    let view = this.currentView();
    for (const item of this.queue) {
      if (item.kind === 'provision') view = { ...view, state: 'running' };
      else if (item.kind === 'command' && !commandRefusal(item.command, view))
        view = viewAfter(item.command, view);
    }
    return view;
  }

  private enqueue(
    name: CommandName,
    request: CommandRequest | undefined,
    requestId: string,
    via: 'update' | 'signal',
  ): void {
    const actor = typeof request?.actor === 'string' && request.actor ? request.actor : undefined;
    this.traces.remember(requestId);
    this.queue.push(
      commandWork(name, argsOf(request), { request_id: requestId, ...(actor ? { actor } : {}), via }),
    );
  }

  private deriveRequestId(): string | undefined {
    // Before the patch such a signal was dropped: histories from then replay without applying it.
    if (!patched(DERIVED_SIGNAL_REQUEST_IDS)) return undefined;
    this.derivedRequestIds += 1;
    return `signal/${workflowInfo().runId}/${this.derivedRequestIds}`;
  }

  private isKnownRequest(requestId: string): boolean {
    return (
      this.outcomes.has(requestId) ||
      this.recentRequestIds.includes(requestId) ||
      this.queue.some((item) => item.request_id === requestId)
    );
  }

  private isForgottenOutcome(requestId: string): boolean {
    return (
      !this.queue.some((item) => item.request_id === requestId) && this.recentRequestIds.includes(requestId)
    );
  }
}

function requestIdOf(request: unknown): string | undefined {
  if (typeof request !== 'object' || request === null) return undefined;
  const id = (request as { request_id?: unknown }).request_id;
  return typeof id === 'string' && id.length > 0 ? id : undefined;
}

/** The command's arguments: the request without its request_id and actor. */
function argsOf(request: unknown): unknown {
  if (request === undefined || request === null) return {};
  if (typeof request !== 'object') return request;
  const { request_id: _id, actor: _actor, ...args } = request as Record<string, unknown>;
  return args;
}
