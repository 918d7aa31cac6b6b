/**
 * The instance workflow as the worker runs it (the bundle of workflows/index.ts), on a Temporal dev server of
 * the test file's own, with the in-memory activities of test/support/fake-instance-activities.ts: no Docker, no
 * Kubernetes, no PostgreSQL. The dev server is the `temporal` CLI that setup built (never downloaded); it has no
 * time skipping, so tests that need a timer set it short (the drift check interval is a workflow option).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, type Worker } from '@temporalio/worker';
import type { Instance, ServiceSpec } from '../../domain/instance.ts';
import { temporalCliPath } from '../../scripts/temporal-cli.ts';
import { createInstanceWorker } from '../../worker/create-worker.ts';
import { ERRORS_ONLY_LOGGER, writeWorkflowBundle } from '../../worker/workflow-bundle.ts';
import {
  INSTANCE_WORKFLOW_TYPE,
  type InstanceSnapshot,
  type InstanceWorkflowInput,
  type InstanceWorkflowOptions,
  instanceWorkflowId,
  snapshotQuery,
} from '../../workflows/messages.ts';
import { CTRLPLANE_SEARCH_ATTRIBUTES } from '../../workflows/search-attributes.ts';
import { FakeProvider, FakeReadModel } from './fake-instance-activities.ts';

export interface WorkflowHarness {
  client: Client;
  provider: FakeProvider;
  readModel: FakeReadModel;
  /** Starts an instance workflow as the API does for a create (seq 0, nothing provisioned). */
  create(options?: CreateOptions): Promise<WorkflowHandle>;
  /** Starts a workflow from a given input: the form a run continued as new starts from. */
  startFrom(input: InstanceWorkflowInput): Promise<WorkflowHandle>;
  close(): Promise<void>;
}

export interface CreateOptions {
  /** Drift checks are off unless a test asks for them (a check is a timer, and time does not skip here). */
  workflow?: InstanceWorkflowOptions;
  /** The instance as the API inserted it; by default a fresh one of one service (newInstance). */
  instance?: Instance;
}

export async function startWorkflowHarness(): Promise<WorkflowHarness> {
  try {
    Runtime.install({ logger: new DefaultLogger('ERROR') });
  } catch {
    // Installed already in this process.
  }
  // `npm test` bundles the workflows once for the run; alone, they are bundled while the server starts.
  const bundleDir = process.env.CTRLPLANE_WORKFLOW_BUNDLE
    ? undefined
    : mkdtempSync(join(tmpdir(), 'ctrlplane-unit-'));
  const bundlePath = process.env.CTRLPLANE_WORKFLOW_BUNDLE ?? join(bundleDir ?? '', 'workflow-bundle.js');
  const removeBundle = () => bundleDir && rmSync(bundleDir, { recursive: true, force: true });
  const [started, bundled] = await Promise.allSettled([
    TestWorkflowEnvironment.createLocal({
      server: {
        executable: { type: 'existing-path', path: temporalCliPath() },
        // The workflow upserts these on every transition; an unregistered one would fail its task.
        searchAttributes: [...CTRLPLANE_SEARCH_ATTRIBUTES],
        log: { format: 'json', level: 'error' },
      },
    }),
    bundleDir ? writeWorkflowBundle(bundlePath, ERRORS_ONLY_LOGGER) : Promise.resolve(),
  ]);
  if (started.status === 'rejected' || bundled.status === 'rejected') {
    if (started.status === 'fulfilled') await started.value.teardown();
    removeBundle();
    throw started.status === 'rejected' ? started.reason : (bundled as PromiseRejectedResult).reason;
  }
  const env = started.value;
  const provider = new FakeProvider();
  const readModel = new FakeReadModel();
  const taskQueue = `unit-${randomUUID()}`;
  let worker: Worker;
  try {
    worker = await createInstanceWorker({
      connection: env.nativeConnection,
      namespace: env.namespace ?? 'default',
      taskQueue,
      activities: { ...provider.activities(), ...readModel.activities() },
      workflowBundlePath: bundlePath,
      shutdownGraceTimeMs: 0,
    });
  } catch (err) {
    await env.teardown();
    removeBundle();
    throw err;
  }
  const running = worker.run();
  const client = env.client;
  const startFrom = (input: InstanceWorkflowInput) =>
    client.workflow.start(INSTANCE_WORKFLOW_TYPE, {
      workflowId: instanceWorkflowId(input.instance.id),
      taskQueue,
      args: [input],
    });
  return {
    client,
    provider,
    readModel,
    startFrom,
    create: (options = {}) =>
      startFrom({
        instance: options.instance ?? newInstance(),
        seq: 0,
        provisioned: false,
        options: { driftCheckIntervalMs: 0, ...options.workflow },
      }),
    async close() {
      worker.shutdown();
      await running;
      await env.teardown();
      removeBundle();
    },
  };
}

export const WEB_SERVICE = {
  name: 'web',
  image: 'docker.io/ctrlplane-test/web:1',
  resources: { cpu_millis: 250, memory_mb: 64, replicas: 1 },
  ports: [{ container: 8080 }],
} satisfies ServiceSpec;

/** An instance as the API inserts it before its workflow starts. */
export function newInstance(name = 'web app'): Instance {
  const now = new Date().toISOString();
  return {
    id: `inst_${randomBytes(6).toString('hex')}`,
    created_at: now,
    updated_at: now,
    tenant_id: 'ten_unit',
    name,
    slug: name.toLowerCase().replaceAll(' ', '-'),
    provider_name: 'fake',
    provider_ref: '',
    region: 'local',
    state: 'provisioning',
    kind: 'deployment',
    services: [WEB_SERVICE],
    source: { type: 'services', services: [WEB_SERVICE] },
  };
}

/** The workflow's own view, from its snapshot query. */
export function snapshotOf(handle: WorkflowHandle): Promise<InstanceSnapshot> {
  return handle.query(snapshotQuery);
}

/** Polls `probe` until it returns something other than undefined (or false). */
export async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not reached within ${timeoutMs / 1000}s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits until the workflow reports `state` with nothing queued. */
export function settledIn(handle: WorkflowHandle, state: Instance['state']): Promise<InstanceSnapshot> {
  return eventually(`${handle.workflowId} ${state}`, async () => {
    const snapshot = await snapshotOf(handle);
    return snapshot.instance.state === state && snapshot.pending.length === 0 ? snapshot : undefined;
  });
}

export function requestId(label: string): string {
  return `${label}-${randomUUID()}`;
}
