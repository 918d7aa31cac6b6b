import type { Refusal } from '../domain/command-rules.ts';
import type { CommandArgs } from '../domain/commands.ts';
import type { Instance } from '../domain/instance.ts';
import { autoActionRefusal } from '../domain/lifecycle-policy.ts';
import { POLICY_FIELDS } from '../domain/schemas/lifecycle-policy.ts';
import type { InstanceLifecycle } from './instance-lifecycle.ts';
import type { CommandWork } from './work-items.ts';

/**
 * A PATCH's policy fields applied to the instance (null removes a policy); the names of those changed. The
 * recorder computes the next action from them when the update's event is written.
 */
export function applyPolicyChanges(lifecycle: InstanceLifecycle, args: CommandArgs['update']): string[] {
  const changes: Partial<Instance> = {};
  const changed: string[] = [];
  for (const field of POLICY_FIELDS) {
    const value = args[field];
    if (value === undefined) continue;
    const stored =
      field === 'expires_at' && typeof value === 'string' ? new Date(value).toISOString() : value;
    Object.assign(changes, { [field]: stored ?? undefined });
    changed.push(field);
  }
  if (changed.length === 0) return changed;
  const { instance } = lifecycle;
  const now = new Date().toISOString();
  // An instance started or stopped before policies existed counts from now.
  if (instance.state === 'running' && !instance.last_started_at) changes.last_started_at = now;
  if (instance.state === 'stopped' && !instance.stopped_at) changes.stopped_at = now;
  lifecycle.recorder.set(changes);
  return changed;
}

/** Why a policy's command is not taken when its turn comes; undefined for anyone else's command. */
export function policyRefusal(item: CommandWork, lifecycle: InstanceLifecycle): Refusal | undefined {
  if (!item.auto) return undefined;
  return autoActionRefusal(item.auto.action, lifecycle.instance, lifecycle.view(), new Date());
}
