/**
 * The instance workflow's answer to a provider watcher's `driftNotice` signal, on a real Temporal dev server with
 * in-memory activities (test/support/fake-instance-activities.ts): the watchers themselves, on the real engines,
 * are test/provider-watchers.test.ts and test/kubernetes-watch.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { driftNoticeSignal } from '../workflows/drift-notice.ts';
import {
  eventually,
  settledIn,
  snapshotOf,
  startWorkflowHarness,
  type WorkflowHarness,
} from './support/workflow-harness.ts';

let h: WorkflowHarness;

before(async () => {
  h = await startWorkflowHarness();
});

after(async () => {
  await h?.close();
});

describe('a drift notice', () => {
  it('makes the workflow look again and record what the provider reports, and its return', async () => {
    const handle = await h.create();
    const { instance } = await settledIn(handle, 'running');
    const deployment = h.provider.deployments.get(instance.id);
    assert.ok(deployment);

    deployment.observed = { state: 'failed', message: 'OOMKilled' };
    await handle.signal(driftNoticeSignal, { observed: 'failed', reason: 'docker oom' });
    const failed = await settledIn(handle, 'failed');
    assert.equal(failed.instance.error, 'drift: the provider reports the instance failed: OOMKilled');

    deployment.observed = { state: 'running' };
    await handle.signal(driftNoticeSignal, { observed: 'running', reason: 'docker start' });
    await settledIn(handle, 'running');
    const drift = h.readModel.eventsOf(instance.id).filter((e) => e.event.type === 'instance.drift');
    assert.deepEqual(
      drift.map((e) => e.event.payload.to),
      ['failed', 'starting', 'running'],
    );
  });

  it('that the provider no longer bears out records nothing', async () => {
    const handle = await h.create();
    const { instance, seq } = await settledIn(handle, 'running');
    // The notice said stopped, but by the workflow's look the container runs again.
    await handle.signal(driftNoticeSignal, { observed: 'stopped', reason: 'docker die' });
    const looked = () =>
      h.provider.calls.filter((c) => c.instance_id === instance.id && c.activity === 'observeInstance')
        .length;
    await eventually('the workflow looked', async () => looked() === 1);
    const after = await snapshotOf(handle);
    assert.equal(after.instance.state, 'running');
    assert.equal(after.seq, seq, 'nothing recorded');
  });
});
