import { condition, defineSignal, defineUpdate, setHandler } from '@temporalio/workflow';

/**
 * The benchmark's baseline workflow (bundled on its own by scripts/bench.ts, never by the worker): an update
 * whose handler returns at once, so `executeUpdate` measures a bare Temporal update round trip.
 */
export const pingUpdate = defineUpdate<number, [number]>('ping');
export const finishSignal = defineSignal('finish');

export async function benchEchoWorkflow(): Promise<number> {
  let pings = 0;
  let finished = false;
  setHandler(pingUpdate, (n) => {
    pings++;
    return n;
  });
  setHandler(finishSignal, () => {
    finished = true;
  });
  await condition(() => finished);
  return pings;
}
