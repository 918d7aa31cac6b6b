import {
  ActivityFailure,
  ApplicationFailure,
  condition,
  patched,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { InstanceActivities } from '../activities/instance-activity-types.ts';
import {
  type CommandName,
  commandRefusal,
  type InstanceView,
  type Refusal,
  viewAfter,
} from '../domain/commands.ts';
import {
  type Instance,
  mainService,
  type ResourceSpec,
  type ServiceSpec,
  slugify,
} from '../domain/instance.ts';
import type { InstanceState } from '../domain/instance-state.ts';
import { secretBindingsOf } from '../domain/sources/secret-bindings.ts';
import { transitionError } from '../domain/state-machine.ts';
import {
  COMMAND_FAILED_EVENT,
  COMMAND_REJECTED_EVENT,
  DRIFT_EVENT,
  eventTypeFor,
} from './lifecycle-events.ts';
import type { CommandRequest, InstanceSnapshot, InstanceWorkflowInput, QueuedCommand } from './messages.ts';
import { StateAttribute, SuspendedAttribute } from './search-attributes.ts';

const DEFAULT_MAX_COMMANDS_PER_RUN = 500;
const RECENT_REQUEST_IDS_KEPT = 1000;
/** Patch: restart uses the provider's restart (rolling on Kubernetes) instead of a stop and a start. */
const RESTART_THROUGH_PROVIDER = 'restart-through-provider';
/** Patch: starting an instance whose provision failed provisions it first (it used to start nothing). */
const PROVISION_BEFORE_FIRST_START = 'provision-before-first-start';

type Outcome = { ok: true; instance: Instance } | { ok: false; code: string; message: string };
type Conclusion = 'succeeded' | 'failed' | 'rejected';

interface RecordOptions {
  /** Event type; by default derived from the state entered. */
  type?: string;
  error?: string;
  payload?: Record<string, unknown>;
  /** Set on the event that ends a command, so every accepted command has exactly one concluding event. */
  conclusion?: Conclusion;
}

/**
 * Everything the instance workflow knows, and the only code that changes it. Message handlers call
 * `validate` and `enqueue`; the workflow loop calls `runNext`, one command at a time, in arrival order.
 */
export class InstanceLifecycle {
  instance: Instance;
  private seq: number;
  private provisioned: boolean;
  private resumeState: InstanceWorkflowInput['resume_state'];
  private specChanged: boolean;
  private readonly deployment: InstanceWorkflowInput['deployment'];
  private readonly queue: QueuedCommand[];
  private readonly recentRequestIds: string[];
  private readonly outcomes = new Map<string, Outcome>();
  private readonly maxCommandsPerRun: number;
  private commandsThisRun = 0;
  private reconciles = 0;

  constructor(
    input: InstanceWorkflowInput,
    private readonly activities: InstanceActivities,
  ) {
    this.instance = input.instance;
    this.seq = input.seq;
    this.provisioned = input.provisioned;
    this.resumeState = input.resume_state;
    this.specChanged = input.spec_changed ?? false;
    this.deployment = input.deployment;
    this.queue = [...(input.pending ?? [])];
    this.recentRequestIds = [...(input.recent_request_ids ?? [])];
    this.maxCommandsPerRun = input.options?.maxCommandsPerRun ?? DEFAULT_MAX_COMMANDS_PER_RUN;
    if (!this.provisioned && !this.queue.some((c) => c.name === 'provision')) {
      this.queue.unshift({ name: 'provision', request_id: `provision/${this.instance.id}`, via: 'workflow' });
    }
  }

  /** Update validator: throws, without touching history, when the command cannot be accepted. */
  validate(name: CommandName, request: CommandRequest): void {
    if (typeof request?.request_id !== 'string' || request.request_id.length === 0) {
      throw ApplicationFailure.nonRetryable('request_id is required', 'invalid_request');
    }
    if (this.isKnownRequest(request.request_id)) return;
    const refusal = commandRefusal(name, this.viewAfterQueue(), argsOf(request));
    if (refusal) throw ApplicationFailure.nonRetryable(refusal.message, refusal.code);
  }

  /** Update handler: queue the command and resolve with its outcome. */
  async submit(name: CommandName, request: CommandRequest): Promise<Instance> {
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
  signal(name: CommandName, request: CommandRequest): void {
    if (typeof request?.request_id !== 'string' || request.request_id.length === 0) return;
    if (this.isKnownRequest(request.request_id)) return;
    this.enqueue(name, request, 'signal');
  }

  /** Queues a drift check, unless the instance is busy or gone. */
  requestReconcile(): void {
    if (this.queue.length > 0 || !this.provisioned || this.isDestroyed()) return;
    this.reconciles += 1;
    this.queue.push({
      name: 'reconcile',
      request_id: `reconcile/${workflowInfo().runId}/${this.reconciles}`,
      via: 'workflow',
    });
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
      ...(this.resumeState ? { resume_state: this.resumeState } : {}),
      ...(this.specChanged ? { spec_changed: true } : {}),
      ...(this.deployment ? { deployment: this.deployment } : {}),
      options,
    };
  }

  async runNext(): Promise<void> {
    const command = this.queue[0];
    if (!command) return;
    const outcome = await this.execute(command);
    this.queue.shift();
    this.commandsThisRun += 1;
    if (command.name === 'reconcile') return;
    this.outcomes.set(command.request_id, outcome);
    this.recentRequestIds.push(command.request_id);
    if (this.recentRequestIds.length > RECENT_REQUEST_IDS_KEPT * 2) {
      this.recentRequestIds.splice(0, this.recentRequestIds.length - RECENT_REQUEST_IDS_KEPT);
    }
  }

  private async execute(command: QueuedCommand): Promise<Outcome> {
    if (command.name === 'provision') return this.provision(command);
    if (command.name === 'reconcile') return this.reconcile(command);
    const refusal = commandRefusal(command.name, this.view(), command.args ?? {});
    if (refusal) return this.reject(command, refusal);
    switch (command.name) {
      case 'start':
        return this.start(command);
      case 'stop':
        return this.stop(command);
      case 'restart':
        return this.restart(command);
      case 'delete':
        return this.delete(command);
      case 'scale':
        return this.scale(command);
      case 'suspend':
        return this.suspend(command);
      case 'unsuspend':
        return this.unsuspend(command);
      case 'update':
        return this.update(command);
    }
  }

  private async provision(command: QueuedCommand): Promise<Outcome> {
    if (this.seq === 0) await this.transition('provisioning', command);
    try {
      await this.provisionServices();
      await this.transition('starting', command);
      await this.startServices();
    } catch (err) {
      return this.fail(command, err);
    }
    return this.succeed(command, 'running');
  }

  private async start(command: QueuedCommand): Promise<Outcome> {
    await this.transition('starting', command);
    try {
      // Nothing provisioned yet (the provision failed) or new services while stopped: provision first.
      const neverProvisioned = !this.provisioned && patched(PROVISION_BEFORE_FIRST_START);
      if (this.specChanged || neverProvisioned) await this.provisionServices();
      await this.startServices();
    } catch (err) {
      return this.fail(command, err);
    }
    return this.succeed(command, 'running');
  }

  private async stop(command: QueuedCommand): Promise<Outcome> {
    await this.transition('stopping', command);
    try {
      await this.activities.stopInstance(this.providerCall());
    } catch (err) {
      return this.fail(command, err);
    }
    return this.succeed(command, 'stopped');
  }

  /**
   * The provider's own restart (a rolling restart on Kubernetes), with the path it stands for recorded:
   * stopping, stopped, starting, running.
   */
  private async restart(command: QueuedCommand): Promise<Outcome> {
    try {
      if (patched(RESTART_THROUGH_PROVIDER)) {
        await this.transition('stopping', command);
        await this.transition('stopped', command);
        await this.transition('starting', command);
        const restarted = await this.activities.restartInstance(this.providerCall());
        this.instance = { ...this.instance, endpoints: restarted.endpoints };
      } else {
        // Instances whose history began before the patch restart the way they started: stop, then start.
        await this.transition('stopping', command);
        await this.activities.stopInstance(this.providerCall());
        await this.transition('stopped', command);
        await this.transition('starting', command);
        await this.startServices();
      }
    } catch (err) {
      return this.fail(command, err);
    }
    return this.succeed(command, 'running');
  }

  private async delete(command: QueuedCommand): Promise<Outcome> {
    await this.transition('destroying', command);
    try {
      await this.activities.deprovisionInstance(this.providerCall());
    } catch (err) {
      return this.fail(command, err);
    }
    return this.succeed(command, 'destroyed');
  }

  /** Scale changes limits, not the state: a failed scale leaves the instance as it was. */
  private async scale(command: QueuedCommand): Promise<Outcome> {
    const services = this.instance.services ?? [];
    const main = mainService(services);
    if (!main)
      return this.reject(command, {
        code: 'invalid_request',
        message: 'scale: the instance has no main service',
      });
    const args = command.args ?? {};
    const merged: ResourceSpec = {
      ...main.resources,
      ...(args.cpu_millis !== undefined ? { cpu_millis: Number(args.cpu_millis) } : {}),
      ...(args.memory_mb !== undefined ? { memory_mb: Number(args.memory_mb) } : {}),
      ...(args.replicas !== undefined ? { replicas: Number(args.replicas) } : {}),
    };
    try {
      await this.activities.scaleInstance({ ...this.providerCall(), resources: merged });
    } catch (err) {
      return this.commandFailed(command, err);
    }
    this.setServices(services.map((s) => (s === main ? { ...s, resources: merged } : s)));
    await this.record(command, {
      type: 'instance.scaled',
      payload: { cpu_millis: merged.cpu_millis, memory_mb: merged.memory_mb, replicas: merged.replicas },
      conclusion: 'succeeded',
    });
    return { ok: true, instance: this.instance };
  }

  private async suspend(command: QueuedCommand): Promise<Outcome> {
    const reason = String(command.args?.reason);
    const resumeState =
      this.instance.suspend_reason !== undefined ? this.resumeState : runState(this.instance.state);
    if (this.instance.state === 'running') {
      await this.transition('stopping', command);
      try {
        await this.activities.stopInstance(this.providerCall());
      } catch (err) {
        return this.fail(command, err);
      }
      this.markSuspended(reason, resumeState);
      return this.succeed(command, 'stopped', { payload: { reason } });
    }
    this.markSuspended(reason, resumeState);
    await this.record(command, { type: 'instance.suspended', payload: { reason }, conclusion: 'succeeded' });
    return { ok: true, instance: this.instance };
  }

  private async unsuspend(command: QueuedCommand): Promise<Outcome> {
    const reason = this.instance.suspend_reason;
    const resume = this.resumeState;
    this.resumeState = undefined;
    this.instance = { ...this.instance, suspended_at: undefined, suspend_reason: undefined };
    if (resume === 'running' && this.instance.state === 'stopped') {
      await this.transition('starting', command, { payload: { reason } });
      try {
        await this.startServices();
      } catch (err) {
        return this.fail(command, err);
      }
      return this.succeed(command, 'running', { payload: { reason } });
    }
    await this.record(command, {
      type: 'instance.unsuspended',
      payload: { reason },
      conclusion: 'succeeded',
    });
    return { ok: true, instance: this.instance };
  }

  /** Rename, relabel or respecify. New services are applied at once to a running instance, else at next start. */
  private async update(command: QueuedCommand): Promise<Outcome> {
    const args = command.args ?? {};
    const changed: string[] = [];
    if (typeof args.name === 'string' && args.name !== this.instance.name) {
      const slug = slugify(args.name);
      if (slug !== this.instance.slug) {
        try {
          await this.activities.reserveSlug({
            tenant_id: this.instance.tenant_id,
            instance_id: this.instance.id,
            slug,
          });
        } catch (err) {
          return this.commandFailed(command, err);
        }
      }
      this.instance = { ...this.instance, name: args.name, slug };
      changed.push('name');
    }
    if (args.labels !== undefined) {
      this.instance = { ...this.instance, labels: args.labels as Record<string, string> };
      changed.push('labels');
    }
    if (args.services !== undefined) {
      this.setServices(args.services as ServiceSpec[]);
      changed.push('services');
      if (this.instance.state === 'running') {
        try {
          await this.provisionServices();
          await this.startServices();
        } catch (err) {
          return this.fail(command, err);
        }
      } else {
        this.specChanged = true;
      }
    }
    await this.record(command, { type: 'instance.updated', payload: { changed }, conclusion: 'succeeded' });
    return { ok: true, instance: this.instance };
  }

  /**
   * Drift: compares the provider's view with the workflow's and records what happened outside. A suspended
   * instance found running is stopped again; anything else found changed is recorded as a transition.
   */
  private async reconcile(command: QueuedCommand): Promise<Outcome> {
    const state = this.instance.state;
    if (state !== 'running' && state !== 'stopped' && state !== 'failed')
      return { ok: true, instance: this.instance };
    let observed: { state: InstanceState; message?: string };
    try {
      observed = await this.activities.observeInstance(this.providerCall());
    } catch {
      return { ok: true, instance: this.instance }; // the provider is away; look again at the next check
    }
    const drift = { observed: observed.state, ...(observed.message ? { message: observed.message } : {}) };
    const suspended = this.instance.suspend_reason !== undefined;
    try {
      // Pods still coming up (provisioning, starting) are not drift; gone, stopped or failed parts are.
      if (state === 'running' && ['failed', 'stopped', 'destroyed'].includes(observed.state)) {
        const error = `drift: the provider reports the instance ${observed.state}${observed.message ? `: ${observed.message}` : ''}`;
        await this.transition('failed', command, { type: DRIFT_EVENT, error, payload: drift });
      } else if (state !== 'running' && observed.state === 'running') {
        if (suspended) {
          await this.activities.stopInstance(this.providerCall());
          await this.record(command, {
            type: DRIFT_EVENT,
            payload: { ...drift, action: 'stopped again: suspended' },
          });
        } else {
          await this.transition('starting', command, { type: DRIFT_EVENT, payload: drift });
          await this.transition('running', command, { type: DRIFT_EVENT, payload: drift });
        }
      }
    } catch (err) {
      if (!(err instanceof ActivityFailure)) throw err;
    }
    return { ok: true, instance: this.instance };
  }

  private async provisionServices(): Promise<void> {
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
      ...(this.instance.source ? { source: this.instance.source } : {}),
      ...(this.deployment?.variables ? { variables: this.deployment.variables } : {}),
      ...(this.deployment?.variable_values ? { variable_values: this.deployment.variable_values } : {}),
      region: this.instance.region,
    });
    this.provisioned = true;
    this.specChanged = false;
    this.instance = {
      ...this.instance,
      provider_ref: result.provider_ref,
      service_refs: result.service_refs,
      endpoints: result.endpoints,
    };
  }

  private async startServices(): Promise<void> {
    const started = await this.activities.startInstance(this.providerCall());
    this.instance = { ...this.instance, endpoints: started.endpoints };
  }

  /** Which instance a provider call is about; its secret references let the activity redact their values. */
  private providerCall() {
    const bindings = secretBindingsOf(this.deployment?.variables);
    return {
      provider_name: this.instance.provider_name,
      instance_id: this.instance.id,
      ...(this.instance.source?.type ? { source_type: this.instance.source.type } : {}),
      ...(bindings.length > 0 ? { secret_refs: { tenant_id: this.instance.tenant_id, bindings } } : {}),
    };
  }

  /** New services, mirrored into a services source (a helm, manifests or argocd source is left as submitted). */
  private setServices(services: ServiceSpec[]): void {
    const source = this.instance.source;
    this.instance = {
      ...this.instance,
      services,
      source: !source || source.type === 'services' ? { type: 'services', services } : source,
    };
  }

  private markSuspended(reason: string, resumeState: InstanceWorkflowInput['resume_state']): void {
    this.resumeState = resumeState;
    this.instance = { ...this.instance, suspended_at: new Date().toISOString(), suspend_reason: reason };
  }

  private async succeed(
    command: QueuedCommand,
    to: InstanceState,
    options: RecordOptions = {},
  ): Promise<Outcome> {
    await this.transition(to, command, { ...options, conclusion: 'succeeded' });
    return { ok: true, instance: this.instance };
  }

  /** A provider call failed after its retries: the instance is `failed`, with the reason kept on it. */
  private async fail(command: QueuedCommand, err: unknown): Promise<Outcome> {
    const { code, message } = failureOf(command, err);
    await this.transition('failed', command, { error: message, conclusion: 'failed' });
    return { ok: false, code, message };
  }

  /** A command that could not be done but did not change the instance (a refused scale, a taken slug). */
  private async commandFailed(command: QueuedCommand, err: unknown): Promise<Outcome> {
    const { code, message } = failureOf(command, err);
    await this.record(command, {
      type: COMMAND_FAILED_EVENT,
      error: message,
      payload: { code },
      conclusion: 'failed',
    });
    return { ok: false, code, message };
  }

  /** An update validator refuses what it can see; this catches signals and commands whose turn came too late. */
  private async reject(command: QueuedCommand, refusal: Refusal): Promise<Outcome> {
    await this.record(command, {
      type: COMMAND_REJECTED_EVENT,
      payload: { via: command.via, code: refusal.code, reason: refusal.message },
      conclusion: 'rejected',
    });
    return { ok: false, code: refusal.code, message: refusal.message };
  }

  private async transition(
    to: InstanceState,
    command: QueuedCommand,
    options: RecordOptions = {},
  ): Promise<void> {
    const from = this.instance.state;
    if (from !== to) {
      const refusal = transitionError(from, to);
      // Command paths only take moves the table allows; reaching this is a bug, so fail loudly and visibly.
      if (refusal) throw ApplicationFailure.nonRetryable(`internal: ${refusal}`, 'invalid_state');
    }
    this.instance = {
      ...this.instance,
      state: to,
      error: to === 'failed' ? options.error : undefined,
    };
    await this.record(command, {
      type: eventTypeFor(to, command.name),
      ...options,
      payload: { from, to, ...options.payload },
    });
  }

  /** Writes the current snapshot and one lifecycle event, under the next sequence number. */
  private async record(command: QueuedCommand, options: RecordOptions): Promise<void> {
    this.seq += 1;
    this.instance = { ...this.instance, updated_at: new Date().toISOString() };
    upsertSearchAttributes([
      { key: StateAttribute, value: this.instance.state },
      { key: SuspendedAttribute, value: this.instance.suspend_reason !== undefined },
    ]);
    await this.activities.recordTransition({
      instance: this.instance,
      seq: this.seq,
      event: {
        type: options.type ?? `instance.${this.instance.state}`,
        payload: {
          ...options.payload,
          command: command.name,
          request_id: command.request_id,
          ...(command.actor ? { actor: command.actor } : {}),
          ...(options.error ? { error: options.error } : {}),
          ...(options.conclusion ? { conclusion: options.conclusion } : {}),
        },
      },
    });
  }

  private view(): InstanceView {
    return {
      state: this.instance.state,
      ...(this.instance.source?.type ? { source_type: this.instance.source.type } : {}),
      ...(this.instance.suspend_reason !== undefined ? { suspend_reason: this.instance.suspend_reason } : {}),
      ...(this.resumeState ? { resume_state: this.resumeState } : {}),
    };
  }

  /** The instance as it will be once every queued command has succeeded. */
  private viewAfterQueue(): InstanceView {
    let view = this.view();
    for (const queued of this.queue) {
      if (queued.name === 'provision') view = { ...view, state: 'running' };
      else if (queued.name === 'reconcile') continue;
      else if (!commandRefusal(queued.name, view, queued.args ?? {}))
        view = viewAfter(queued.name, view, queued.args ?? {});
    }
    return view;
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

  private enqueue(name: CommandName, request: CommandRequest, via: QueuedCommand['via']): void {
    const args = argsOf(request);
    this.queue.push({
      name,
      request_id: request.request_id,
      ...(request.actor ? { actor: request.actor } : {}),
      via,
      ...(Object.keys(args).length ? { args } : {}),
    });
  }
}

function argsOf(request: CommandRequest): Record<string, unknown> {
  const { request_id: _id, actor: _actor, ...args } = request as Record<string, unknown>;
  return args;
}

function runState(state: InstanceState): 'running' | 'stopped' | 'failed' {
  return state === 'running' ? 'running' : state === 'failed' ? 'failed' : 'stopped';
}

function failureOf(command: QueuedCommand, err: unknown): { code: string; message: string } {
  if (!(err instanceof ActivityFailure)) throw err;
  const cause = err.cause;
  const code = cause instanceof ApplicationFailure && cause.type ? cause.type : 'provider_failed';
  return { code, message: `${command.name} failed: ${cause?.message ?? err.message}` };
}
