import { allHandlersFinished, condition, continueAsNew, setHandler } from '@temporalio/workflow';
import { COMMAND_NAMES } from '../domain/commands.ts';
import type { Instance } from '../domain/instance.ts';
import { instanceActivities } from './activity-proxies.ts';
import { InstanceLifecycle } from './instance-lifecycle.ts';
import {
  commandMessages,
  type InstanceWorkflowInput,
  pendingCommandsQuery,
  snapshotQuery,
} from './messages.ts';

const DEFAULT_DRIFT_CHECK_INTERVAL_MS = 60_000;

/** One instance for its whole life: provision, then one command at a time until it is destroyed. */
export async function instanceWorkflow(input: InstanceWorkflowInput): Promise<Instance> {
  const lifecycle = new InstanceLifecycle(input, instanceActivities);

  for (const name of COMMAND_NAMES) {
    const { update, signal } = commandMessages[name] as (typeof commandMessages)['start'];
    setHandler(update, (request) => lifecycle.submit(name, request), {
      validator: (request) => lifecycle.validate(name, request),
      description: `${name} the instance; resolves when the command has completed`,
    });
    setHandler(signal, (request) => lifecycle.signal(name, request), {
      description: `${name} the instance without waiting`,
    });
  }
  setHandler(snapshotQuery, () => lifecycle.snapshot());
  setHandler(pendingCommandsQuery, () => lifecycle.pendingCommands());

  const driftCheckMs = input.options?.driftCheckIntervalMs ?? DEFAULT_DRIFT_CHECK_INTERVAL_MS;
  const woken = () => lifecycle.hasWork() || (!lifecycle.isDestroyed() && lifecycle.shouldContinueAsNew());
  while (!lifecycle.isDestroyed() || lifecycle.hasWork()) {
    // With drift checks off, wait for work alone; otherwise wake at the latest when a check is due.
    let awake = true;
    if (driftCheckMs > 0) awake = await condition(woken, driftCheckMs);
    else await condition(woken);
    if (!awake) {
      lifecycle.requestReconcile();
      continue;
    }
    if (lifecycle.hasWork()) {
      await lifecycle.runNext();
      continue;
    }
    await condition(allHandlersFinished);
    if (!lifecycle.hasWork())
      return continueAsNew<typeof instanceWorkflow>(lifecycle.continueAsNewInput(input.options));
  }
  await condition(allHandlersFinished);
  return lifecycle.instance;
}
