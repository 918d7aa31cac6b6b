import { Cron } from 'croner';
import { commandRefusal, type InstanceView, type Refusal } from './command-rules.ts';
import type { Command } from './commands.ts';
import { durationSeconds } from './duration.ts';
import type { Instance } from './instance.ts';
import type { InstanceState } from './instance-state.ts';
import { isServicesSource } from './sources/deployment-source.ts';

/**
 * Lifecycle policies: what the control plane does to an instance by time, on its own. Each policy names the
 * command it sends (through the same queue and rules as anyone's) and the event that concludes it. Pure code:
 * the instance workflow computes the next action from the instance, the API shows it as `next_auto_action`.
 */

export interface AutoStopPolicy {
  /** Stops the instance this long after it last started (a start or restart resets it). */
  after: string;
}

export interface AutoDeletePolicy {
  /** Deletes the instance once it has been stopped this long. */
  after_stopped: string;
}

export interface SchedulePolicy {
  /** Cron expression (five fields, or six with seconds first) of the times to start a stopped instance. */
  start?: string;
  /** Cron expression of the times to stop a running instance. */
  stop?: string;
  /** IANA time zone the expressions are read in. */
  timezone: string;
}

export const AUTO_ACTIONS = {
  auto_stop: { command: 'stop', event: 'instance.auto_stopped' },
  auto_delete: { command: 'delete', event: 'instance.auto_deleted' },
  expire: { command: 'delete', event: 'instance.expired' },
  scheduled_start: { command: 'start', event: 'instance.scheduled_started' },
  scheduled_stop: { command: 'stop', event: 'instance.scheduled_stopped' },
} as const;

export type AutoActionName = keyof typeof AUTO_ACTIONS;
export const AUTO_ACTION_NAMES = Object.keys(AUTO_ACTIONS) as [AutoActionName, ...AutoActionName[]];

export interface NextAutoAction {
  action: AutoActionName;
  /** RFC 3339 time the action falls due. */
  at: string;
}

/** The fields of an instance the policies read. */
export type PolicyFields = Pick<
  Instance,
  | 'state'
  | 'suspend_reason'
  | 'auto_stop'
  | 'auto_delete'
  | 'expires_at'
  | 'schedule'
  | 'last_started_at'
  | 'stopped_at'
  | 'source'
>;

/** Whether an instance has any lifecycle policy at all. */
export function hasPolicies(instance: PolicyFields): boolean {
  return (
    instance.auto_stop !== undefined ||
    instance.auto_delete !== undefined ||
    instance.expires_at !== undefined ||
    instance.schedule !== undefined
  );
}

/**
 * The action the policies will take next, after `now`'s schedule occurrences: the earliest deadline of those
 * that apply in the instance's state (auto_stop and a scheduled stop while running, auto_delete and a
 * scheduled start while stopped, expiry in any state but deletion). A suspended instance has none: a policy
 * never starts or deletes it, and it is stopped already.
 */
export function nextAutoAction(instance: PolicyFields, now: Date): NextAutoAction | undefined {
  const { state } = instance;
  if (instance.suspend_reason !== undefined || state === 'destroying' || state === 'destroyed')
    return undefined;
  const due: { action: AutoActionName; at: number }[] = [];
  if (instance.expires_at !== undefined) due.push({ action: 'expire', at: Date.parse(instance.expires_at) });
  // Start and stop apply to a services source only (an engine runs the others): those policies wait.
  if (!isServicesSource(instance.source?.type)) return earliest(due);
  if (state === 'running') {
    if (instance.auto_stop && instance.last_started_at) {
      due.push({ action: 'auto_stop', at: after(instance.last_started_at, instance.auto_stop.after) });
    }
    const stop = nextOccurrence(instance.schedule, 'stop', now);
    if (stop !== undefined) due.push({ action: 'scheduled_stop', at: stop });
  }
  if (state === 'stopped') {
    if (instance.auto_delete && instance.stopped_at) {
      due.push({ action: 'auto_delete', at: after(instance.stopped_at, instance.auto_delete.after_stopped) });
    }
    const start = nextOccurrence(instance.schedule, 'start', now);
    if (start !== undefined) due.push({ action: 'scheduled_start', at: start });
  }
  return earliest(due);
}

/** The time the policies count from that entering `to` sets: a start for auto_stop, a stop for auto_delete. */
export function enteredAt(to: InstanceState, at: string): Pick<Instance, 'last_started_at' | 'stopped_at'> {
  if (to === 'running') return { last_started_at: at };
  if (to === 'stopped') return { stopped_at: at };
  return {};
}

/** The command an action sends. */
export function autoActionCommand(action: AutoActionName): Command {
  return { name: AUTO_ACTIONS[action].command, args: {} };
}

/**
 * Why an action that fell due is not taken when its turn in the queue comes (the instance changed meanwhile:
 * suspended, restarted, stopped by hand, its policy removed), or the rules' refusal of its command; undefined
 * when it goes ahead.
 */
export function autoActionRefusal(
  action: AutoActionName,
  instance: PolicyFields,
  view: InstanceView,
  now: Date,
): Refusal | undefined {
  if (instance.suspend_reason !== undefined) {
    return {
      code: 'suspended',
      message: `${action} is not taken: the instance is suspended (${instance.suspend_reason})`,
    };
  }
  const stale = (why: string): Refusal => ({
    code: 'invalid_state',
    message: `${action} is no longer due: ${why}`,
  });
  const t = now.getTime();
  switch (action) {
    case 'expire':
      if (instance.expires_at === undefined || Date.parse(instance.expires_at) > t)
        return stale('expires_at changed');
      break;
    case 'auto_stop':
      if (instance.state !== 'running' || !instance.auto_stop || !instance.last_started_at) {
        return stale(`the instance is ${instance.state}${instance.auto_stop ? '' : ' and has no auto_stop'}`);
      }
      if (after(instance.last_started_at, instance.auto_stop.after) > t)
        return stale('it started again since');
      break;
    case 'auto_delete':
      if (instance.state !== 'stopped' || !instance.auto_delete || !instance.stopped_at) {
        return stale(
          `the instance is ${instance.state}${instance.auto_delete ? '' : ' and has no auto_delete'}`,
        );
      }
      if (after(instance.stopped_at, instance.auto_delete.after_stopped) > t)
        return stale('it stopped again since');
      break;
    case 'scheduled_start':
      if (instance.state !== 'stopped' || instance.schedule?.start === undefined) {
        return stale(`the instance is ${instance.state}`);
      }
      break;
    case 'scheduled_stop':
      if (instance.state !== 'running' || instance.schedule?.stop === undefined) {
        return stale(`the instance is ${instance.state}`);
      }
      break;
  }
  return commandRefusal(autoActionCommand(action), view);
}

function earliest(due: { action: AutoActionName; at: number }[]): NextAutoAction | undefined {
  // Earliest first; on a tie, the order of AUTO_ACTIONS (an expiry before anything else that falls then).
  const order = AUTO_ACTION_NAMES;
  const [first] = due
    .filter((d) => Number.isFinite(d.at))
    .sort((a, b) => a.at - b.at || order.indexOf(a.action) - order.indexOf(b.action));
  return first ? { action: first.action, at: new Date(first.at).toISOString() } : undefined;
}

/** The first time after `now` that a schedule's expression names, in its time zone. */
export function nextOccurrence(
  schedule: SchedulePolicy | undefined,
  which: 'start' | 'stop',
  now: Date,
): number | undefined {
  const pattern = schedule?.[which];
  if (!schedule || pattern === undefined) return undefined;
  const next = cronOf(pattern, schedule.timezone).nextRun(now);
  return next ? next.getTime() : undefined;
}

/** A cron expression read in `timezone`; throws when either is invalid. Never runs anything. */
export function cronOf(pattern: string, timezone?: string): Cron {
  return new Cron(pattern, { paused: true, mode: '5-or-6-parts', ...(timezone ? { timezone } : {}) });
}

function after(iso: string, duration: string): number {
  return Date.parse(iso) + (durationSeconds(duration) ?? Number.NaN) * 1000;
}
