import { ActivityFailure, type ActivityOptions, TimeoutFailure } from '@temporalio/workflow';

/**
 * The provider calls of an instance whose provider has a host agent go to that agent's task queue. An agent
 * that is down picks nothing up: each call then waits in the queue until the agent is back. The call is given a
 * schedule-to-start timeout so the workflow learns that it waits (the `pendingCommands` query and the API's
 * answers say so) and schedules it again; the timeout doubles each time, so a long outage adds few events.
 * A call that was never picked up never ran, so scheduling it again is safe (and provider calls are
 * idempotent anyway).
 */
const FIRST_PICKUP_TIMEOUT_MS = 15_000;
const LONGEST_PICKUP_TIMEOUT_MS = 10 * 60_000;

/** What a command waits for while no agent picks its provider call up. */
export interface AgentWait {
  provider_name: string;
  task_queue: string;
  /** The provider call waiting (an activity name, e.g. `stopInstance`). */
  activity: string;
  /** When the call was first scheduled (workflow time, ISO 8601). */
  since: string;
  message: string;
}

export interface ProviderQueue {
  provider_name: string;
  task_queue: string;
}

/** The instance's way to its provider's agent, and whether a call is waiting for it now. */
export class AgentPickup {
  private current: AgentWait | undefined;

  constructor(readonly queue: ProviderQueue) {}

  /** The wait in progress, if a provider call has not been picked up within its pickup timeout. */
  get waiting(): AgentWait | undefined {
    return this.current;
  }

  /** Runs `call` on the agent's queue until an agent picks it up; its outcome is the call's. */
  async run<T>(
    activity: string,
    options: ActivityOptions,
    call: (options: ActivityOptions) => Promise<T>,
  ): Promise<T> {
    const since = new Date(Date.now()).toISOString();
    let timeoutMs = FIRST_PICKUP_TIMEOUT_MS;
    try {
      for (;;) {
        try {
          return await call({
            ...options,
            taskQueue: this.queue.task_queue,
            scheduleToStartTimeout: timeoutMs,
          });
        } catch (err) {
          if (!notPickedUp(err)) throw err;
          this.current = {
            provider_name: this.queue.provider_name,
            task_queue: this.queue.task_queue,
            activity,
            since,
            message:
              `waiting for the agent of provider ${this.queue.provider_name}: ${activity} has not been picked ` +
              `up from task queue ${this.queue.task_queue} since ${since}; it runs when the agent is back`,
          };
          timeoutMs = Math.min(timeoutMs * 2, LONGEST_PICKUP_TIMEOUT_MS);
        }
      }
    } finally {
      this.current = undefined;
    }
  }
}

function notPickedUp(err: unknown): boolean {
  return (
    err instanceof ActivityFailure &&
    err.cause instanceof TimeoutFailure &&
    err.cause.timeoutType === 'SCHEDULE_TO_START'
  );
}
