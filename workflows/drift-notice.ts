import { defineSignal } from '@temporalio/workflow';
import type { InstanceState } from '../domain/instance-state.ts';

/**
 * A provider watcher saw the instance's objects change so that they no longer match the read model
 * (domain/drift-rule.ts). The workflow looks again itself before it records anything: by the time its turn
 * comes the change may have been undone, or a command may have made it.
 */
export interface DriftNotice {
  /** What the provider reported when the watcher looked. */
  observed: InstanceState;
  /** What the provider's feed said (`docker die`, `pod MODIFIED`, `resync`). */
  reason: string;
}

export const driftNoticeSignal = defineSignal<[DriftNotice?]>('driftNotice');
