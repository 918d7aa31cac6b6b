/**
 * Releases, rollback and safe deploys in the instance workflow, through its public surface only: the updates
 * and signals of workflows/messages.ts against the bundled workflow on a real Temporal dev server, with the
 * in-memory activity fakes (no Docker, no PostgreSQL). The real engine and read model are test/releases.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ApplicationFailure, WorkflowUpdateFailedError } from '@temporalio/client';
import type { Release } from '../domain/release.ts';
import { commandMessages } from '../workflows/messages.ts';
import {
  eventually,
  newInstance,
  requestId,
  settledIn,
  snapshotOf,
  startWorkflowHarness,
  WEB_SERVICE,
  type WorkflowHarness,
} from './support/workflow-harness.ts';

let h: WorkflowHarness;

before(async () => {
  h = await startWorkflowHarness();
});

after(async () => {
  await h?.close();
});

const releasesOf = (instanceId: string): Release[] =>
  [...h.readModel.releases.values()]
    .filter((r) => r.instance_id === instanceId)
    .sort((a, b) => a.number - b.number);

const summary = (instanceId: string) =>
  releasesOf(instanceId).map((r) => `v${r.number} ${r.description} ${r.status}`);

const v2Services = [{ ...WEB_SERVICE, image: 'docker.io/ctrlplane-test/web:2' }];

describe('releases in the instance workflow', { concurrency: true }, () => {
  it('numbers a release per change, and the repeated request makes none', async () => {
    const instance = newInstance('numbered');
    const handle = await h.create({ instance });
    await settledIn(handle, 'running');
    const update = { services: v2Services, request_id: requestId('update'), actor: 'user-unit' };
    await handle.executeUpdate(commandMessages.update.update, { args: [update] });
    await handle.executeUpdate(commandMessages.update.update, { args: [update] });
    await handle.executeUpdate(commandMessages.scale.update, {
      args: [{ memory_mb: 128, request_id: requestId('scale') }],
    });
    assert.deepEqual(summary(instance.id), [
      'v1 create deployed',
      'v2 update: services deployed',
      'v3 scale deployed',
    ]);
    const [v1, v2] = releasesOf(instance.id);
    assert.equal(v2?.request_id, update.request_id);
    assert.equal(v2?.actor, 'user-unit');
    assert.deepEqual(v2?.spec.services?.[0]?.image, 'docker.io/ctrlplane-test/web:2');
    assert.notEqual(v1?.id, v2?.id);
    const snapshot = await snapshotOf(handle);
    assert.equal(snapshot.instance.current_release, releasesOf(instance.id)[2]?.id);
  });

  it('goes back to the previous release when the new one fails to provision, and the update fails', async () => {
    const instance = newInstance('safe');
    const handle = await h.create({ instance });
    await settledIn(handle, 'running');
    h.provider.failNext(instance.id, 'provisionInstance', {
      kind: 'permanent',
      code: 'image_not_found',
      message: 'image docker.io/ctrlplane-test/web:2 is not present',
    });
    await assert.rejects(
      handle.executeUpdate(commandMessages.update.update, {
        args: [{ services: v2Services, request_id: requestId('update') }],
      }),
      (err: unknown) => {
        assert.ok(err instanceof WorkflowUpdateFailedError);
        assert.ok(err.cause instanceof ApplicationFailure);
        assert.equal(err.cause.type, 'image_not_found');
        assert.match(err.cause.message, /release v2 failed and the instance went back to v1/);
        return true;
      },
    );
    const snapshot = await snapshotOf(handle);
    assert.equal(snapshot.instance.state, 'running');
    assert.deepEqual(snapshot.instance.services, [WEB_SERVICE]);
    assert.deepEqual(summary(instance.id), ['v1 create deployed', 'v2 update: services failed']);
    assert.match(releasesOf(instance.id)[1]?.error ?? '', /is not present/);
    assert.equal(snapshot.instance.current_release, releasesOf(instance.id)[0]?.id);
    assert.deepEqual(h.provider.callsOf(instance.id).slice(2), [
      'provisionInstance',
      'provisionInstance',
      'startInstance',
    ]);
  });

  it('applies a rollback sent by hand as a signal (as from the Temporal UI) as a new release', async () => {
    const instance = newInstance('by hand');
    const handle = await h.create({ instance });
    await settledIn(handle, 'running');
    await handle.executeUpdate(commandMessages.update.update, {
      args: [{ services: v2Services, request_id: requestId('update') }],
    });
    await handle.signal(commandMessages.rollback.signal, { release: 1 } as never);
    await eventually('the rollback release', async () => releasesOf(instance.id).length === 3);
    const snapshot = await settledIn(handle, 'running');
    assert.deepEqual(snapshot.instance.services, [WEB_SERVICE]);
    const v3 = releasesOf(instance.id)[2];
    assert.equal(v3?.description, 'rollback to v1');
    assert.equal(v3?.rollback_of, 1);
    assert.equal(snapshot.instance.current_release, v3?.id);
    await eventually('v3 deployed', async () => releasesOf(instance.id)[2]?.status === 'deployed');
  });

  it('marks the first release failed when the create fails, and deployed once a start brings it up', async () => {
    const instance = newInstance('late start');
    h.provider.failNext(instance.id, 'provisionInstance', {
      kind: 'permanent',
      code: 'image_not_found',
      message: 'image docker.io/ctrlplane-test/web:1 is not present',
    });
    const handle = await h.create({ instance });
    await settledIn(handle, 'failed');
    await eventually('v1 failed', async () => releasesOf(instance.id)[0]?.status === 'failed');
    assert.match(releasesOf(instance.id)[0]?.error ?? '', /is not present/);
    await handle.executeUpdate(commandMessages.start.update, { args: [{ request_id: requestId('start') }] });
    assert.deepEqual(summary(instance.id), ['v1 create deployed']);
    assert.equal(releasesOf(instance.id)[0]?.error, undefined);
  });

  it('fails a rollback to a release the instance does not have, and changes nothing', async () => {
    const instance = newInstance('no such release');
    const handle = await h.create({ instance });
    await settledIn(handle, 'running');
    await assert.rejects(
      handle.executeUpdate(commandMessages.rollback.update, {
        args: [{ release: 7, request_id: requestId('rollback') }],
      }),
      (err: unknown) =>
        err instanceof WorkflowUpdateFailedError &&
        err.cause instanceof ApplicationFailure &&
        err.cause.type === 'not_found',
    );
    assert.deepEqual(summary(instance.id), ['v1 create deployed']);
    assert.equal((await snapshotOf(handle)).instance.state, 'running');
  });
});
