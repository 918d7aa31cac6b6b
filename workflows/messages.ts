import type { SignalDefinition, UpdateDefinition } from '@temporalio/common';
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { RunState } from '../domain/command-rules.ts';
import type { CommandInput, CommandName } from '../domain/commands.ts';
import type { Instance } from '../domain/instance.ts';
import type { NextAutoAction } from '../domain/lifecycle-policy.ts';
import type { Definition } from '../domain/sources/variables.ts';
import type { AgentWait } from './agent-pickup.ts';
import type { ReleaseBookState } from './release-book.ts';

/**
 * The instance workflow's public surface, shared by the API (client side) and the workflow.
 * Every command exists as an update (the caller learns at once whether it was accepted, and later its
 * outcome) and as a signal (fire and forget) of the same name. A signal without a request_id (sent by hand
 * from the Temporal CLI or UI) gets one the workflow derives; an update must name its own.
 */

export interface RequestMeta {
  /** Idempotency key: a command whose request_id was already seen is not applied again. */
  request_id: string;
  /** `sub` of the caller, kept on the lifecycle event. */
  actor?: string;
}

export type CommandRequest<N extends CommandName = CommandName> = RequestMeta & CommandInput[N];

/**
 * A queued piece of work as the `snapshot` and `pendingCommands` queries show it and continue-as-new carries
 * it: a command, or the workflow's own provision or drift check (`via: 'workflow'`).
 */
export interface QueuedCommand {
  name: CommandName | 'provision' | 'reconcile';
  request_id: string;
  actor?: string;
  via: 'update' | 'signal' | 'workflow';
  /** The command's arguments as received, left out when it has none (a signal's may be invalid). */
  args?: QueuedArgs;
  /** A lifecycle policy's command: the action that fell due. */
  auto?: NextAutoAction;
  /** Only on the running one, in queries: its provider call waits for the provider's agent. */
  waiting_for?: AgentWait;
}

/** Any command's argument fields (the queue is read without knowing which command each entry is). */
export type QueuedArgs = Partial<
  CommandInput['scale'] &
    CommandInput['rollback'] &
    CommandInput['suspend'] &
    CommandInput['update'] &
    CommandInput['stop'] &
    CommandInput['restart_service'] &
    CommandInput['record_exec']
>;

export interface InstanceWorkflowOptions {
  /** Continue-as-new after this many commands in one run, even if the server does not suggest it yet. */
  maxCommandsPerRun?: number;
  /**
   * How often the workflow also compares the provider's view with its own, besides the watchers' notices; 0
   * disables it. Unset: 0 since the `drift-from-watchers` patch, 60 s before.
   */
  driftCheckIntervalMs?: number;
}

export interface InstanceWorkflowInput {
  instance: Instance;
  /** Transition counter, carried across continue-as-new. 0 = the row the API inserted. */
  seq: number;
  provisioned: boolean;
  pending?: QueuedCommand[];
  /** Request ids already applied, newest last, so a retry after continue-as-new is still recognised. */
  recent_request_ids?: string[];
  /** The run state to return to on unsuspend, while suspended. */
  resume_state?: RunState;
  /** The services changed while stopped: the next start provisions them first. */
  spec_changed?: boolean;
  /** Variables of the source as submitted; secret ones are references, resolved only at provision time. */
  deployment?: DeploymentVariables;
  options?: InstanceWorkflowOptions;
  /** The instance's releases: numbering, the current one and the last deployed (absent before the first). */
  releases?: ReleaseBookState;
  /** The create request (its request id and caller), for the first release. */
  origin?: RequestMeta;
  /**
   * The task queue of the provider's host agent, where every provider call of the instance goes; absent: the
   * workflow's own queue (a provider without an agent, and every history from before agents).
   */
  provider_task_queue?: string;
}

export interface DeploymentVariables {
  variables?: Definition[];
  variable_values?: Record<string, unknown>;
}

export interface InstanceSnapshot {
  instance: Instance;
  seq: number;
  pending: QueuedCommand[];
}

/** A command's two messages; the signal may come without input (by hand, from the Temporal CLI or UI). */
export interface CommandMessages<N extends CommandName> {
  update: UpdateDefinition<Instance, [CommandRequest<N>], N>;
  signal: SignalDefinition<[CommandRequest<N>?], N>;
}

function command<N extends CommandName>(name: N): CommandMessages<N> {
  return {
    update: defineUpdate<Instance, [CommandRequest<N>], N>(name),
    signal: defineSignal<[CommandRequest<N>?], N>(name),
  };
}

export const commandMessages: { readonly [N in CommandName]: CommandMessages<N> } = {
  start: command('start'),
  stop: command('stop'),
  restart: command('restart'),
  scale: command('scale'),
  suspend: command('suspend'),
  unsuspend: command('unsuspend'),
  update: command('update'),
  delete: command('delete'),
  rollback: command('rollback'),
  restart_service: command('restart_service'),
  record_exec: command('record_exec'),
};

export const snapshotQuery = defineQuery<InstanceSnapshot>('snapshot');
export const pendingCommandsQuery = defineQuery<QueuedCommand[]>('pendingCommands');

export const INSTANCE_WORKFLOW_TYPE = 'instanceWorkflow';

export function instanceWorkflowId(instanceId: string): string {
  return `instance/${instanceId}`;
}
