import type { SignalDefinition, UpdateDefinition } from '@temporalio/common';
import {
  allHandlersFinished,
  condition,
  continueAsNew,
  patched,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import { commandRefusal } from '../domain/command-rules.ts';
import { COMMAND_NAMES, type CommandName } from '../domain/commands.ts';
import type { Instance } from '../domain/instance.ts';
import { instanceActivities } from './activity-proxies.ts';
import { AgentPickup } from './agent-pickup.ts';
import { runCommand } from './command-handlers.ts';
import { CommandInbox } from './command-inbox.ts';
import { untilReadyOrDriftCheck } from './drift-check-timer.ts';
import { driftNoticeSignal } from './drift-notice.ts';
import { showCurrentDetails } from './instance-details.ts';
import { InstanceLifecycle } from './instance-lifecycle.ts';
import { driftCheckApplies, provision, reconcile } from './internal-work.ts';
import { policyRefusal } from './lifecycle-policy-changes.ts';
import { watchLifecyclePolicies } from './lifecycle-policy-timer.ts';
import {
  type CommandRequest,
  commandMessages,
  type InstanceWorkflowInput,
  pendingCommandsQuery,
  snapshotQuery,
} from './messages.ts';
import { isSettled, settledUpdate } from './settled-update.ts';
import { type Outcome, requesterOf, type WorkItem } from './work-items.ts';

const DEFAULT_MAX_COMMANDS_PER_RUN = 500;
const DEFAULT_DRIFT_CHECK_INTERVAL_MS = 60_000;
/** Patch: drift comes from the provider watchers' notices; the periodic check runs only when asked for. */
const DRIFT_FROM_WATCHERS = 'drift-from-watchers';

/**
 * One instance for its whole life: provision, then one piece of work at a time (a command, or a drift check
 * when a provider watcher saw its objects change) until it is destroyed. A long life continues as new, carrying the
 * instance, the queue and the request ids seen (docs/lifecycle.md).
 */
export async function instanceWorkflow(input: InstanceWorkflowInput): Promise<Instance> {
  const pickup = input.provider_task_queue
    ? new AgentPickup({ provider_name: input.instance.provider_name, task_queue: input.provider_task_queue })
    : undefined;
  const lifecycle = new InstanceLifecycle(input, instanceActivities(pickup));
  const inbox = new CommandInbox(
    input,
    () => lifecycle.view(),
    () => lifecycle.instance,
  );
  if (!lifecycle.provisioned) inbox.requestProvision(lifecycle.instance.id);
  for (const name of COMMAND_NAMES) handleCommand(inbox, name);
  // The running command (the queue's first) shows what it waits for, while its provider's agent is away.
  const pendingNow = () => {
    const [running, ...rest] = inbox.pending();
    const waiting = pickup?.waiting;
    return running ? [waiting ? { ...running, waiting_for: waiting } : running, ...rest] : [];
  };
  setHandler(snapshotQuery, () => ({
    instance: lifecycle.instance,
    seq: lifecycle.recorder.seq,
    pending: pendingNow(),
  }));
  setHandler(pendingCommandsQuery, pendingNow);
  watchLifecyclePolicies(lifecycle, inbox);
  setHandler(
    driftNoticeSignal,
    () => {
      if (driftCheckApplies(lifecycle)) inbox.requestObservation();
    },
    { description: "a provider watcher saw the instance's objects change: look again" },
  );
  setHandler(settledUpdate, async () => {
    await condition(() => isSettled(lifecycle.instance.state));
    return lifecycle.instance;
  });

  const driftCheckMs =
    input.options?.driftCheckIntervalMs ??
    (patched(DRIFT_FROM_WATCHERS) ? 0 : DEFAULT_DRIFT_CHECK_INTERVAL_MS);
  const maxPerRun = input.options?.maxCommandsPerRun ?? DEFAULT_MAX_COMMANDS_PER_RUN;
  const timeToContinueAsNew = () =>
    !inbox.hasWork() && (inbox.concluded >= maxPerRun || workflowInfo().continueAsNewSuggested);

  while (!lifecycle.isDestroyed() || inbox.hasWork()) {
    const ready = () => inbox.hasWork() || (!lifecycle.isDestroyed() && timeToContinueAsNew());
    if ((await untilReadyOrDriftCheck(ready, driftCheckMs)) === 'drift_check_due') {
      if (driftCheckApplies(lifecycle)) inbox.requestDriftCheck();
      continue;
    }
    const item = inbox.next();
    if (item) {
      const outcome = await inbox.runInTraceOf(item, () => run(lifecycle, item));
      inbox.conclude(item, outcome);
      showCurrentDetails(lifecycle.instance, requesterOf(item), outcome, lifecycle.releases.currentDetails());
      continue;
    }
    // Time to continue as new: once every handler has returned, unless one queued more work meanwhile.
    await condition(allHandlersFinished);
    if (!inbox.hasWork()) {
      return continueAsNew<typeof instanceWorkflow>(nextRunInput(lifecycle, inbox, input.options));
    }
  }
  await condition(allHandlersFinished);
  return lifecycle.instance;
}

/** The update and the signal of one command: both go through the inbox. */
function handleCommand(inbox: CommandInbox, name: CommandName): void {
  // Widened to any command's request: the inbox parses the arguments of `name` itself.
  const update: UpdateDefinition<Instance, [CommandRequest], CommandName> = commandMessages[name].update;
  const signal: SignalDefinition<[CommandRequest?], CommandName> = commandMessages[name].signal;
  setHandler(update, (request) => inbox.submit(name, request), {
    validator: (request) => inbox.validate(name, request),
    description: `${name} the instance; resolves when the command has completed`,
  });
  setHandler(signal, (request) => inbox.signal(name, request), {
    description: `${name} the instance without waiting (a request_id is derived when none is given)`,
  });
}

/** The next run's input: the instance and the queue's memory, in the field order of every earlier version. */
function nextRunInput(
  lifecycle: InstanceLifecycle,
  inbox: CommandInbox,
  options: InstanceWorkflowInput['options'],
): InstanceWorkflowInput {
  const { instance, seq, provisioned, ...rest } = lifecycle.carryOver();
  return { instance, seq, provisioned, ...inbox.carryOver(), ...rest, options };
}

/** Runs one piece of work to its concluding event. */
async function run(lifecycle: InstanceLifecycle, item: WorkItem): Promise<Outcome> {
  const by = requesterOf(item);
  switch (item.kind) {
    case 'provision':
      return provision(lifecycle, by);
    case 'reconcile':
      await reconcile(lifecycle, by);
      return { ok: true, instance: lifecycle.instance };
    case 'invalid_command':
      return lifecycle.reject(by, item.refusal);
    case 'command': {
      const refusal = policyRefusal(item, lifecycle) ?? commandRefusal(item.command, lifecycle.view());
      return refusal ? lifecycle.reject(by, refusal) : runCommand(lifecycle, item.command, by);
    }
  }
}
