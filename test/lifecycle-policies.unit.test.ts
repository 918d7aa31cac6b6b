/**
 * Lifecycle policies in the instance workflow, through its public surface: the bundled workflow on a real
 * Temporal dev server, with the in-memory activities of test/support/fake-instance-activities.ts (no Docker,
 * no PostgreSQL; test/lifecycle-policies.test.ts runs them on the whole stack). The dev server does not skip
 * time, so the policies here are seconds long; schedules use six-field cron expressions (seconds first).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type WorkflowHandle, WorkflowUpdateStage } from '@temporalio/client';
import type { Instance } from '../domain/instance.ts';
import { nextAutoAction } from '../domain/lifecycle-policy.ts';
import { commandMessages } from '../workflows/messages.ts';
import type { StoredTransition } from './support/fake-instance-activities.ts';
import {
  eventually,
  newInstance,
  requestId,
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

function create(policies: Partial<Instance>): Promise<WorkflowHandle> {
  return h.create({ instance: { ...newInstance(), ...policies } });
}

function send(
  handle: WorkflowHandle,
  name: 'start' | 'stop' | 'restart' | 'suspend' | 'unsuspend' | 'update',
  args: object = {},
): Promise<Instance> {
  const update = commandMessages[name].update as (typeof commandMessages)['start']['update'];
  return handle.executeUpdate(update, { args: [{ ...args, request_id: requestId(name) }] });
}

function eventsOf(handle: WorkflowHandle): StoredTransition[] {
  return h.readModel.eventsOf(handle.workflowId.replace('instance/', ''));
}

function eventOfType(handle: WorkflowHandle, type: string): Promise<StoredTransition> {
  return eventually(
    `${handle.workflowId} ${type}`,
    async () => eventsOf(handle).find((e) => e.event.type === type),
    60_000,
  );
}

describe('lifecycle policies (workflow, fake activities)', () => {
  it('auto_stop stops a running instance that long after it started, with instance.auto_stopped', async () => {
    const handle = await create({ auto_stop: { after: '2s' } });
    const running = await settledIn(handle, 'running');
    assert.ok(running.instance.last_started_at);
    assert.deepEqual(running.instance.next_auto_action, {
      action: 'auto_stop',
      at: new Date(Date.parse(running.instance.last_started_at) + 2000).toISOString(),
    });
    const stopped = await eventOfType(handle, 'instance.auto_stopped');
    assert.equal(stopped.instance.state, 'stopped');
    assert.equal(stopped.event.payload.conclusion, 'succeeded');
    assert.equal(stopped.event.payload.command, 'stop');
    assert.equal(stopped.event.payload.auto_action, 'auto_stop');
    assert.ok(Date.parse(stopped.instance.updated_at) >= Date.parse(running.instance.last_started_at) + 2000);
    // Stopped by the policy, the instance has nothing further due (no auto_delete): the timer is gone.
    assert.equal(stopped.instance.next_auto_action, undefined);
    assert.equal(eventsOf(handle).filter((e) => e.event.type === 'instance.auto_stopped').length, 1);
  });

  it('a restart resets auto_stop: it counts from the restart', async () => {
    const handle = await create({ auto_stop: { after: '4s' } });
    const first = (await settledIn(handle, 'running')).instance;
    const restarted = await send(handle, 'restart');
    assert.ok(restarted.last_started_at && first.last_started_at);
    assert.ok(Date.parse(restarted.last_started_at) > Date.parse(first.last_started_at));
    assert.deepEqual(restarted.next_auto_action, {
      action: 'auto_stop',
      at: new Date(Date.parse(restarted.last_started_at) + 4000).toISOString(),
    });
    const stopped = await eventOfType(handle, 'instance.auto_stopped');
    assert.ok(Date.parse(stopped.instance.updated_at) >= Date.parse(restarted.last_started_at) + 4000);
  });

  it('auto_delete deletes an instance stopped that long, with instance.auto_deleted', async () => {
    const handle = await create({ auto_delete: { after_stopped: '2s' } });
    await settledIn(handle, 'running');
    assert.equal((await snapshotOf(handle)).instance.next_auto_action, undefined);
    const stopped = await send(handle, 'stop');
    assert.equal(stopped.next_auto_action?.action, 'auto_delete');
    const deleted = await eventOfType(handle, 'instance.auto_deleted');
    assert.equal(deleted.instance.state, 'destroyed');
    assert.equal(deleted.event.payload.conclusion, 'succeeded');
    assert.equal(await handle.result().then((i: Instance) => i.state), 'destroyed');
  });

  it('expires_at deletes the instance at that time, with instance.expired', async () => {
    const expiresAt = new Date(Date.now() + 3000).toISOString();
    const handle = await create({ expires_at: expiresAt });
    const expired = await eventOfType(handle, 'instance.expired');
    assert.equal(expired.instance.state, 'destroyed');
    assert.ok(Date.parse(expired.instance.updated_at) >= Date.parse(expiresAt));
  });

  it('an action no longer due when its turn comes (restarted meanwhile) is rejected and changes nothing', async () => {
    const handle = await create({ auto_stop: { after: '5s' } });
    const { instance } = await settledIn(handle, 'running');
    // A scale retried for several seconds holds the queue past the deadline; a restart waits behind it.
    h.provider.failNext(instance.id, 'scaleInstance', { kind: 'transient', times: 3 });
    const scaling = await handle.startUpdate(commandMessages.scale.update, {
      args: [{ memory_mb: 128, request_id: requestId('scale') }],
      waitForStage: WorkflowUpdateStage.ACCEPTED,
    });
    await handle.signal(commandMessages.restart.signal, { request_id: requestId('restart') });
    await scaling.result();
    const rejected = await eventOfType(handle, 'instance.command_rejected');
    assert.match(String(rejected.event.payload.request_id), /^auto_stop\//);
    assert.match(String(rejected.event.payload.reason), /auto_stop is no longer due/);
    assert.equal(rejected.instance.state, 'running');
    const stopped = await eventOfType(handle, 'instance.auto_stopped');
    const restarted = eventsOf(handle).find((e) => e.event.type === 'instance.restarted');
    assert.ok(restarted && restarted.seq < rejected.seq && rejected.seq < stopped.seq);
    assert.equal(eventsOf(handle).filter((e) => e.event.type === 'instance.auto_stopped').length, 1);
  });

  it('a PATCH sets and removes policies; the next action follows', async () => {
    const handle = await create({});
    await settledIn(handle, 'running');
    const set = await send(handle, 'update', { auto_stop: { after: '1h' } });
    assert.equal(set.next_auto_action?.action, 'auto_stop');
    const cleared = await send(handle, 'update', { auto_stop: null });
    assert.equal(cleared.auto_stop, undefined);
    assert.equal(cleared.next_auto_action, undefined);
    const updated = eventsOf(handle).filter((e) => e.event.type === 'instance.updated');
    assert.deepEqual(updated.at(-1)?.event.payload.changed, ['auto_stop']);
  });

  it('a schedule starts a stopped instance and stops a running one', async () => {
    const schedule = { start: '*/3 * * * * *', stop: '1-59/3 * * * * *', timezone: 'Europe/Berlin' };
    const handle = await create({ schedule });
    await eventOfType(handle, 'instance.scheduled_stopped');
    const started = await eventOfType(handle, 'instance.scheduled_started');
    assert.equal(started.instance.state, 'running');
    assert.equal(started.event.payload.command, 'start');
    assert.equal(started.instance.next_auto_action?.action, 'scheduled_stop');
    assert.equal(new Date(started.instance.next_auto_action?.at ?? '').getUTCSeconds() % 3, 1);
  });

  it('a suspended instance is not started by its schedule; lifted, the schedule applies again', async () => {
    const handle = await create({});
    await settledIn(handle, 'running');
    await send(handle, 'stop');
    const suspended = await send(handle, 'suspend', { reason: 'billing' });
    const withSchedule = await send(handle, 'update', {
      schedule: { start: '* * * * * *', timezone: 'UTC' },
    });
    assert.equal(suspended.state, 'stopped');
    assert.equal(withSchedule.next_auto_action, undefined);
    // Several occurrences pass: the suspended instance stays stopped and no start was even queued.
    const seen = eventsOf(handle).length;
    await new Promise((r) => setTimeout(r, 3500));
    const snapshot = await snapshotOf(handle);
    assert.equal(snapshot.instance.state, 'stopped');
    assert.equal(eventsOf(handle).length, seen);
    await send(handle, 'unsuspend', {});
    const started = await eventOfType(handle, 'instance.scheduled_started');
    assert.equal(started.instance.state, 'running');
  });
});

describe('nextAutoAction (pure)', () => {
  const base: Instance = { ...newInstance(), state: 'running', last_started_at: '2026-12-02T10:00:00.000Z' };
  const now = new Date('2026-12-02T10:30:00.000Z');

  it('takes the earliest applicable deadline', () => {
    const instance: Instance = {
      ...base,
      auto_stop: { after: '2h' },
      expires_at: '2026-12-02T11:00:00Z',
      schedule: { stop: '0 18 * * *', timezone: 'Europe/Berlin' },
    };
    assert.deepEqual(nextAutoAction(instance, now), { action: 'expire', at: '2026-12-02T11:00:00.000Z' });
    assert.deepEqual(nextAutoAction({ ...instance, expires_at: undefined }, now), {
      action: 'auto_stop',
      at: '2026-12-02T12:00:00.000Z',
    });
  });

  it('reads a schedule in its time zone (18:00 in Berlin is 17:00 UTC in winter)', () => {
    const instance: Instance = { ...base, schedule: { stop: '0 18 * * 1-5', timezone: 'Europe/Berlin' } };
    assert.deepEqual(nextAutoAction(instance, now), {
      action: 'scheduled_stop',
      at: '2026-12-02T17:00:00.000Z',
    });
    const friday = new Date('2026-12-04T18:00:00Z');
    assert.equal(nextAutoAction(instance, friday)?.at, '2026-12-07T17:00:00.000Z');
  });

  it('only what applies in the state: auto_delete and start while stopped, nothing while suspended', () => {
    const stopped: Instance = {
      ...base,
      state: 'stopped',
      stopped_at: '2026-12-02T10:00:00.000Z',
      auto_stop: { after: '1s' },
      auto_delete: { after_stopped: '7d' },
      schedule: { start: '0 8 * * *', stop: '0 9 * * *', timezone: 'UTC' },
    };
    assert.deepEqual(nextAutoAction(stopped, now), {
      action: 'scheduled_start',
      at: '2026-12-03T08:00:00.000Z',
    });
    assert.equal(nextAutoAction({ ...stopped, schedule: undefined }, now)?.at, '2026-12-09T10:00:00.000Z');
    assert.equal(
      nextAutoAction({ ...stopped, suspend_reason: 'billing', expires_at: '2026-12-02T11:00:00Z' }, now),
      undefined,
    );
    assert.equal(nextAutoAction({ ...stopped, state: 'destroying' }, now), undefined);
  });
});
