import type { InstanceState } from './instance-state.ts';

/**
 * Whether what a provider reports differs from the recorded state in a way the instance workflow records as
 * drift: a running instance found stopped, failed or gone, or a stopped or failed one found running. Parts still
 * coming up (provisioning, starting) are not drift. The watchers signal only such instances; the workflow looks
 * again itself before it records anything (workflows/internal-work.ts).
 */
export function isDrift(recorded: InstanceState, observed: InstanceState): boolean {
  if (recorded === 'running')
    return observed === 'failed' || observed === 'stopped' || observed === 'destroyed';
  if (recorded === 'stopped' || recorded === 'failed') return observed === 'running';
  return false;
}

/** A command is moving the instance: what the provider reports now says nothing until it has concluded. */
export function isSettling(recorded: InstanceState): boolean {
  return (
    recorded === 'provisioning' ||
    recorded === 'starting' ||
    recorded === 'stopping' ||
    recorded === 'destroying'
  );
}
