import { ApplicationFailure, upsertSearchAttributes } from '@temporalio/workflow';
import type { InstanceActivities } from '../activities/instance-activity-types.ts';
import type { Instance } from '../domain/instance.ts';
import type { InstanceState } from '../domain/instance-state.ts';
import { AUTO_ACTIONS, enteredAt, nextAutoAction } from '../domain/lifecycle-policy.ts';
import type { Release } from '../domain/release.ts';
import { transitionError } from '../domain/state-machine.ts';
import { eventTypeFor } from './lifecycle-events.ts';
import { StateAttribute, SuspendedAttribute } from './search-attributes.ts';
import type { Requester } from './work-items.ts';

export type Conclusion = 'succeeded' | 'failed' | 'rejected';

export interface RecordOptions {
  /** Event type; by default derived from the state entered. */
  type?: string;
  error?: string;
  payload?: Record<string, unknown>;
  /** Set on the event that ends a command, so every accepted command has exactly one concluding event. */
  conclusion?: Conclusion;
}

/**
 * The instance as the workflow knows it, and the only writer of its history: every change is recorded as a
 * snapshot and one lifecycle event under the next sequence number (the read model keeps the highest), with the
 * search attributes the Temporal UI filters on.
 */
export class InstanceRecorder {
  constructor(
    public instance: Instance,
    private sequence: number,
    private readonly recordTransition: InstanceActivities['recordTransition'],
    /** Releases made or moved since the last write: they go with the next one. */
    private readonly stagedReleases: () => Release[] = () => [],
  ) {}

  get seq(): number {
    return this.sequence;
  }

  /** Changes the instance without recording it; the next transition or record writes it. */
  set(changes: Partial<Instance>): void {
    this.instance = { ...this.instance, ...changes };
  }

  /** Moves the instance to `to` (the transition table must allow it) and records the move. */
  async transition(to: InstanceState, by: Requester, options: RecordOptions = {}): Promise<void> {
    const from = this.instance.state;
    if (from !== to) {
      const refusal = transitionError(from, to);
      // Command paths only take moves the table allows; reaching this is a bug, so fail loudly and visibly.
      if (refusal) throw ApplicationFailure.nonRetryable(`internal: ${refusal}`, 'invalid_state');
    }
    this.set({
      state: to,
      error: to === 'failed' ? options.error : undefined,
      ...enteredAt(to, new Date().toISOString()),
    });
    await this.record(by, {
      type: eventTypeFor(to, by.command),
      ...options,
      payload: { from, to, ...options.payload },
    });
  }

  /** Writes the current snapshot and one lifecycle event, under the next sequence number. */
  async record(by: Requester, options: RecordOptions): Promise<void> {
    this.sequence += 1;
    const now = new Date();
    this.set({ updated_at: now.toISOString() });
    this.set({ next_auto_action: nextAutoAction(this.instance, now) });
    // A policy's command concludes with the policy's own event (instance.auto_stopped, …).
    const policyEvent =
      by.auto && options.conclusion === 'succeeded' ? AUTO_ACTIONS[by.auto].event : undefined;
    upsertSearchAttributes([
      { key: StateAttribute, value: this.instance.state },
      { key: SuspendedAttribute, value: this.instance.suspend_reason !== undefined },
    ]);
    const releases = this.stagedReleases();
    await this.recordTransition({
      instance: this.instance,
      seq: this.sequence,
      ...(releases.length > 0 ? { releases } : {}),
      event: {
        type: policyEvent ?? options.type ?? `instance.${this.instance.state}`,
        payload: {
          ...options.payload,
          command: by.command,
          ...(by.auto ? { auto_action: by.auto } : {}),
          request_id: by.request_id,
          ...(by.actor ? { actor: by.actor } : {}),
          ...(options.error ? { error: options.error } : {}),
          ...(options.conclusion ? { conclusion: options.conclusion } : {}),
        },
      },
    });
  }
}
