import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { Instance } from '../domain/instance';
import type { LifecycleCommandName } from '../domain/state-machine';

/**
 * The instance workflow's public surface, shared by the API (client side) and the workflow.
 * Every command exists as an update (the caller learns at once whether it was accepted, and later its
 * outcome) and as a signal (fire and forget) of the same name.
 */

export interface CommandRequest {
  /** Idempotency key: a command whose request_id was already seen is not applied again. */
  request_id: string;
  /** `sub` of the caller, kept on the lifecycle event. */
  actor?: string;
}

export interface QueuedCommand {
  name: LifecycleCommandName | 'provision';
  request_id: string;
  actor?: string;
  via: 'update' | 'signal' | 'workflow';
}

export interface InstanceWorkflowOptions {
  /** Continue-as-new after this many commands in one run, even if the server does not suggest it yet. */
  maxCommandsPerRun?: number;
}

export interface InstanceWorkflowInput {
  instance: Instance;
  /** Transition counter, carried across continue-as-new. 0 = the row the API inserted. */
  seq: number;
  provisioned: boolean;
  pending?: QueuedCommand[];
  /** Request ids already applied, newest last, so a retry after continue-as-new is still recognised. */
  recent_request_ids?: string[];
  options?: InstanceWorkflowOptions;
}

export interface InstanceSnapshot {
  instance: Instance;
  seq: number;
  pending: QueuedCommand[];
}

export const startUpdate = defineUpdate<Instance, [CommandRequest]>('start');
export const stopUpdate = defineUpdate<Instance, [CommandRequest]>('stop');
export const deleteUpdate = defineUpdate<Instance, [CommandRequest]>('delete');

export const startSignal = defineSignal<[CommandRequest]>('start');
export const stopSignal = defineSignal<[CommandRequest]>('stop');
export const deleteSignal = defineSignal<[CommandRequest]>('delete');

export const commandUpdates = { start: startUpdate, stop: stopUpdate, delete: deleteUpdate } as const;
export const commandSignals = { start: startSignal, stop: stopSignal, delete: deleteSignal } as const;

export const snapshotQuery = defineQuery<InstanceSnapshot>('snapshot');
export const pendingCommandsQuery = defineQuery<QueuedCommand[]>('pendingCommands');

export const INSTANCE_WORKFLOW_TYPE = 'instanceWorkflow';

export function instanceWorkflowId(instanceId: string): string {
  return `instance/${instanceId}`;
}
