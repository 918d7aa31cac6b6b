import {
  type Client,
  defaultGrpcRetryOptions,
  type GrpcRetryOptions,
  isGrpcServiceError,
  makeGrpcRetryInterceptor,
  WithStartWorkflowOperation,
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type WorkflowUpdateHandle,
  WorkflowUpdateRPCTimeoutOrCancelledError,
  WorkflowUpdateStage,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { CommandName } from '../domain/commands.ts';
import { CtrlplaneError, isErrorCode } from '../domain/errors.ts';
import type { Instance } from '../domain/instance.ts';
import type { AgentWait } from '../workflows/agent-pickup.ts';
import {
  type CommandRequest,
  commandMessages,
  type DeploymentVariables,
  INSTANCE_WORKFLOW_TYPE,
  type InstanceWorkflowInput,
  type InstanceWorkflowOptions,
  instanceWorkflowId,
  pendingCommandsQuery,
  type RequestMeta,
} from '../workflows/messages.ts';
import {
  ProviderAttribute,
  StateAttribute,
  SuspendedAttribute,
  TenantIdAttribute,
} from '../workflows/search-attributes.ts';
import { settledUpdate } from '../workflows/settled-update.ts';
import { RetryableError } from './problem.ts';

export type CommandResult = { status: 'accepted' } | { status: 'completed'; instance: Instance };

export interface InstanceCommandsOptions {
  client: Client;
  taskQueue: string;
  /** The task queue of a provider's host agent (undefined: the provider has none; its calls stay on taskQueue). */
  providerTaskQueue?: (providerName: string) => string | undefined;
  /** How long to wait for the workflow to accept a command (or to start) before answering 503. */
  acceptTimeoutMs: number;
  /** Passed to every new instance workflow (continue-as-new threshold, drift check interval). */
  workflowOptions?: InstanceWorkflowOptions;
}

/** Sends commands to instance workflows; every call has a deadline, so no request hangs on Temporal. */
export class InstanceCommands {
  constructor(private readonly options: InstanceCommandsOptions) {}

  /**
   * Starts the instance's workflow; with `waitMs`, also waits up to that long for it to settle (no longer
   * provisioning or starting). `deployment` carries the variables as submitted (definitions and plain
   * values; a secret variable is only its store reference, resolved by the provision activity).
   */
  async startWorkflow(
    instance: Instance,
    deployment?: DeploymentVariables,
    origin?: RequestMeta,
    waitMs?: number,
    signal?: AbortSignal,
  ): Promise<void> {
    const hasDeployment =
      (deployment?.variables?.length ?? 0) > 0 || Object.keys(deployment?.variable_values ?? {}).length > 0;
    const providerTaskQueue = this.options.providerTaskQueue?.(instance.provider_name);
    const input: InstanceWorkflowInput = {
      instance,
      seq: 0,
      provisioned: false,
      ...(hasDeployment ? { deployment } : {}),
      options: this.options.workflowOptions,
      ...(origin ? { origin } : {}),
      ...(providerTaskQueue ? { provider_task_queue: providerTaskQueue } : {}),
    };
    const options = {
      workflowId: instanceWorkflowId(instance.id),
      taskQueue: this.options.taskQueue,
      args: [input] as [InstanceWorkflowInput],
      workflowIdConflictPolicy: 'FAIL' as const,
      staticSummary: `Instance "${instance.name}" (${instance.id}) of ${instance.tenant_id} on ${instance.provider_name}`,
      memo: { tenant_id: instance.tenant_id, name: instance.name, provider: instance.provider_name },
      typedSearchAttributes: [
        { key: TenantIdAttribute, value: instance.tenant_id },
        { key: StateAttribute, value: instance.state },
        { key: ProviderAttribute, value: instance.provider_name },
        { key: SuspendedAttribute, value: false },
      ],
    };
    let settled: WorkflowUpdateHandle<Instance> | undefined;
    try {
      await this.withDeadline(this.options.acceptTimeoutMs, async () => {
        if (waitMs === undefined) {
          await this.options.client.workflow.start(INSTANCE_WORKFLOW_TYPE, options);
          return;
        }
        // A create that waits: the start and the wait in one call (update-with-start), no polling.
        settled = await this.options.client.workflow.startUpdateWithStart(settledUpdate, {
          waitForStage: WorkflowUpdateStage.ACCEPTED,
          startWorkflowOperation: new WithStartWorkflowOperation(INSTANCE_WORKFLOW_TYPE, options),
        });
      });
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) {
        throw new CtrlplaneError('already_exists', `instance ${instance.id} already exists`);
      }
      // A deadline is not a refusal: the server may have started the workflow all the same. If it did, the
      // create succeeded, and undoing the row (as the caller does on an error) would orphan the instance.
      if (await this.workflowExists(instance.id)) return;
      throw unavailable(err);
    }
    if (!settled || waitMs === undefined) return;
    const handle: WorkflowUpdateHandle<Instance> = settled;
    try {
      const wait = () => this.withDeadline(waitMs, () => handle.result());
      await (signal ? this.options.client.withAbortSignal(signal, wait) : wait());
    } catch {
      // Not settled in time (or shutting down): the create stands; the caller answers with the read model.
    }
  }

  private async workflowExists(instanceId: string): Promise<boolean> {
    try {
      await this.withDeadline(this.options.acceptTimeoutMs, () =>
        this.options.client.workflow.getHandle(instanceWorkflowId(instanceId)).describe(),
      );
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Sends `name` as an update and returns once the workflow accepted it; with `waitMs`, waits up to that long
   * for the command to finish. A refusal by the workflow's validator surfaces as its error code (409).
   */
  async send<N extends CommandName>(
    name: N,
    instanceId: string,
    request: CommandRequest<N>,
    waitMs?: number,
    signal?: AbortSignal,
  ): Promise<CommandResult> {
    const handle = this.options.client.workflow.getHandle(instanceWorkflowId(instanceId));
    let update: WorkflowUpdateHandle<Instance>;
    try {
      update = await this.withDeadline(this.options.acceptTimeoutMs, () =>
        handle.startUpdate(commandMessages[name].update, {
          args: [request],
          updateId: request.request_id,
          waitForStage: WorkflowUpdateStage.ACCEPTED,
        }),
      );
    } catch (err) {
      throw commandError(err);
    }
    // A validator's refusal does not throw from startUpdate: the handle comes back holding the failed
    // outcome, which result() returns without a call to the server. Probe it with a deadline already past:
    // an outcome not known yet makes result() poll, which fails at once, so the command is still running.
    // A command that completes inside the workflow task that accepted it (no provider call) is already done
    // here; without `waitMs` it is still answered as accepted, as the caller asked.
    try {
      const instance = await this.options.client.withDeadline(Date.now() - 1, () => update.result());
      return waitMs === undefined ? { status: 'accepted' } : { status: 'completed', instance };
    } catch (err) {
      if (!(err instanceof WorkflowUpdateRPCTimeoutOrCancelledError)) throw commandError(err);
    }
    if (waitMs === undefined || signal?.aborted) return { status: 'accepted' };
    try {
      const wait = () => this.withDeadline(waitMs, () => update.result());
      // Shutdown ends the wait: the command goes on in the workflow, the caller gets 202.
      const instance = await (signal ? this.options.client.withAbortSignal(signal, wait) : wait());
      return { status: 'completed', instance };
    } catch (err) {
      if (err instanceof WorkflowUpdateRPCTimeoutOrCancelledError || isDeadline(err))
        return { status: 'accepted' };
      throw commandError(err);
    }
  }

  /**
   * What the instance's running command waits for, when its provider's agent has not picked its provider call
   * up (workflows/agent-pickup.ts); undefined when nothing waits, the provider has no agent, or the workflow
   * does not answer within a second (the answer is a hint, never a reason to fail the request).
   */
  async agentWait(instance: { id: string; provider_name: string }): Promise<AgentWait | undefined> {
    if (!this.options.providerTaskQueue?.(instance.provider_name)) return undefined;
    try {
      const pending = await this.withDeadline(1_000, () =>
        this.options.client.workflow.getHandle(instanceWorkflowId(instance.id)).query(pendingCommandsQuery),
      );
      return pending[0]?.waiting_for;
    } catch {
      return undefined;
    }
  }

  async ping(): Promise<void> {
    await this.withDeadline(2_000, () => this.options.client.workflowService.getSystemInfo({}));
  }

  private withDeadline<T>(ms: number, fn: () => Promise<T>): Promise<T> {
    return this.options.client.withDeadline(Date.now() + ms, fn);
  }
}

/** More than 10 updates in flight on one workflow (a Temporal limit), or the run's total update cap. */
const UPDATE_LIMIT = /limit on number of (concurrent in-flight|total) updates/i;
const RESOURCE_EXHAUSTED = 8;

/** True for Temporal's "too many in-flight updates" refusal, however the client wrapped it. */
export function isUpdateLimitError(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (isGrpcServiceError(e) && (e.code === RESOURCE_EXHAUSTED || UPDATE_LIMIT.test(e.details ?? '')))
      return true;
    const text = e instanceof Error ? e.message : String(e);
    if (UPDATE_LIMIT.test(text) || /RESOURCE_EXHAUSTED/.test(text)) return true;
  }
  return false;
}

/**
 * The client's gRPC retries, except for the in-flight update limit: retrying it inside the accept deadline
 * only turns a quick 429 into a slow 503, so the API answers 429 and the caller retries.
 */
export function apiGrpcRetryOptions(): GrpcRetryOptions {
  const defaults = defaultGrpcRetryOptions();
  return {
    delayFunction: defaults.delayFunction,
    retryableDecider: (attempt, status) =>
      !(status.code === RESOURCE_EXHAUSTED && UPDATE_LIMIT.test(status.details ?? '')) &&
      defaults.retryableDecider(attempt, status),
  };
}

export function apiGrpcInterceptors() {
  return [makeGrpcRetryInterceptor(apiGrpcRetryOptions())];
}

export function commandError(err: unknown): Error {
  if (err instanceof CtrlplaneError) return err;
  if (isUpdateLimitError(err)) {
    return new RetryableError(
      'rate_limited',
      'the instance has too many commands in flight; retry once some have finished',
      1,
    );
  }
  if (err instanceof WorkflowUpdateFailedError) {
    const cause = err.cause;
    if (cause instanceof ApplicationFailure) {
      const code = isErrorCode(cause.type) ? cause.type : 'provider_failed';
      return new CtrlplaneError(code, cause.message);
    }
    return new CtrlplaneError('provider_failed', cause?.message ?? err.message);
  }
  if (err instanceof WorkflowNotFoundError) {
    return new CtrlplaneError(
      'invalid_state',
      'the instance no longer accepts commands (it has been destroyed)',
    );
  }
  return unavailable(err);
}

function unavailable(err: unknown): Error {
  if (err instanceof CtrlplaneError) return err;
  const detail = err instanceof Error ? err.message : String(err);
  return new RetryableError(
    'temporal_unavailable',
    `the workflow service did not confirm the command in time (${detail}); it may still be applied: ` +
      'retry with the same Idempotency-Key and it is applied at most once',
    1,
  );
}

function isDeadline(err: unknown): boolean {
  const text = err instanceof Error ? `${err.name} ${err.message}` : String(err);
  return /deadline|timed ?out|RPCTimeoutOrCancelled/i.test(text);
}
