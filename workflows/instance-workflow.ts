import { allHandlersFinished, condition, continueAsNew, setHandler } from '@temporalio/workflow';
import type { Instance } from '../domain/instance';
import { LIFECYCLE_COMMANDS } from '../domain/state-machine';
import { instanceActivities } from './activity-proxies';
import { InstanceLifecycle } from './instance-lifecycle';
import {
  commandSignals,
  commandUpdates,
  type InstanceWorkflowInput,
  pendingCommandsQuery,
  snapshotQuery,
} from './messages';

/** One instance for its whole life: provision, then one command at a time until it is destroyed. */
export async function instanceWorkflow(input: InstanceWorkflowInput): Promise<Instance> {
  const lifecycle = new InstanceLifecycle(input, instanceActivities);

  for (const name of LIFECYCLE_COMMANDS) {
    setHandler(commandUpdates[name], (request) => lifecycle.submit(name, request), {
      validator: (request) => lifecycle.validate(name, request),
      description: `${name} the instance; resolves when the command has completed`,
    });
    setHandler(commandSignals[name], (request) => lifecycle.signal(name, request), {
      description: `${name} the instance without waiting`,
    });
  }
  setHandler(snapshotQuery, () => lifecycle.snapshot());
  setHandler(pendingCommandsQuery, () => lifecycle.pendingCommands());

  while (!lifecycle.isDestroyed() || lifecycle.hasWork()) {
    await condition(
      () => lifecycle.hasWork() || (!lifecycle.isDestroyed() && lifecycle.shouldContinueAsNew()),
    );
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
