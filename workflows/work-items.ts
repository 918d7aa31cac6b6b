import type { Refusal } from '../domain/command-rules.ts';
import { type Command, type CommandName, parseCommand } from '../domain/commands.ts';
import type { Instance } from '../domain/instance.ts';
import type { AutoActionName, NextAutoAction } from '../domain/lifecycle-policy.ts';
import type { QueuedArgs, QueuedCommand } from './messages.ts';

/**
 * What the workflow loop runs, one at a time: a lifecycle command someone sent, or the workflow's own work
 * (the first provision, a drift check). Messages and continue-as-new carry them as `QueuedCommand`.
 */
export type WorkItem = CommandWork | InvalidCommandWork | InternalWork;

export interface CommandWork {
  kind: 'command';
  command: Command;
  request_id: string;
  actor?: string;
  via: 'update' | 'signal' | 'workflow';
  /** Sent by a lifecycle policy that fell due (via `workflow`). */
  auto?: NextAutoAction;
}

/** A signal whose arguments do not parse: recorded as rejected when its turn comes, never applied. */
export interface InvalidCommandWork {
  kind: 'invalid_command';
  name: CommandName;
  request_id: string;
  actor?: string;
  via: 'update' | 'signal';
  /** As received, so that the queries and continue-as-new show what was sent. */
  received: object;
  refusal: Refusal;
}

export interface InternalWork {
  kind: 'provision' | 'reconcile';
  /** Names the work in its lifecycle events, as a request id names a command. */
  request_id: string;
}

export type Outcome = { ok: true; instance: Instance } | { ok: false; code: string; message: string };

/** Who asked for the work, as its lifecycle events record it. */
export interface Requester {
  command: CommandName | InternalWork['kind'];
  request_id: string;
  actor?: string;
  via: 'update' | 'signal' | 'workflow';
  /** The lifecycle policy that sent the command: its concluding event is the policy's. */
  auto?: AutoActionName;
}

/** A command as received: parsed into a `CommandWork`, or kept as an `InvalidCommandWork` to be rejected. */
export function commandWork(
  name: CommandName,
  args: unknown,
  meta: Pick<InvalidCommandWork, 'request_id' | 'actor' | 'via'>,
): CommandWork | InvalidCommandWork {
  const parsed = parseCommand(name, args);
  if (parsed.ok) return { kind: 'command', command: parsed.command, ...meta };
  const received = typeof args === 'object' && args !== null ? args : { value: args };
  return {
    kind: 'invalid_command',
    name,
    ...meta,
    received,
    refusal: { code: 'invalid_request', message: parsed.message },
  };
}

export function requesterOf(item: WorkItem): Requester {
  switch (item.kind) {
    case 'command':
      return { ...requester(item.command.name, item), ...(item.auto ? { auto: item.auto.action } : {}) };
    case 'invalid_command':
      return requester(item.name, item);
    default:
      return { command: item.kind, request_id: item.request_id, via: 'workflow' };
  }
}

function requester(name: CommandName, item: CommandWork | InvalidCommandWork): Requester {
  return {
    command: name,
    request_id: item.request_id,
    ...(item.actor ? { actor: item.actor } : {}),
    via: item.via,
  };
}

export function toQueued(item: WorkItem): QueuedCommand {
  switch (item.kind) {
    case 'provision':
    case 'reconcile':
      return { name: item.kind, request_id: item.request_id, via: 'workflow' };
    case 'command':
      return {
        ...queued(item.command.name, item, item.command.args),
        ...(item.auto ? { auto: item.auto } : {}),
      };
    case 'invalid_command':
      return queued(item.name, item, item.received);
  }
}

function queued(name: CommandName, item: CommandWork | InvalidCommandWork, args: QueuedArgs): QueuedCommand {
  return {
    name,
    request_id: item.request_id,
    ...(item.actor ? { actor: item.actor } : {}),
    via: item.via,
    ...(Object.keys(args).length ? { args } : {}),
  };
}

export function fromQueued(queued: QueuedCommand): WorkItem {
  const { name, request_id, actor, via } = queued;
  if (name === 'provision' || name === 'reconcile') return { kind: name, request_id };
  if (queued.auto) {
    const work = commandWork(name, queued.args, { request_id, via: 'signal' });
    return work.kind === 'command' ? { ...work, via: 'workflow', auto: queued.auto } : work;
  }
  return commandWork(name, queued.args, {
    request_id,
    ...(actor ? { actor } : {}),
    via: via === 'workflow' ? 'signal' : via,
  });
}
