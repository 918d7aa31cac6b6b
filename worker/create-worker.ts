import { fileURLToPath } from 'node:url';
import { type NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import type { InstanceActivities } from '../activities/instance-activity-types.ts';
import { workerTracing } from '../telemetry/temporal.ts';

export interface InstanceWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  activities: InstanceActivities;
  /** A prebuilt workflow bundle (production, tests); without it the worker bundles workflows/ itself. */
  workflowBundlePath?: string;
  shutdownGraceTimeMs: number;
  /** Sticky cache size (CTRLPLANE_WORKER_MAX_CACHED_WORKFLOWS); absent: the SDK's default. */
  maxCachedWorkflows?: number;
  identity?: string;
}

/** The workflow code the bundler starts from: the sources under tsx, their compiled JS when run from dist/. */
export const WORKFLOWS_PATH = fileURLToPath(
  new URL(`../workflows/index${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url),
);

export async function createInstanceWorker(options: InstanceWorkerOptions): Promise<Worker> {
  const workflows: Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath'> = options.workflowBundlePath
    ? { workflowBundle: { codePath: options.workflowBundlePath } }
    : { workflowsPath: WORKFLOWS_PATH };
  return Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: options.taskQueue,
    activities: options.activities,
    ...workflows,
    ...workerTracing(options.workflowBundlePath !== undefined),
    // In-flight provider calls get this long to finish on SIGTERM before they are cancelled (default is 0).
    shutdownGraceTime: options.shutdownGraceTimeMs,
    ...(options.maxCachedWorkflows !== undefined ? { maxCachedWorkflows: options.maxCachedWorkflows } : {}),
    ...(options.identity ? { identity: options.identity } : {}),
  });
}
