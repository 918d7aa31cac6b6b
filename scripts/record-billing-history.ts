/**
 * Records test/billing-histories/<name>.json: one billing sweep run with stub activities (three overdue
 * instances, one of them suspended for abuse and one unreachable, and one paying tenant's), against a Temporal
 * server such as `temporal server start-dev`. test/billing-sweep-replay.test.ts replays every recorded sweep with
 * the current workflow code, so a change that would break a sweep in flight fails the suite.
 *
 *   TEMPORAL_ADDRESS=127.0.0.1:7233 scripts/node --import tsx scripts/record-billing-history.ts <name>
 */
import { writeFileSync } from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { NativeConnection, Worker } from '@temporalio/worker';
import type { BillingActivities } from '../activities/billing-activities.ts';
import type { SweepTarget } from '../domain/billing-policy.ts';
import { BILLING_SWEEP_WORKFLOW_TYPE, type BillingSweepCounts } from '../workflows/billing-sweep-types.ts';
import { REPO_ROOT } from './temporal-cli.ts';

const name = process.argv[2];
if (!name || !/^[a-z0-9-]+$/.test(name)) throw new Error('usage: record-billing-history.ts <name>');
const address = process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233';
const taskQueue = `billing-history-${Date.now()}`;

const targets: Record<'suspend' | 'unsuspend', SweepTarget[]> = {
  suspend: [
    { tenant_id: 'ten_late', instance_id: 'inst_a', seq: 4 },
    { tenant_id: 'ten_late', instance_id: 'inst_b', seq: 9 },
    { tenant_id: 'ten_late', instance_id: 'inst_c', seq: 2 },
  ],
  unsuspend: [{ tenant_id: 'ten_paid', instance_id: 'inst_d', seq: 11 }],
};
const ABUSED = 'inst_b';
const UNREACHABLE = 'inst_c';

const activities: BillingActivities = {
  async findBillingSweepTargets({ phase, after, limit }) {
    const all = targets[phase];
    const from = after ? all.findIndex((t) => t.instance_id === after.instance_id) + 1 : 0;
    return all.slice(from, from + limit);
  },
  async readSuspension({ instance_id }) {
    return {
      outcome: 'read',
      view: instance_id === ABUSED ? { suspend_reason: 'abuse', queued: [] } : { queued: [] },
    };
  },
  async submitBillingCommand({ instance_id }) {
    if (instance_id === UNREACHABLE) throw new Error('unreachable');
    return { outcome: 'accepted' };
  },
  async sendBillingCommand({ instance_id }) {
    if (instance_id === UNREACHABLE) throw new Error('unreachable');
    if (instance_id === ABUSED) return { outcome: 'refused', message: 'already suspended (abuse)' };
    return { outcome: 'accepted' };
  },
};

const connection = await NativeConnection.connect({ address });
const worker = await Worker.create({
  connection,
  taskQueue,
  workflowsPath: `${REPO_ROOT}workflows/billing-sweep-workflow.ts`,
  activities,
});
const client = new Client({ connection: await Connection.connect({ address }) });
const workflowId = `${taskQueue}-sweep`;
const counts = await worker.runUntil(async () => {
  const handle = await client.workflow.start(BILLING_SWEEP_WORKFLOW_TYPE, {
    taskQueue,
    workflowId,
    args: [{ maxInstancesPerRun: 10, pageSize: 2 }],
  });
  return (await handle.result()) as BillingSweepCounts;
});
const path = `${REPO_ROOT}test/billing-histories/${name}.json`;
writeFileSync(path, historyToJSON(await client.workflow.getHandle(workflowId).fetchHistory()));
console.log(`${path}: ${JSON.stringify(counts)}`);
process.exit(0);
