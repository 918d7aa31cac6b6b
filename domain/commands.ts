import type { ServiceSpec } from './instance.ts';
import type { InstanceState } from './instance-state.ts';
import { canTransition, transitionError } from './state-machine.ts';

/** The eight lifecycle commands, their arguments, and the rules that accept or refuse them. */
export const COMMAND_NAMES = [
  'start',
  'stop',
  'restart',
  'scale',
  'suspend',
  'unsuspend',
  'update',
  'delete',
] as const;
export type CommandName = (typeof COMMAND_NAMES)[number];

export interface ScaleArgs {
  cpu_millis?: number;
  memory_mb?: number;
  replicas?: number;
}

export interface SuspendArgs {
  reason: string;
}

export interface UnsuspendArgs {
  /** Lift the suspension only if it is for this reason (the billing sweep lifts only `billing`). */
  reason?: string;
}

export interface UpdateArgs {
  name?: string;
  services?: ServiceSpec[];
  labels?: Record<string, string>;
}

export interface CommandArgs {
  start: object;
  stop: object;
  restart: object;
  scale: ScaleArgs;
  suspend: SuspendArgs;
  unsuspend: UnsuspendArgs;
  update: UpdateArgs;
  delete: object;
}

/** What the rules need to know about an instance. */
export interface InstanceView {
  state: InstanceState;
  suspend_reason?: string;
  /** The run state to return to on unsuspend. */
  resume_state?: 'running' | 'stopped' | 'failed';
  /** helm, manifests or argocd: the engine runs it, so start, stop, restart and scale do not apply. */
  source_type?: string;
}

export interface Refusal {
  code: 'invalid_state' | 'suspended' | 'invalid_request';
  message: string;
}

const REFUSED_WHILE_SUSPENDED: ReadonlySet<CommandName> = new Set(['start', 'restart', 'scale']);
const SERVICES_SOURCE_ONLY: ReadonlySet<CommandName> = new Set(['start', 'stop', 'restart', 'scale']);

/** Why `name` cannot be applied to an instance in `view`, or undefined when it can. */
export function commandRefusal(
  name: CommandName,
  view: InstanceView,
  args: Record<string, unknown> = {},
): Refusal | undefined {
  const invalidArgs = argumentsRefusal(name, args);
  if (invalidArgs) return { code: 'invalid_request', message: invalidArgs };
  if (view.source_type && view.source_type !== 'services' && SERVICES_SOURCE_ONLY.has(name)) {
    return {
      code: 'invalid_request',
      message: `${name} applies to instances of a services source; this one is deployed from a ${view.source_type} source`,
    };
  }
  if (view.suspend_reason !== undefined && REFUSED_WHILE_SUSPENDED.has(name)) {
    return {
      code: 'suspended',
      message: `${name} is refused: the instance is suspended (${view.suspend_reason})`,
    };
  }
  const state = view.state;
  const refuse = (why: string): Refusal => ({
    code: 'invalid_state',
    message: `${name} is not allowed while the instance is ${state}${why ? ` (${why})` : ''}`,
  });
  switch (name) {
    case 'start':
      return canTransition(state, 'starting') ? undefined : refuse(transitionError(state, 'starting') ?? '');
    case 'stop':
    case 'restart':
      return canTransition(state, 'stopping') ? undefined : refuse(transitionError(state, 'stopping') ?? '');
    case 'delete':
      return canTransition(state, 'destroying')
        ? undefined
        : refuse(transitionError(state, 'destroying') ?? '');
    case 'scale':
      return state === 'running' || state === 'stopped'
        ? undefined
        : refuse('only a running or stopped instance scales');
    case 'suspend':
      return state === 'running' || state === 'stopped' || state === 'failed'
        ? undefined
        : refuse('only a running, stopped or failed instance can be suspended');
    case 'unsuspend': {
      if (view.suspend_reason === undefined)
        return { code: 'invalid_state', message: 'unsuspend: the instance is not suspended' };
      const wanted = args.reason;
      if (typeof wanted === 'string' && wanted !== view.suspend_reason) {
        return {
          code: 'invalid_state',
          message: `unsuspend: the instance is suspended for ${view.suspend_reason}, not ${wanted}`,
        };
      }
      return undefined;
    }
    case 'update':
      return state === 'destroying' || state === 'destroyed' ? refuse('it is being deleted') : undefined;
  }
}

/** The view once `name` has succeeded: lets a validator judge a command against the commands queued before it. */
export function viewAfter(
  name: CommandName,
  view: InstanceView,
  args: Record<string, unknown> = {},
): InstanceView {
  switch (name) {
    case 'start':
    case 'restart':
      return { ...view, state: 'running' };
    case 'stop':
      return { ...view, state: 'stopped' };
    case 'delete':
      return { state: 'destroyed' };
    case 'suspend': {
      const resume = view.suspend_reason !== undefined ? view.resume_state : runState(view.state);
      return {
        ...view,
        state: view.state === 'running' ? 'stopped' : view.state,
        suspend_reason: String(args.reason),
        resume_state: resume,
      };
    }
    case 'unsuspend': {
      const { suspend_reason: _reason, resume_state: _resume, ...rest } = view;
      return { ...rest, state: view.resume_state === 'running' ? 'running' : view.state };
    }
    case 'scale':
    case 'update':
      return view;
  }
}

function runState(state: InstanceState): 'running' | 'stopped' | 'failed' {
  return state === 'running' ? 'running' : state === 'failed' ? 'failed' : 'stopped';
}

function argumentsRefusal(name: CommandName, args: Record<string, unknown>): string | undefined {
  const isInt = (v: unknown) => typeof v === 'number' && Number.isInteger(v);
  if (name === 'scale') {
    const fields = ['cpu_millis', 'memory_mb', 'replicas'].filter((f) => args[f] !== undefined);
    if (fields.length === 0) return 'scale: give at least one of cpu_millis, memory_mb, replicas';
    if (args.cpu_millis !== undefined && !(isInt(args.cpu_millis) && (args.cpu_millis as number) >= 0)) {
      return 'cpu_millis: must be an integer ≥ 0';
    }
    if (args.memory_mb !== undefined && !(isInt(args.memory_mb) && (args.memory_mb as number) >= 0)) {
      return 'memory_mb: must be an integer ≥ 0';
    }
    if (args.replicas !== undefined && !(isInt(args.replicas) && (args.replicas as number) >= 1)) {
      return 'replicas: must be an integer ≥ 1';
    }
  }
  if (name === 'suspend' && (typeof args.reason !== 'string' || args.reason.trim() === '')) {
    return 'reason: is required';
  }
  if (name === 'update') {
    if (args.name === undefined && args.services === undefined && args.labels === undefined) {
      return 'update: give at least one of name, services, labels';
    }
    if (args.name !== undefined && (typeof args.name !== 'string' || args.name.trim() === '')) {
      return 'name: must not be empty';
    }
  }
  return undefined;
}
