import type { InstanceState } from './instance-state.ts';

/**
 * The one transition table. The workflow enforces it on every state write; the command rules
 * (domain/command-rules.ts), the tests and docs/lifecycle.md read it from here.
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
