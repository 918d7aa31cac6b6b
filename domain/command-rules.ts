import type { Command, CommandArgs, CommandName, CommandOf } from './commands.ts';
import type { InstanceState } from './instance-state.ts';
import { isServicesSource } from './sources/deployment-source.ts';
import { transitionError } from './state-machine.ts';

/**
 * When each lifecycle command is accepted, the states it walks the instance through, and what it leaves behind:
 * one table, read by the workflow (before running a command, and in update validators, against the instance
 * as the queued commands will leave it), by test/command-rules.unit.test.ts and by docs/lifecycle.md.
 */

/** The state an instance returns to when its suspension is lifted. */
export type RunState = 'running' | 'stopped' | 'failed';

/** What the rules need to know about an instance. */
export interface InstanceView {
  state: InstanceState;
  suspend_reason?: string;
  /** The run state to return to on unsuspend. */
  resume_state?: RunState;
  /** helm, manifests or argocd: the engine runs it, so start, stop, restart and scale do not apply. */
  source_type?: string;
}

export interface Refusal {
  code: 'invalid_state' | 'suspended' | 'invalid_request';
  message: string;
}

/** Which states accept a command: those the transition table lets it enter, or a list. */
type Acceptance =
  | { enters: InstanceState }
  | { in: readonly InstanceState[]; otherwise: string }
  | { suspended: true };

export interface CommandRule<N extends CommandName> {
  accepted: Acceptance;
  /** start, stop, restart and scale act on containers the control plane runs: services sources only. */
  servicesSourceOnly: boolean;
  /** Refused while the instance is suspended (the operator's stop must hold). */
  refusedWhileSuspended: boolean;
  /** The states a successful command moves through from `view`, in order; empty when the state stays. */
  path(view: InstanceView, args: CommandArgs[N]): readonly InstanceState[];
  /** The instance once the command has succeeded (its state is the path's last). */
  leaves(view: InstanceView, args: CommandArgs[N]): InstanceView;
}

const ANY_STATE_BUT_DELETED: readonly InstanceState[] = [
  'provisioning',
  'starting',
  'running',
  'stopping',
  'stopped',
  'failed',
];

export const COMMAND_RULES: { readonly [N in CommandName]: CommandRule<N> } = {
  start: {
    accepted: { enters: 'starting' },
    servicesSourceOnly: true,
    refusedWhileSuspended: true,
    path: () => ['starting', 'running'],
    leaves: (view) => ({ ...view, state: 'running' }),
  },
  stop: {
    accepted: { enters: 'stopping' },
    servicesSourceOnly: true,
    refusedWhileSuspended: false,
    path: () => ['stopping', 'stopped'],
    leaves: (view) => ({ ...view, state: 'stopped' }),
  },
  restart: {
    accepted: { enters: 'stopping' },
    servicesSourceOnly: true,
    refusedWhileSuspended: true,
    path: () => ['stopping', 'stopped', 'starting', 'running'],
    leaves: (view) => ({ ...view, state: 'running' }),
  },
  scale: {
    accepted: { in: ['running', 'stopped'], otherwise: 'only a running or stopped instance scales' },
    servicesSourceOnly: true,
    refusedWhileSuspended: true,
    path: () => [],
    leaves: (view) => view,
  },
  suspend: {
    accepted: {
      in: ['running', 'stopped', 'failed'],
      otherwise: 'only a running, stopped or failed instance can be suspended',
    },
    servicesSourceOnly: false,
    refusedWhileSuspended: false,
    path: (view) => (view.state === 'running' ? ['stopping', 'stopped'] : []),
    leaves: (view, args) => ({
      ...view,
      state: view.state === 'running' ? 'stopped' : view.state,
      suspend_reason: args.reason,
      // Suspending again (another reason) keeps the state the first suspension will return to.
      resume_state: view.suspend_reason !== undefined ? view.resume_state : runStateOf(view.state),
    }),
  },
  unsuspend: {
    accepted: { suspended: true },
    servicesSourceOnly: false,
    refusedWhileSuspended: false,
    path: (view) => (resumesRunning(view) ? ['starting', 'running'] : []),
    leaves: (view) => {
      const { suspend_reason: _reason, resume_state: _resume, ...rest } = view;
      return { ...rest, state: resumesRunning(view) ? 'running' : view.state };
    },
  },
  update: {
    accepted: { in: ANY_STATE_BUT_DELETED, otherwise: 'it is being deleted' },
    servicesSourceOnly: false,
    refusedWhileSuspended: false,
    path: () => [],
    leaves: (view) => view,
  },
  /** Like an update of services: applied at once to a running instance, else at its next start. */
  rollback: {
    accepted: {
      in: ['running', 'stopped', 'failed'],
      otherwise: 'only a running, stopped or failed instance rolls back',
    },
    servicesSourceOnly: false,
    refusedWhileSuspended: false,
    path: () => [],
    leaves: (view) => view,
  },
  delete: {
    accepted: { enters: 'destroying' },
    servicesSourceOnly: false,
    refusedWhileSuspended: false,
    path: () => ['destroying', 'destroyed'],
    leaves: () => ({ state: 'destroyed' }),
  },
  restart_service: {
    accepted: { in: ['running'], otherwise: 'only a running instance restarts one of its services' },
    servicesSourceOnly: true,
    refusedWhileSuspended: true,
    path: () => [],
    leaves: (view) => view,
  },
  // The exec already ran (the API checked the instance was running): only a deleted instance refuses its record.
  record_exec: {
    accepted: { in: ANY_STATE_BUT_DELETED, otherwise: 'it is being deleted' },
    servicesSourceOnly: false,
    refusedWhileSuspended: false,
    path: () => [],
    leaves: (view) => view,
  },
};

/** Why `command` cannot be applied to an instance in `view`, or undefined when it can. */
export function commandRefusal(command: Command, view: InstanceView): Refusal | undefined {
  const { name } = command;
  const rule: CommandRule<CommandName> = COMMAND_RULES[name];
  if (rule.servicesSourceOnly && !isServicesSource(view.source_type)) {
    return {
      code: 'invalid_request',
      message: `${name} applies to instances of a services source; this one is deployed from a ${view.source_type} source`,
    };
  }
  if (rule.refusedWhileSuspended && view.suspend_reason !== undefined) {
    return {
      code: 'suspended',
      message: `${name} is refused: the instance is suspended (${view.suspend_reason})`,
    };
  }
  const accepted = rule.accepted;
  const refuse = (why: string): Refusal => ({
    code: 'invalid_state',
    message: `${name} is not allowed while the instance is ${view.state}${why ? ` (${why})` : ''}`,
  });
  if ('enters' in accepted) {
    const why = transitionError(view.state, accepted.enters);
    return why === undefined ? undefined : refuse(why);
  }
  if ('in' in accepted) return accepted.in.includes(view.state) ? undefined : refuse(accepted.otherwise);
  if (view.suspend_reason === undefined) {
    return { code: 'invalid_state', message: `${name}: the instance is not suspended` };
  }
  const wanted = command.name === 'unsuspend' ? command.args.reason : undefined;
  if (wanted !== undefined && wanted !== view.suspend_reason) {
    return {
      code: 'invalid_state',
      message: `${name}: the instance is suspended for ${view.suspend_reason}, not ${wanted}`,
    };
  }
  return undefined;
}

/** The instance once `command` has succeeded: lets a validator judge a command against those queued before it. */
export function viewAfter<N extends CommandName>(command: CommandOf<N>, view: InstanceView): InstanceView {
  const rule: CommandRule<N> = COMMAND_RULES[command.name];
  return rule.leaves(view, command.args);
}

/** The states `command` moves the instance through from `view`. */
export function pathOf<N extends CommandName>(
  command: CommandOf<N>,
  view: InstanceView,
): readonly InstanceState[] {
  const rule: CommandRule<N> = COMMAND_RULES[command.name];
  return rule.path(view, command.args);
}

/** The run state an instance in `state` returns to once a suspension is lifted. */
export function runStateOf(state: InstanceState): RunState {
  return state === 'running' ? 'running' : state === 'failed' ? 'failed' : 'stopped';
}

function resumesRunning(view: InstanceView): boolean {
  return view.resume_state === 'running' && view.state === 'stopped';
}
