import type { InstanceState } from '../domain/instance-state.ts';

/** Lifecycle event type recorded when an instance enters a state. */
export function eventTypeFor(to: InstanceState, command: string): string {
  switch (to) {
    case 'running':
      return (
        { provision: 'instance.created', restart: 'instance.restarted', unsuspend: 'instance.unsuspended' }[
          command
        ] ?? 'instance.started'
      );
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
