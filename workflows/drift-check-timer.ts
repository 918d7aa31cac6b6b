import { CancellationScope, condition, sleep } from '@temporalio/workflow';

export type Wake = 'ready' | 'drift_check_due';

/**
 * Waits until `ready()` holds or the next drift check falls due, whichever comes first. The drift check is a
 * timer started with each wait and cancelled when work comes first (what `condition(ready, interval)` does,
 * written out so the timer can be seen). An interval of 0 turns drift checks off: then it waits for `ready`
 * alone.
 */
export async function untilReadyOrDriftCheck(ready: () => boolean, intervalMs: number): Promise<Wake> {
  if (intervalMs <= 0) {
    await condition(ready);
    return 'ready';
  }
  return CancellationScope.cancellable(async () => {
    try {
      return await Promise.race([
        sleep(intervalMs).then((): Wake => 'drift_check_due'),
        condition(ready).then((): Wake => 'ready'),
      ]);
    } finally {
      CancellationScope.current().cancel();
    }
  });
}
