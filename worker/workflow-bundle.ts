import { writeFileSync } from 'node:fs';
import type { Logger as TemporalLogger } from '@temporalio/common';
import { bundleWorkflowCode } from '@temporalio/worker';
import { WORKFLOW_TRACING_INTERCEPTORS } from '../telemetry/temporal.ts';
import { WORKFLOWS_PATH } from './create-worker.ts';

const silent = () => {};
/** A Temporal logger that prints only errors: webpack's progress is noise in tests, scripts and benches. */
export const ERRORS_ONLY_LOGGER: TemporalLogger = {
  log: silent,
  trace: silent,
  debug: silent,
  info: silent,
  warn: silent,
  error: (message: string) => console.error(message),
};

/**
 * Bundles the workflow code into one file a worker loads with CTRLPLANE_WORKFLOW_BUNDLE, so workers start
 * without running webpack (the production image builds it once, the test runner once per run).
 */
export async function writeWorkflowBundle(outPath: string, logger?: TemporalLogger): Promise<void> {
  const { code } = await bundleWorkflowCode({
    workflowsPath: WORKFLOWS_PATH,
    workflowInterceptorModules: [WORKFLOW_TRACING_INTERCEPTORS],
    ...(logger ? { logger } : {}),
  });
  writeFileSync(outPath, code);
}
