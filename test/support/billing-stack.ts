import type { Server } from 'node:http';
import type { ScheduleDescription } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import express from 'express';
import { createActivities } from '../../activities/index.ts';
import { authenticate } from '../../api/auth.ts';
import { errorHandler } from '../../api/error-handler.ts';
import { jsonBody } from '../../api/json-body.ts';
import { problem, sendProblem } from '../../api/problem.ts';
import { billingRoutes } from '../../api/routes/billing.ts';
import { loadConfig } from '../../config/env.ts';
import { createLogger } from '../../config/logger.ts';
import { BillingStore } from '../../db/billing-store.ts';
import { secretStoreFor } from '../../providers/secret-store.ts';
import {
  billingScheduleSettings,
  type EnsureScheduleResult,
  ensureBillingSchedule,
} from '../../worker/billing-schedule.ts';
import { createInstanceWorker } from '../../worker/create-worker.ts';
import type { BillingSweepCounts } from '../../workflows/billing-sweep-types.ts';
import { eventually } from './http.ts';
import type { Stack } from './stack.ts';

/** The schedule id of one test file: schedules are global per namespace, so each stack has its own. */
export function billingScheduleIdOf(stack: Stack): string {
  return `billing-sweep-${stack.config.CTRLPLANE_TASK_QUEUE}`;
}

/** The stack's environment with this file's schedule id (and anything else the test sets). */
export function billingEnv(stack: Stack, env: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    CTRLPLANE_TASK_QUEUE: stack.config.CTRLPLANE_TASK_QUEUE,
    CTRLPLANE_BILLING_SCHEDULE_ID: billingScheduleIdOf(stack),
    ...env,
  };
}

/** What a worker start does to the schedule, with this file's schedule id and task queue (and `env`). */
export function ensureTestBillingSchedule(
  stack: Stack,
  env: Record<string, string> = {},
): Promise<EnsureScheduleResult> {
  return ensureBillingSchedule(stack.client, billingScheduleSettings(loadConfig(billingEnv(stack, env))));
}

/**
 * The worker as production builds it, in this process: the stack's own worker is built without a Temporal
 * client, which the billing sweep's activities need to send commands (start the stack with worker: false).
 */
export async function startBillingWorker(stack: Stack): Promise<{ stop(): Promise<void> }> {
  const connection = await NativeConnection.connect({ address: stack.config.TEMPORAL_ADDRESS });
  const worker: Worker = await createInstanceWorker({
    connection,
    namespace: stack.config.TEMPORAL_NAMESPACE,
    taskQueue: stack.config.CTRLPLANE_TASK_QUEUE,
    activities: createActivities({
      providers: stack.providers,
      orm: stack.orm,
      client: stack.client,
      secrets: secretStoreFor(stack.config.CTRLPLANE_SECRET_STORE, process.env),
    }),
    workflowBundlePath: process.env.CTRLPLANE_WORKFLOW_BUNDLE,
    shutdownGraceTimeMs: stack.config.CTRLPLANE_WORKER_SHUTDOWN_GRACE_MS,
  });
  const running = worker.run();
  return {
    async stop() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
      await connection.close();
    },
  };
}

/** The billing admin routes mounted as api/app.ts mounts them (authentication, JSON bodies, problem+json). */
export async function startBillingApi(stack: Stack): Promise<{ url: string; close(): Promise<void> }> {
  const logger = createLogger('billing-test', stack.config.LOG_LEVEL);
  const app = express();
  const v1 = express.Router();
  v1.use(authenticate({ secret: stack.jwtSecret }));
  v1.use(jsonBody());
  v1.use(
    '/admin',
    billingRoutes({
      accounts: new BillingStore(stack.orm),
      client: stack.client,
      scheduleId: billingScheduleIdOf(stack),
      defaultGracePeriod: stack.config.CTRLPLANE_BILLING_GRACE_PERIOD,
    }),
  );
  app.use('/v1', v1);
  app.use((req, res) => {
    sendProblem(res, problem('not_found', `no route for ${req.method} ${req.path}`, { instance: req.path }));
  });
  app.use(errorHandler(logger));
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Runs `trigger` (which should trigger the schedule once) and returns the counts of the sweep it started. */
export async function sweepStartedBy(
  stack: Stack,
  trigger: () => Promise<void>,
): Promise<{ counts: BillingSweepCounts; workflowId: string }> {
  const schedule = stack.client.schedule.getHandle(billingScheduleIdOf(stack));
  const before = (await schedule.describe()).info.numActionsTaken;
  await trigger();
  const started = await eventually('the schedule to start a sweep', async () => {
    const info: ScheduleDescription['info'] = (await schedule.describe()).info;
    return info.numActionsTaken > before ? info.recentActions.at(-1) : undefined;
  });
  const workflowId = started.action.workflow.workflowId;
  // Without a run id, result() follows the chain of continue-as-new runs to the last one's result.
  const counts = await stack.client.workflow
    .getHandle<() => Promise<BillingSweepCounts>>(workflowId)
    .result();
  return { counts, workflowId };
}

/** How many runs a workflow id has had (visibility is eventually consistent: waits for at least `atLeast`). */
export async function runsOf(stack: Stack, workflowId: string, atLeast = 1): Promise<number> {
  return eventually(`${atLeast} runs of ${workflowId}`, async () => {
    let runs = 0;
    for await (const _ of stack.client.workflow.list({ query: `WorkflowId="${workflowId}"` })) runs += 1;
    return runs >= atLeast ? runs : undefined;
  });
}
