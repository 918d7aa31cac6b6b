import { patched } from '@temporalio/workflow';
import type { Release } from '../domain/release.ts';
import { failureOf, type InstanceLifecycle } from './instance-lifecycle.ts';
import { DEPLOY_ROLLED_BACK_EVENT } from './lifecycle-events.ts';
import type { Outcome, Requester } from './work-items.ts';

/** Patch: a release that fails to provision or start goes back to the one that ran before (safe deploys). */
const SAFE_DEPLOYS = 'safe-deploys';

export interface DeployOptions {
  /** Provision the new spec first (else only start what the provider holds). */
  provision: boolean;
  /** The release that ran before: where a failure goes back to. Absent: a failure leaves the instance failed. */
  previous: Release | undefined;
  /** `?rollback_on_failure=false` keeps the instance failed, as before safe deploys. */
  rollbackOnFailure: boolean;
}

/**
 * Deploys the instance's current release: provision (when asked) and start. Undefined when it runs; otherwise
 * the command's concluding outcome, always failed: the release is marked failed with the reason and, unless
 * the caller opted out, the previous release is provisioned and started again, so the instance keeps serving
 * (the command concludes failed all the same, naming both). If the previous one cannot come back either, the
 * instance is failed.
 */
export async function deployRelease(
  lifecycle: InstanceLifecycle,
  by: Requester,
  options: DeployOptions,
): Promise<Outcome | undefined> {
  try {
    if (options.provision) await lifecycle.provisionServices();
    await lifecycle.startServices();
    return undefined;
  } catch (err) {
    const { previous } = options;
    const failed = lifecycle.releases.current;
    const goBack =
      options.rollbackOnFailure &&
      previous !== undefined &&
      failed !== undefined &&
      failed.id !== previous.id;
    if (!goBack || !patched(SAFE_DEPLOYS)) return lifecycle.failDeploy(by, err);
    const { code, message } = failureOf(by, err);
    lifecycle.releases.markFailed(message);
    lifecycle.revertTo(previous);
    try {
      await lifecycle.provisionServices();
      await lifecycle.startServices();
    } catch (backErr) {
      return lifecycle.fail(by, backErr);
    }
    const summary = `${message}; release v${failed.number} failed and the instance went back to v${previous.number}`;
    const event = {
      type: DEPLOY_ROLLED_BACK_EVENT,
      error: summary,
      payload: { code, failed_release: failed.number, restored_release: previous.number },
      conclusion: 'failed' as const,
    };
    if (lifecycle.instance.state === 'running') await lifecycle.recorder.record(by, event);
    else await lifecycle.recorder.transition('running', by, event);
    return { ok: false, code, message: summary };
  }
}
