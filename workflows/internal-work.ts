import { ActivityFailure } from '@temporalio/workflow';
import type { InstanceState } from '../domain/instance-state.ts';
import type { InstanceLifecycle } from './instance-lifecycle.ts';
import { DRIFT_EVENT } from './lifecycle-events.ts';
import type { Outcome, Requester } from './work-items.ts';

/** The workflow's own work, queued with the commands but asked for by no one: provision and the drift check. */

/** The first provision: the instance as the API created it, provisioned and started. */
export async function provision(lifecycle: InstanceLifecycle, by: Requester): Promise<Outcome> {
  const { recorder } = lifecycle;
  if (!lifecycle.releases.current) lifecycle.newRelease(by, 'create');
  if (recorder.seq === 0) await recorder.transition('provisioning', by);
  try {
    await lifecycle.provisionServices();
    await recorder.transition('starting', by);
    await lifecycle.startServices();
  } catch (err) {
    return lifecycle.failDeploy(by, err);
  }
  return lifecycle.succeed(by, 'running');
}

/** Whether a drift check makes sense now: only once the provider holds the instance, and until it is deleted. */
export function driftCheckApplies(lifecycle: InstanceLifecycle): boolean {
  return lifecycle.provisioned && !lifecycle.isDestroyed();
}

/**
 * Drift: compares the provider's view with the workflow's and records what happened outside. A suspended
 * instance found running is stopped again; anything else found changed is recorded as a transition. It never
 * fails: a provider that cannot be asked is asked again at the next check.
 */
export async function reconcile(lifecycle: InstanceLifecycle, by: Requester): Promise<void> {
  const { recorder, activities } = lifecycle;
  const state = recorder.instance.state;
  if (state !== 'running' && state !== 'stopped' && state !== 'failed') return;
  let observed: { state: InstanceState; message?: string };
  try {
    observed = await activities.observeInstance(lifecycle.providerCall());
  } catch {
    return; // the provider is away; look again at the next check
  }
  const drift = { observed: observed.state, ...(observed.message ? { message: observed.message } : {}) };
  const suspended = recorder.instance.suspend_reason !== undefined;
  try {
    // Pods still coming up (provisioning, starting) are not drift; gone, stopped or failed parts are.
    if (state === 'running' && ['failed', 'stopped', 'destroyed'].includes(observed.state)) {
      const error = `drift: the provider reports the instance ${observed.state}${observed.message ? `: ${observed.message}` : ''}`;
      await recorder.transition('failed', by, { type: DRIFT_EVENT, error, payload: drift });
    } else if (state !== 'running' && observed.state === 'running') {
      if (suspended) {
        await activities.stopInstance(lifecycle.providerCall());
        await recorder.record(by, {
          type: DRIFT_EVENT,
          payload: { ...drift, action: 'stopped again: suspended' },
        });
      } else {
        await recorder.transition('starting', by, { type: DRIFT_EVENT, payload: drift });
        await recorder.transition('running', by, { type: DRIFT_EVENT, payload: drift });
      }
    }
  } catch (err) {
    if (!(err instanceof ActivityFailure)) throw err;
  }
}
