import type { CommandName } from '../domain/commands.ts';
import type { InstanceState } from '../domain/instance-state.ts';

/** Lifecycle event type recorded when an instance enters a state, for the command (or internal work) moving it. */
export function eventTypeFor(to: InstanceState, command: CommandName | 'provision' | 'reconcile'): string {
  switch (to) {
    case 'running':
      if (command === 'provision') return 'instance.created';
      if (command === 'restart') return 'instance.restarted';
      return command === 'unsuspend' ? 'instance.unsuspended' : 'instance.started';
    case 'stopped':
      return command === 'suspend' ? 'instance.suspended' : 'instance.stopped';
    case 'failed':
      return 'instance.failed';
    case 'destroyed':
      return 'instance.deleted';
    default:
      return `instance.${to}`;
  }
}

export const COMMAND_REJECTED_EVENT = 'instance.command_rejected';
export const COMMAND_FAILED_EVENT = 'instance.command_failed';
export const DRIFT_EVENT = 'instance.drift';
/** A new release failed to deploy and the instance went back to the one before it; concludes the command failed. */
export const DEPLOY_ROLLED_BACK_EVENT = 'instance.deploy_rolled_back';
/** A rollback command made its release. */
export const ROLLED_BACK_EVENT = 'instance.rolled_back';
export const SERVICE_RESTARTED_EVENT = 'instance.service_restarted';
export const EXEC_EVENT = 'instance.exec';
