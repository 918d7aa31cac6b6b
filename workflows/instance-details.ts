import { setCurrentDetails } from '@temporalio/workflow';
import type { Instance } from '../domain/instance.ts';
import type { Outcome, Requester } from './work-items.ts';

/**
 * The instance's line in the Temporal UI's "current details": its state and what was done last, so that a
 * person opening the workflow sees where the instance stands without reading the history. Not in the history.
 */
export function showCurrentDetails(
  instance: Instance,
  last: Requester,
  outcome: Outcome,
  release: string | undefined,
): void {
  const who = last.actor ? ` by ${last.actor}` : last.via === 'workflow' ? ' (by the workflow)' : '';
  const how = outcome.ok ? 'succeeded' : `failed: ${outcome.code}`;
  setCurrentDetails(
    `**${instance.name}** is **${instance.state}**${instance.suspend_reason !== undefined ? ` (suspended: ${instance.suspend_reason})` : ''}. ` +
      `Last: ${last.command}${who}, ${how}.${release ? `\n\n${release}` : ''}`,
  );
}
