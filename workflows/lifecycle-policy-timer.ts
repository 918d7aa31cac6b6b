import { condition, patched } from '@temporalio/workflow';
import type { NextAutoAction } from '../domain/lifecycle-policy.ts';
import type { CommandInbox } from './command-inbox.ts';
import type { InstanceLifecycle } from './instance-lifecycle.ts';

/** Patch: lifecycle policies queue their commands when they fall due (histories from before never did). */
export const LIFECYCLE_POLICIES = 'lifecycle-policies';

/**
 * Runs beside the work loop for the whole run: one durable timer until the instance's `next_auto_action`
 * (which the recorder computes from the instance on every write) falls due, then that action's command is
 * queued like anyone's. The timer is started again whenever the next action changes (a start resets
 * auto_stop, a PATCH changes a policy), and nothing is waited for while no action is due.
 */
export function watchLifecyclePolicies(lifecycle: InstanceLifecycle, inbox: CommandInbox): void {
  void (async () => {
    // An action is queued once; until the instance's next action changes, it is not waited for again.
    const queued = new Set<string>();
    const nextKey = () => keyOf(lifecycle.instance.next_auto_action);
    let enabled: boolean | undefined;
    for (;;) {
      const next = lifecycle.instance.next_auto_action;
      const key = keyOf(next);
      if (!next || queued.has(key)) {
        await condition(() => nextKey() !== key);
        continue;
      }
      enabled ??= patched(LIFECYCLE_POLICIES);
      if (!enabled) return;
      const waitMs = Date.parse(next.at) - Date.now();
      if (waitMs > 0 && (await condition(() => nextKey() !== key, waitMs))) continue;
      queued.add(key);
      inbox.requestAutoAction(next);
    }
  })();
}

function keyOf(action: NextAutoAction | undefined): string {
  return action ? `${action.action}/${action.at}` : '';
}
