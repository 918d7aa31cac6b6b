import type { temporal } from '@temporalio/proto';
import { Runtime, Worker } from '@temporalio/worker';
import { workerTracing } from '../../telemetry/temporal.ts';
import { WORKFLOWS_PATH } from '../../worker/create-worker.ts';
import { ERRORS_ONLY_LOGGER } from '../../worker/workflow-bundle.ts';

/**
 * Replays a recorded history with the current workflow code, as the worker runs it: from the prebuilt bundle
 * when CTRLPLANE_WORKFLOW_BUNDLE names one, with the worker's sinks (the bundle's tracing interceptors export
 * their spans through one; without it every workflow span logs an error). Throws on non-determinism.
 */
export async function replayHistory(
  history: temporal.api.history.v1.IHistory,
  workflowId: string,
): Promise<void> {
  quietRuntime();
  const bundlePath = process.env.CTRLPLANE_WORKFLOW_BUNDLE;
  await Worker.runReplayHistory(
    {
      ...(bundlePath ? { workflowBundle: { codePath: bundlePath } } : { workflowsPath: WORKFLOWS_PATH }),
      sinks: workerTracing(Boolean(bundlePath)).sinks,
    },
    history,
    workflowId,
  );
}

let runtimeInstalled = false;

/** Each replay's worker logs its state changes at INFO: only errors are worth a line in the test output. */
function quietRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  try {
    Runtime.install({ logger: ERRORS_ONLY_LOGGER });
  } catch {
    // Installed already by something else in this process: its logger stays.
  }
}
