import { defineUpdate } from '@temporalio/workflow';
import type { Instance } from '../domain/instance.ts';
import type { InstanceState } from '../domain/instance-state.ts';

/**
 * Resolves with the instance once it is no longer on its way up (provisioning, starting): what a create with
 * `?wait` waits for. The API sends it with the workflow's start (update-with-start), so waiting costs no polling
 * and no extra round trip; it changes nothing and is not a command.
 */
export const settledUpdate = defineUpdate<Instance, []>('settled');

const ON_ITS_WAY_UP: readonly InstanceState[] = ['provisioning', 'starting'];

export function isSettled(state: InstanceState): boolean {
  return !ON_ITS_WAY_UP.includes(state);
}
