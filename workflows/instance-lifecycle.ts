import {
  ActivityFailure,
  ApplicationFailure,
  condition,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { InstanceActivities } from '../activities/instance-activity-types';
import type { Instance } from '../domain/instance';
import type { InstanceState } from '../domain/instance-state';
import {
  COMMAND_PATHS,
  commandRefusal,
  type LifecycleCommandName,
  settledStateAfter,
  transitionError,
} from '../domain/state-machine';
import { COMMAND_REJECTED_EVENT, eventTypeFor } from './lifecycle-events';
import type { CommandRequest, InstanceSnapshot, InstanceWorkflowInput, QueuedCommand } from './messages';
import { StateAttribute, SuspendedAttribute } from './search-attributes';

const DEFAULT_MAX_COMMANDS_PER_RUN = 500;
const RECENT_REQUEST_IDS_KEPT = 1000;

type Outcome = { ok: true; instance: Instance } | { ok: false; code: string; message: string };

/**
 * Everything the instance workflow knows, and the only code that changes it. Message handlers call
 * `validate` and `enqueue`; the workflow loop calls `runNext`, one command at a time, in arrival order.
 */
export class InstanceLifecycle {
  instance: Instance;
  private seq: number;
  private provisioned: boolean;
  private readonly queue: QueuedCommand[];
  private readonly recentRequestIds: string[];
  private readonly outcomes = new Map<string, Outcome>();
  private readonly maxCommandsPerRun: number;
  private commandsThisRun = 0;

  constructor(
    input: InstanceWorkflowInput,
    private readonly activities: InstanceActivities,
  ) {
    this.instance = input.instance;
    this.seq = input.seq;
    this.provisioned = input.provisioned;
    this.queue = [...(input.pending ?? [])];
    this.recentRequestIds = [...(input.recent_request_ids ?? [])];
    this.maxCommandsPerRun = input.options?.maxCommandsPerRun ?? DEFAULT_MAX_COMMANDS_PER_RUN;
    if (!this.provisioned && !this.queue.some((c) => c.name === 'provision')) {
      this.queue.unshift({ name: 'provision', request_id: `provision/${this.instance.id}`, via: 'workflow' });
    }
  }

  /** Update validator: throws, without touching history, when the command cannot be accepted. */
  validate(name: LifecycleCommandName, request: CommandRequest): void {
    if (typeof request?.request_id !== 'string' || request.request_id.length === 0) {
      throw ApplicationFailure.nonRetryable('request_id is required', 'invalid_request');
    }
    if (this.isKnownRequest(request.request_id)) return;
    const refusal = this.refusalAfterQueue(name);
    if (refusal) throw ApplicationFailure.nonRetryable(refusal, 'invalid_state');
  }

  /** Update handler: queue the command and resolve with its outcome. */
  async submit(name: LifecycleCommandName, request: CommandRequest): Promise<Instance> {
    if (!this.isKnownRequest(request.request_id)) this.enqueue(name, request, 'update');
    await condition(
      () => this.outcomes.has(request.request_id) || this.isForgottenOutcome(request.request_id),
    );
    const outcome = this.outcomes.get(request.request_id);
    if (!outcome) return this.instance; // applied in an earlier run; its outcome is the current state
    if (!outcome.ok) throw ApplicationFailure.nonRetryable(outcome.message, outcome.code);
    return outcome.instance;
  }

  /** Signal handler: a command nobody waits for. An invalid one is recorded as rejected, not applied. */
  signal(name: LifecycleCommandName, request: CommandRequest): void {
    if (typeof request?.request_id !== 'string' || request.request_id.length === 0) return;
    if (this.isKnownRequest(request.request_id)) return;
    this.enqueue(name, request, 'signal');
  }

  snapshot(): InstanceSnapshot {
    return { instance: this.instance, seq: this.seq, pending: [...this.queue] };
  }

  pendingCommands(): QueuedCommand[] {
    return [...this.queue];
  }

  hasWork(): boolean {
    return this.queue.length > 0;
  }

  isDestroyed(): boolean {
    return this.instance.state === 'destroyed';
  }

  shouldContinueAsNew(): boolean {
    if (this.queue.length > 0) return false;
    return this.commandsThisRun >= this.maxCommandsPerRun || workflowInfo().continueAsNewSuggested;
  }

  continueAsNewInput(options: InstanceWorkflowInput['options']): InstanceWorkflowInput {
    return {
      instance: this.instance,
      seq: this.seq,
      provisioned: this.provisioned,
      pending: [...this.queue],
      recent_request_ids: this.recentRequestIds.slice(-RECENT_REQUEST_IDS_KEPT),
      options,
    };
  }

  async runNext(): Promise<void> {
    const command = this.queue[0];
    if (!command) return;
    const outcome = await this.execute(command);
    this.queue.shift();
    this.commandsThisRun += 1;
    this.outcomes.set(command.request_id, outcome);
    this.recentRequestIds.push(command.request_id);
    if (this.recentRequestIds.length > RECENT_REQUEST_IDS_KEPT * 2) {
      this.recentRequestIds.splice(0, this.recentRequestIds.length - RECENT_REQUEST_IDS_KEPT);
    }
  }

  private async execute(command: QueuedCommand): Promise<Outcome> {
    if (command.name === 'provision') return this.provision(command);
    const refusal = commandRefusal(command.name, this.instance.state);
    if (refusal) {
      await this.recordRejection(command, refusal);
      return { ok: false, code: 'invalid_state', message: refusal };
    }
    const [intermediate, settled] = COMMAND_PATHS[command.name];
    await this.transition(intermediate, command);
    try {
      const call = { provider_name: this.instance.provider_name, instance_id: this.instance.id };
      if (command.name === 'start')
        this.instance.endpoints = (await this.activities.startInstance(call)).endpoints;
      else if (command.name === 'stop') await this.activities.stopInstance(call);
      else await this.activities.deprovisionInstance(call);
    } catch (err) {
      return this.fail(command, err);
    }
    await this.transition(settled, command);
    return { ok: true, instance: this.instance };
  }

  private async provision(command: QueuedCommand): Promise<Outcome> {
    if (this.seq === 0) await this.transition('provisioning', command);
    try {
      const result = await this.activities.provisionInstance({
        provider_name: this.instance.provider_name,
        request: {
          instance_id: this.instance.id,
          tenant_id: this.instance.tenant_id,
          name: this.instance.name,
          kind: this.instance.kind,
          services: this.instance.services ?? [],
          labels: this.instance.labels,
        },
      });
      this.provisioned = true;
      this.instance = {
        ...this.instance,
        provider_ref: result.provider_ref,
        service_refs: result.service_refs,
        endpoints: result.endpoints,
      };
      await this.transition('starting', command);
      const started = await this.activities.startInstance({
        provider_name: this.instance.provider_name,
        instance_id: this.instance.id,
      });
      this.instance.endpoints = started.endpoints;
    } catch (err) {
      return this.fail(command, err);
    }
    await this.transition('running', command);
    return { ok: true, instance: this.instance };
  }

  private async fail(command: QueuedCommand, err: unknown): Promise<Outcome> {
    if (!(err instanceof ActivityFailure)) throw err;
    const cause = err.cause;
    const message = `${command.name} failed: ${cause?.message ?? err.message}`;
    const code = cause instanceof ApplicationFailure && cause.type ? cause.type : 'provider_failed';
    await this.transition('failed', command, message);
    return { ok: false, code, message };
  }

  private async transition(to: InstanceState, command: QueuedCommand, error?: string): Promise<void> {
    const from = this.instance.state;
    if (from !== to) {
      const refusal = transitionError(from, to);
      // The command paths only take moves the table allows; reaching this is a bug, so fail loudly and visibly.
      if (refusal) throw ApplicationFailure.nonRetryable(`internal: ${refusal}`, 'invalid_state');
    }
    this.seq += 1;
    this.instance = {
      ...this.instance,
      state: to,
      updated_at: new Date().toISOString(),
      error: to === 'failed' ? error : undefined,
    };
    upsertSearchAttributes([
      { key: StateAttribute, value: to },
      { key: SuspendedAttribute, value: this.instance.suspended_at !== undefined },
    ]);
    await this.activities.recordTransition({
      instance: this.instance,
      seq: this.seq,
      event: {
        type: eventTypeFor(to, command.name),
        payload: {
          from,
          to,
          command: command.name,
          request_id: command.request_id,
          ...(command.actor ? { actor: command.actor } : {}),
          ...(error ? { error } : {}),
        },
      },
    });
  }

  private async recordRejection(command: QueuedCommand, reason: string): Promise<void> {
    // Update validators already refused what they could see; this is a signal, or an update whose
    // preconditions changed while it waited in the queue.
    this.seq += 1;
    await this.activities.recordTransition({
      instance: this.instance,
      seq: this.seq,
      event: {
        type: COMMAND_REJECTED_EVENT,
        payload: { command: command.name, request_id: command.request_id, via: command.via, reason },
      },
    });
  }

  /** The state the instance will have settled in once every queued command has succeeded. */
  private refusalAfterQueue(name: LifecycleCommandName): string | undefined {
    let state = this.instance.state;
    for (const queued of this.queue) {
      if (queued.name === 'provision') state = 'running';
      else if (commandRefusal(queued.name, state) === undefined) state = settledStateAfter(queued.name);
    }
    return commandRefusal(name, state);
  }

  private isKnownRequest(requestId: string): boolean {
    return (
      this.outcomes.has(requestId) ||
      this.recentRequestIds.includes(requestId) ||
      this.queue.some((c) => c.request_id === requestId)
    );
  }

  private isForgottenOutcome(requestId: string): boolean {
    return !this.queue.some((c) => c.request_id === requestId) && this.recentRequestIds.includes(requestId);
  }

  private enqueue(name: LifecycleCommandName, request: CommandRequest, via: QueuedCommand['via']): void {
    this.queue.push({ name, request_id: request.request_id, actor: request.actor, via });
  }
}
