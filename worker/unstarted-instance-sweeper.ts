import { type Client, WorkflowNotFoundError } from '@temporalio/client';
import type { Logger } from '../config/logger.ts';
import type { Orm } from '../db/database.ts';
import { removeUnstartedInstance, unstartedInstanceIds } from '../db/unstarted-instances.ts';
import { instanceWorkflowId } from '../workflows/messages.ts';

const BATCH = 100;

export interface UnstartedInstanceSweeperOptions {
  orm: Orm;
  client: Client;
  logger: Logger;
  /** How often to look; 0 turns the sweeper off. */
  intervalMs: number;
  /** How old an unstarted row must be: longer than any API takes between its insert and the workflow start. */
  ageMs: number;
}

/**
 * Finds instance rows whose create never got its workflow started (db/unstarted-instances.ts) and, once
 * Temporal says that no such workflow exists, removes them: the create was never answered 201, so the
 * instance never existed for its caller, who may retry with the same Idempotency-Key. Every worker runs one;
 * the removal is conditional, so two sweepers (or a workflow starting meanwhile, whose first transition writes
 * the row again) do no harm. Returns a function that stops it.
 */
export function startUnstartedInstanceSweeper(options: UnstartedInstanceSweeperOptions): () => Promise<void> {
  if (options.intervalMs <= 0) return async () => {};
  let running: Promise<void> | undefined;
  const timer = setInterval(() => {
    running ??= sweepUnstartedInstances(options)
      .then(() => {})
      .catch((err) => options.logger.warn({ err }, 'unstarted-instance sweep failed'))
      .finally(() => {
        running = undefined;
      });
  }, options.intervalMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}

/** One pass; returns the ids of the rows it removed. */
export async function sweepUnstartedInstances(
  options: Pick<UnstartedInstanceSweeperOptions, 'orm' | 'client' | 'logger' | 'ageMs'>,
): Promise<string[]> {
  const removed: string[] = [];
  for (const id of await unstartedInstanceIds(options.orm.em.fork(), options.ageMs, BATCH)) {
    try {
      await options.client.workflow.getHandle(instanceWorkflowId(id)).describe();
      continue; // it runs: its first transition will move the row on
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
    }
    if (await removeUnstartedInstance(options.orm.em.fork(), id)) {
      removed.push(id);
      options.logger.warn({ instance_id: id }, 'removed an instance row whose workflow was never started');
    }
  }
  return removed;
}
