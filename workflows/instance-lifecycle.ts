import { ActivityFailure, ApplicationFailure, patched } from '@temporalio/workflow';
import type { InstanceActivities } from '../activities/instance-activity-types.ts';
import type { InstanceView, Refusal, RunState } from '../domain/command-rules.ts';
import type { Instance, ServiceSpec } from '../domain/instance.ts';
import type { InstanceState } from '../domain/instance-state.ts';
import type { Release, ReleaseSpec } from '../domain/release.ts';
import { isServicesSource } from '../domain/sources/deployment-source.ts';
import { secretBindingsOf } from '../domain/sources/secret-bindings.ts';
import { InstanceRecorder, type RecordOptions } from './instance-recorder.ts';
import { COMMAND_FAILED_EVENT, COMMAND_REJECTED_EVENT } from './lifecycle-events.ts';
import type { InstanceWorkflowInput } from './messages.ts';
import { ReleaseBook } from './release-book.ts';
import type { Outcome, Requester } from './work-items.ts';

/** Patch: every change of what runs makes a release (create, services, scale, rollback). */
const RELEASES = 'releases';

/**
 * What the instance workflow knows about its instance, besides the queue (workflows/command-inbox.ts): the
 * instance and its history (the recorder), whether the provider holds it yet, the suspension's way back, and the
 * provider calls the command handlers (workflows/command-handlers.ts) build on. No message handling here.
 */
export class InstanceLifecycle {
  readonly recorder: InstanceRecorder;
  readonly releases: ReleaseBook;
  /** The provider holds the instance (its first provision succeeded). */
  provisioned: boolean;
  /** While suspended: the run state unsuspend returns to. */
  resumeState: RunState | undefined;
  /** The services changed while the instance was not running: the next start provisions them first. */
  specChanged: boolean;
  private deployment: InstanceWorkflowInput['deployment'];
  /** Who created the instance, for its first release. */
  private readonly origin: InstanceWorkflowInput['origin'];
  /** The task queue of the provider's agent; undefined: the workflow's own. */
  private readonly providerTaskQueue: string | undefined;

  constructor(
    input: InstanceWorkflowInput,
    readonly activities: InstanceActivities,
  ) {
    this.releases = new ReleaseBook(input.releases);
    this.recorder = new InstanceRecorder(input.instance, input.seq, activities.recordTransition, () =>
      this.releases.takeStaged(),
    );
    this.origin = input.origin;
    this.providerTaskQueue = input.provider_task_queue;
    this.provisioned = input.provisioned;
    this.resumeState = input.resume_state;
    this.specChanged = input.spec_changed ?? false;
    this.deployment = input.deployment;
  }

  get instance(): Instance {
    return this.recorder.instance;
  }

  isDestroyed(): boolean {
    return this.instance.state === 'destroyed';
  }

  /** What the command rules judge a command against. */
  view(): InstanceView {
    return {
      state: this.instance.state,
      ...(this.instance.source?.type ? { source_type: this.instance.source.type } : {}),
      ...(this.instance.suspend_reason !== undefined ? { suspend_reason: this.instance.suspend_reason } : {}),
      ...(this.resumeState ? { resume_state: this.resumeState } : {}),
    };
  }

  /** This part of the continue-as-new input: the same JSON fields as the workflow's first input. */
  carryOver(): Pick<
    InstanceWorkflowInput,
    | 'instance'
    | 'seq'
    | 'provisioned'
    | 'resume_state'
    | 'spec_changed'
    | 'deployment'
    | 'releases'
    | 'provider_task_queue'
  > {
    const releases = this.releases.state();
    return {
      instance: this.instance,
      seq: this.recorder.seq,
      provisioned: this.provisioned,
      ...(this.resumeState ? { resume_state: this.resumeState } : {}),
      ...(this.specChanged ? { spec_changed: true } : {}),
      ...(this.deployment ? { deployment: this.deployment } : {}),
      ...(releases ? { releases } : {}),
      ...(this.providerTaskQueue ? { provider_task_queue: this.providerTaskQueue } : {}),
    };
  }

  /** What the instance runs (or will at its next start), as a release records it. */
  spec(): ReleaseSpec {
    return {
      services: this.instance.services,
      ...(this.instance.source ? { source: this.instance.source } : {}),
      ...(this.deployment?.variables ? { variables: this.deployment.variables } : {}),
      ...(this.deployment?.variable_values ? { variable_values: this.deployment.variable_values } : {}),
    };
  }

  /** Makes `spec` the instance's (a rollback's, or the way back from a failed deploy). */
  applySpec(spec: ReleaseSpec): void {
    this.recorder.set({ services: spec.services, source: spec.source });
    const deployment = {
      ...(spec.variables ? { variables: spec.variables } : {}),
      ...(spec.variable_values ? { variable_values: spec.variable_values } : {}),
    };
    this.deployment = Object.keys(deployment).length > 0 ? deployment : undefined;
  }

  /**
   * A new release of what the instance now has, made current; written with the next transition. Undefined for
   * histories from before releases.
   */
  newRelease(by: Requester, description: string, rollbackOf?: number): Release | undefined {
    if (!patched(RELEASES)) return undefined;
    const origin = by.command === 'provision' ? this.origin : undefined;
    const release = this.releases.create(
      { instance_id: this.instance.id, tenant_id: this.instance.tenant_id },
      this.spec(),
      origin ?? by,
      description,
      rollbackOf,
    );
    this.recorder.set({ current_release: release.id });
    return release;
  }

  /** Back to `release` (the one that ran before a failed deploy): its spec, and current_release again. */
  revertTo(release: Release): void {
    this.applySpec(release.spec);
    this.releases.revertTo(release);
    this.recorder.set({ current_release: release.id });
  }

  async provisionServices(): Promise<void> {
    const instance = this.instance;
    const result = await this.activities.provisionInstance({
      provider_name: instance.provider_name,
      request: {
        instance_id: instance.id,
        tenant_id: instance.tenant_id,
        name: instance.name,
        kind: instance.kind,
        services: instance.services ?? [],
        labels: instance.labels,
      },
      ...(instance.source ? { source: instance.source } : {}),
      ...(this.deployment?.variables ? { variables: this.deployment.variables } : {}),
      ...(this.deployment?.variable_values ? { variable_values: this.deployment.variable_values } : {}),
      region: instance.region,
    });
    this.provisioned = true;
    this.specChanged = false;
    this.releases.markProvisioned();
    this.recorder.set({
      provider_ref: result.provider_ref,
      service_refs: result.service_refs,
      endpoints: result.endpoints,
    });
  }

  /** Starts the services; a release that was waiting for them is deployed from then on. */
  async startServices(): Promise<void> {
    const started = await this.activities.startInstance(this.providerCall());
    this.recorder.set({ endpoints: started.endpoints });
    this.releases.markDeployed();
  }

  /** Which instance a provider call is about; its secret references let the activity redact their values. */
  providerCall() {
    const bindings = secretBindingsOf(this.deployment?.variables);
    return {
      provider_name: this.instance.provider_name,
      instance_id: this.instance.id,
      ...(this.instance.source?.type ? { source_type: this.instance.source.type } : {}),
      ...(bindings.length > 0 ? { secret_refs: { tenant_id: this.instance.tenant_id, bindings } } : {}),
    };
  }

  /** New services, mirrored into a services source (a helm, manifests or argocd source is left as submitted). */
  setServices(services: ServiceSpec[]): void {
    const source = this.instance.source;
    this.recorder.set({
      services,
      source: !source || isServicesSource(source.type) ? { type: 'services', services } : source,
    });
  }

  markSuspended(reason: string, resumeState: RunState | undefined): void {
    this.resumeState = resumeState;
    this.recorder.set({ suspended_at: new Date().toISOString(), suspend_reason: reason });
  }

  liftSuspension(): void {
    this.resumeState = undefined;
    this.recorder.set({ suspended_at: undefined, suspend_reason: undefined });
  }

  // --- how a piece of work ends: each records exactly one concluding event ---------------------------------

  async succeed(by: Requester, to: InstanceState, options: RecordOptions = {}): Promise<Outcome> {
    await this.recorder.transition(to, by, { ...options, conclusion: 'succeeded' });
    return { ok: true, instance: this.instance };
  }

  /** Succeeded without a state change: one event of `type`. */
  async succeedWith(by: Requester, type: string, payload: Record<string, unknown>): Promise<Outcome> {
    await this.recorder.record(by, { type, payload, conclusion: 'succeeded' });
    return { ok: true, instance: this.instance };
  }

  /** A provider call failed after its retries: the instance is `failed`, with the reason kept on it. */
  async fail(by: Requester, err: unknown): Promise<Outcome> {
    const { code, message } = failureOf(by, err);
    await this.recorder.transition('failed', by, { error: message, conclusion: 'failed' });
    return { ok: false, code, message };
  }

  /** A new release failed to provision or start: the release and the instance are failed, for the same reason. */
  async failDeploy(by: Requester, err: unknown): Promise<Outcome> {
    this.releases.markFailed(failureOf(by, err).message);
    return this.fail(by, err);
  }

  /** A command that could not be done but did not change the instance (a refused scale, a taken slug). */
  async commandFailed(by: Requester, err: unknown): Promise<Outcome> {
    const { code, message } = failureOf(by, err);
    await this.recorder.record(by, {
      type: COMMAND_FAILED_EVENT,
      error: message,
      payload: { code },
      conclusion: 'failed',
    });
    return { ok: false, code, message };
  }

  /** An update validator refuses what it can see; this catches signals and commands whose turn came too late. */
  async reject(by: Requester, refusal: Refusal): Promise<Outcome> {
    await this.recorder.record(by, {
      type: COMMAND_REJECTED_EVENT,
      payload: { via: by.via, code: refusal.code, reason: refusal.message },
      conclusion: 'rejected',
    });
    return { ok: false, code: refusal.code, message: refusal.message };
  }
}

/** An activity's failure as the command's outcome; anything else is a bug in the workflow and is rethrown. */
export function failureOf(by: Requester, err: unknown): { code: string; message: string } {
  if (!(err instanceof ActivityFailure)) throw err;
  const cause = err.cause;
  const code = cause instanceof ApplicationFailure && cause.type ? cause.type : 'provider_failed';
  return { code, message: `${by.command} failed: ${cause?.message ?? err.message}` };
}
