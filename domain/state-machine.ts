import type { InstanceState } from './instance-state.ts';

/**
 * The one transition table. The workflow enforces it on every state write and the
 * API, the tests and the docs read it from here.
 */
export const TRANSITIONS: Readonly<Record<InstanceState, readonly InstanceState[]>> = {
  provisioning: ['starting', 'failed', 'destroying'],
  starting: ['running', 'failed'],
  running: ['stopping', 'failed', 'destroying'],
  stopping: ['stopped', 'failed'],
  stopped: ['starting', 'destroying'],
  failed: ['starting', 'destroying'],
  destroying: ['destroyed', 'failed'],
  destroyed: [],
};

export function canTransition(from: InstanceState, to: InstanceState): boolean {
  return TRANSITIONS[from].includes(to);
}

/** Returns the reason a move is refused, or undefined when the table allows it. */
export function transitionError(from: InstanceState, to: InstanceState): string | undefined {
  if (TRANSITIONS[from].length === 0) return `no transitions from ${from}`;
  return canTransition(from, to) ? undefined : `cannot transition from ${from} to ${to}`;
}

export const LIFECYCLE_COMMANDS = ['start', 'stop', 'delete'] as const;
export type LifecycleCommandName = (typeof LIFECYCLE_COMMANDS)[number];

/**
 * Each command walks the instance through these states, in order, with one provider call between the
 * first (intermediate) state and the last (settled) one. A command is allowed when the table allows the move
 * into its first state.
 */
export const COMMAND_PATHS: Readonly<Record<LifecycleCommandName, readonly [InstanceState, InstanceState]>> =
  {
    start: ['starting', 'running'],
    stop: ['stopping', 'stopped'],
    delete: ['destroying', 'destroyed'],
  };

/** Why `command` may not run on an instance in `state`, or undefined when it may. */
export function commandRefusal(command: LifecycleCommandName, state: InstanceState): string | undefined {
  const [first] = COMMAND_PATHS[command];
  const reason = transitionError(state, first);
  return reason === undefined
    ? undefined
    : `${command} is not allowed while the instance is ${state} (${reason})`;
}

/** The state an instance settles in once `command` has succeeded. */
export function settledStateAfter(command: LifecycleCommandName): InstanceState {
  return COMMAND_PATHS[command][1];
}
