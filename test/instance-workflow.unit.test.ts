/**
 * The instance workflow's lifecycle through its public surface only: the workflow the worker bundles, the
 * updates, signals and queries of workflows/messages.ts, and the activities of
 * activities/instance-activity-types.ts. Temporal is a real dev server; the activities are in-memory fakes
 * (test/support/fake-instance-activities.ts), so no Docker, Kubernetes or PostgreSQL is involved. What the fakes
 * cannot show (real containers, the real read model) the stack tests check (instance-lifecycle, instance-drift,
 * continue-as-new).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  ApplicationFailure,
  type WorkflowHandle,
  WorkflowUpdateFailedError,
  WorkflowUpdateStage,
} from '@temporalio/client';
import type { UpdateDefinition } from '@temporalio/common';
import type { Instance } from '../domain/instance.ts';
import { commandMessages, type QueuedCommand } from '../workflows/messages.ts';
import type { StoredTransition } from './support/fake-instance-activities.ts';
import {
  type CreateOptions,
  eventually,
  newInstance,
  requestId,
  settledIn,
  snapshotOf,
  startWorkflowHarness,
  WEB_SERVICE,
  type WorkflowHarness,
} from './support/workflow-harness.ts';

type CommandMessage = keyof typeof commandMessages;
type RequestOf<N extends CommandMessage> =
  (typeof commandMessages)[N]['update'] extends UpdateDefinition<Instance, [infer R]> ? R : never;
/** A command's arguments: its request less the request id and actor the helpers fill in. */
type ArgsOf<N extends CommandMessage> = Omit<RequestOf<N>, 'request_id' | 'actor'>;

let h: WorkflowHarness;

before(async () => {
  h = await startWorkflowHarness();
});

after(async () => {
  await h?.close();
});

/** Sends `name` as an update with a fresh request id (unless given) and waits for its outcome. */
function send<N extends CommandMessage>(
  handle: WorkflowHandle,
  name: N,
  args: ArgsOf<N>,
  request_id = requestId(name),
): Promise<Instance> {
  const update = commandMessages[name].update as UpdateDefinition<Instance, [RequestOf<N>]>;
  return handle.executeUpdate(update, {
    args: [{ ...args, request_id, actor: 'user-unit' } as RequestOf<N>],
  });
}

function signal<N extends CommandMessage>(
  handle: WorkflowHandle,
  name: N,
  args: ArgsOf<N>,
  request_id = requestId(name),
): Promise<void> {
  const message = commandMessages[name].signal as (typeof commandMessages)['start']['signal'];
  return handle.signal(message, { ...args, request_id } as RequestOf<'start'>);
}

/** Asserts that `outcome` fails as an update refused with `code`, its message matching `message`. */
async function refusedWith(outcome: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  await assert.rejects(outcome, (err: unknown) => {
    assert.ok(err instanceof WorkflowUpdateFailedError, String(err));
    assert.ok(err.cause instanceof ApplicationFailure, String(err.cause));
    assert.equal(err.cause.type, code, err.cause.message);
    if (message) assert.match(err.cause.message, message);
    return true;
  });
}

/** A running instance, created the way the API creates one. */
async function running(options?: CreateOptions): Promise<{ handle: WorkflowHandle; id: string }> {
  const handle = await h.create(options);
  const snapshot = await settledIn(handle, 'running');
  return { handle, id: snapshot.instance.id };
}

const events = (id: string) => h.readModel.eventsOf(id);
const eventsSince = (id: string, seq: number) => events(id).filter((e) => e.seq > seq);
const lastSeq = (id: string) => events(id).at(-1)?.seq ?? 0;
/** Each event as `type from→to`, or `type` when it is not a transition. */
const path = (records: StoredTransition[]) =>
  records.map(({ event: { type, payload } }) =>
    payload.from !== undefined ? `${type} ${payload.from}→${payload.to}` : type,
  );

// Every test has an instance of its own, so they run side by side: most of their time is waiting on Temporal.
describe('the instance workflow', { concurrency: true }, () => {
  describe('create', { concurrency: true }, () => {
    it('provisions and starts the instance: provisioning → starting → running, concluded once', async () => {
      const instance = newInstance('shop front');
      const handle = await h.create({ instance });
      const snapshot = await settledIn(handle, 'running');

      assert.deepEqual(path(events(instance.id)), [
        'instance.provisioning provisioning→provisioning',
        'instance.starting provisioning→starting',
        'instance.created starting→running',
      ]);
      const concluding = events(instance.id).filter((e) => e.event.payload.conclusion);
      assert.equal(concluding.length, 1, 'one concluding event');
      assert.equal(concluding[0]?.event.payload.conclusion, 'succeeded');
      assert.deepEqual(h.provider.callsOf(instance.id), ['provisionInstance', 'startInstance']);
      // What the provider reported is kept: its reference and the endpoint the start published.
      assert.equal(snapshot.instance.provider_ref, `fake/${instance.id}`);
      assert.deepEqual(
        snapshot.instance.endpoints?.map((e) => e.port),
        [30_001],
      );
      assert.equal(snapshot.seq, 3);
      assert.deepEqual(
        h.readModel.instanceOf(instance.id),
        snapshot.instance,
        'the read model holds the snapshot',
      );
    });

    it('ends failed, with the reason, when provisioning fails for good; a later start provisions first', async () => {
      const instance = newInstance();
      h.provider.failNext(instance.id, 'provisionInstance', {
        kind: 'permanent',
        code: 'image_not_found',
        message: 'image docker.io/ctrlplane-test/web:1 not found',
      });
      const handle = await h.create({ instance });
      const failed = await settledIn(handle, 'failed');
      assert.equal(failed.instance.error, 'provision failed: image docker.io/ctrlplane-test/web:1 not found');
      assert.deepEqual(path(events(instance.id)), [
        'instance.provisioning provisioning→provisioning',
        'instance.failed provisioning→failed',
      ]);
      assert.equal(events(instance.id).at(-1)?.event.payload.conclusion, 'failed');
      assert.deepEqual(
        h.provider.callsOf(instance.id),
        ['provisionInstance'],
        'a permanent error is not retried',
      );

      const started = await send(handle, 'start', {});
      assert.equal(started.state, 'running');
      assert.equal(started.error, undefined, 'the reason is cleared');
      assert.deepEqual(h.provider.callsOf(instance.id), [
        'provisionInstance',
        'provisionInstance',
        'startInstance',
      ]);
    });
  });

  describe('commands', { concurrency: true }, () => {
    it('each command takes its path and records it, concluded once, with who asked', async () => {
      const { handle, id } = await running();
      const step = async <N extends CommandMessage>(name: N, args: ArgsOf<N>) => {
        const before = lastSeq(id);
        const request_id = requestId(name);
        const instance = await send(handle, name, args, request_id);
        const recorded = eventsSince(id, before);
        assert.ok(
          recorded.every(
            (e) => e.event.payload.request_id === request_id && e.event.payload.command === name,
          ),
          `${name}: every event names the command and its request`,
        );
        assert.ok(
          recorded.every((e) => e.event.payload.actor === 'user-unit'),
          `${name}: the actor is kept`,
        );
        assert.deepEqual(
          recorded.map((e) => e.event.payload.conclusion),
          [...recorded.slice(1).map(() => undefined), 'succeeded'],
          `${name}: only its last event concludes it`,
        );
        assert.deepEqual(
          h.readModel.instanceOf(id),
          instance,
          `${name}: the read model has what the caller got`,
        );
        return { instance, path: path(recorded) };
      };

      let result = await step('stop', {});
      assert.equal(result.instance.state, 'stopped');
      assert.deepEqual(result.path, [
        'instance.stopping running→stopping',
        'instance.stopped stopping→stopped',
      ]);
      assert.equal(h.provider.deployments.get(id)?.observed.state, 'stopped');

      result = await step('start', {});
      assert.equal(result.instance.state, 'running');
      assert.deepEqual(result.path, [
        'instance.starting stopped→starting',
        'instance.started starting→running',
      ]);
      assert.deepEqual(
        result.instance.endpoints?.map((e) => e.port),
        [30_002],
        'the endpoints of the new start',
      );

      const callsBeforeRestart = h.provider.callsOf(id).length;
      result = await step('restart', {});
      assert.equal(result.instance.state, 'running');
      assert.deepEqual(result.path, [
        'instance.stopping running→stopping',
        'instance.stopped stopping→stopped',
        'instance.starting stopped→starting',
        'instance.restarted starting→running',
      ]);
      assert.deepEqual(
        h.provider.callsOf(id).slice(callsBeforeRestart),
        ['restartInstance'],
        "the provider's own restart",
      );

      result = await step('scale', { replicas: 3, memory_mb: 128 });
      assert.equal(result.instance.state, 'running', 'scale does not change the state');
      assert.deepEqual(result.path, ['instance.scaled']);
      const scaled = { cpu_millis: 250, memory_mb: 128, replicas: 3 };
      assert.deepEqual(events(id).at(-1)?.event.payload, {
        ...scaled,
        command: 'scale',
        request_id: events(id).at(-1)?.event.payload.request_id,
        actor: 'user-unit',
        conclusion: 'succeeded',
      });
      assert.deepEqual(result.instance.services?.[0]?.resources, scaled);
      assert.deepEqual(h.provider.deployments.get(id)?.resources, scaled);

      result = await step('update', { name: 'Web Two', labels: { tier: 'web' } });
      assert.deepEqual(result.path, ['instance.updated']);
      assert.deepEqual(events(id).at(-1)?.event.payload.changed, ['name', 'labels']);
      assert.equal(result.instance.name, 'Web Two');
      assert.equal(result.instance.slug, 'web-two');
      assert.deepEqual(result.instance.labels, { tier: 'web' });
      assert.equal(h.readModel.slugs.get('ten_unit/web-two'), id, 'the new slug was reserved');

      result = await step('suspend', { reason: 'billing' });
      assert.equal(result.instance.state, 'stopped');
      assert.equal(result.instance.suspend_reason, 'billing');
      assert.ok(result.instance.suspended_at);
      assert.deepEqual(result.path, [
        'instance.stopping running→stopping',
        'instance.suspended stopping→stopped',
      ]);
      assert.equal(h.provider.deployments.get(id)?.observed.state, 'stopped');

      result = await step('unsuspend', { reason: 'billing' });
      assert.equal(result.instance.state, 'running', 'back to the state it was suspended in');
      assert.equal(result.instance.suspend_reason, undefined);
      assert.equal(result.instance.suspended_at, undefined);
      assert.deepEqual(result.path, [
        'instance.starting stopped→starting',
        'instance.unsuspended starting→running',
      ]);

      result = await step('delete', {});
      assert.equal(result.instance.state, 'destroyed');
      assert.deepEqual(result.path, [
        'instance.destroying running→destroying',
        'instance.deleted destroying→destroyed',
      ]);
      assert.equal(h.provider.deployments.has(id), false, 'deprovisioned');
      const outcome = (await handle.result()) as Instance;
      assert.equal(outcome.state, 'destroyed', 'the workflow ends with the instance destroyed');
      const seqs = events(id).map((e) => e.seq);
      assert.deepEqual(
        seqs,
        seqs.map((_, i) => i + 1),
        'one event per seq, none missing',
      );
    });

    it('new services given while stopped are provisioned by the next start', async () => {
      const { handle, id } = await running();
      await send(handle, 'stop', {});
      const calls = h.provider.callsOf(id).length;
      const v2 = { ...WEB_SERVICE, image: 'docker.io/ctrlplane-test/web:2' };
      const updated = await send(handle, 'update', { services: [v2] });
      assert.equal(updated.state, 'stopped');
      assert.deepEqual(updated.services, [v2]);
      assert.deepEqual(updated.source, { type: 'services', services: [v2] });
      assert.deepEqual(h.provider.callsOf(id).slice(calls), [], 'nothing applied while stopped');

      await send(handle, 'start', {});
      assert.deepEqual(h.provider.callsOf(id).slice(calls), ['provisionInstance', 'startInstance']);
    });

    it('a suspended instance stopped already stays stopped, and unsuspend returns it to stopped', async () => {
      const { handle, id } = await running();
      await send(handle, 'stop', {});
      const calls = h.provider.callsOf(id).length;
      const suspended = await send(handle, 'suspend', { reason: 'abuse' });
      assert.equal(suspended.state, 'stopped');
      assert.equal(suspended.suspend_reason, 'abuse');
      assert.deepEqual(path(events(id).slice(-1)), ['instance.suspended']);
      const unsuspended = await send(handle, 'unsuspend', {});
      assert.equal(unsuspended.state, 'stopped');
      assert.equal(unsuspended.suspend_reason, undefined);
      assert.deepEqual(h.provider.callsOf(id).slice(calls), [], 'the provider was not asked for anything');
    });
  });

  describe('refusals', { concurrency: true }, () => {
    it('the validator refuses what the state does not allow, and nothing changes', async () => {
      const { handle, id } = await running();
      const unchanged = async (what: string) => {
        const snapshot = await snapshotOf(handle);
        assert.equal(snapshot.seq, seq, `${what}: no transition`);
        assert.equal(lastSeq(id), seq, `${what}: nothing recorded`);
        assert.deepEqual(snapshot.pending, [], `${what}: nothing queued`);
        assert.equal(h.provider.callsOf(id).length, calls, `${what}: the provider was not called`);
        return snapshot.instance;
      };
      let seq = lastSeq(id);
      let calls = h.provider.callsOf(id).length;

      await refusedWith(
        send(handle, 'start', {}),
        'invalid_state',
        /not allowed while the instance is running/,
      );
      assert.equal((await unchanged('start while running')).state, 'running');

      await refusedWith(send(handle, 'unsuspend', {}), 'invalid_state', /not suspended/);
      await refusedWith(send(handle, 'update', {}), 'invalid_request', /name.*services.*labels/);
      await refusedWith(send(handle, 'update', { name: ' ' }), 'invalid_request', /\bname\b/);
      await refusedWith(send(handle, 'scale', { replicas: 0 }), 'invalid_request', /\breplicas\b/);
      await refusedWith(send(handle, 'scale', {}), 'invalid_request', /cpu_millis.*memory_mb.*replicas/);
      await refusedWith(send(handle, 'suspend', { reason: '' }), 'invalid_request', /\breason\b/);
      await refusedWith(send(handle, 'stop', {}, ''), 'invalid_request', /request_id/);
      const instance = await unchanged('invalid arguments');
      assert.equal(instance.state, 'running');
      assert.deepEqual(instance.services?.[0]?.resources, WEB_SERVICE.resources);

      await send(handle, 'suspend', { reason: 'billing' });
      seq = lastSeq(id);
      calls = h.provider.callsOf(id).length;
      for (const name of ['start', 'restart'] as const)
        await refusedWith(send(handle, name, {}), 'suspended', /suspended \(billing\)/);
      await refusedWith(send(handle, 'scale', { replicas: 2 }), 'suspended');
      await refusedWith(
        send(handle, 'unsuspend', { reason: 'abuse' }),
        'invalid_state',
        /for billing, not abuse/,
      );
      const suspended = await unchanged('while suspended');
      assert.equal(suspended.state, 'stopped');
      assert.equal(suspended.suspend_reason, 'billing');
    });

    it('the validator judges a command against the ones queued before it', async () => {
      const { handle, id } = await running();
      // The scale is held in the provider (its first two attempts fail; the retries come 1 s and 2 s later),
      // so the stop sent after it waits in the queue while the next commands arrive.
      h.provider.failNext(id, 'scaleInstance', { kind: 'transient', times: 2 });
      const scale = send(handle, 'scale', { replicas: 2 });
      await eventually('scale under way', async () => (await snapshotOf(handle)).pending.length === 1);
      const stop = send(handle, 'stop', {});
      await eventually('stop queued', async () => (await snapshotOf(handle)).pending.length === 2);

      // Judged as the instance will be once the stop before it has run: stopped.
      await refusedWith(send(handle, 'stop', {}), 'invalid_state', /while the instance is stopped/);
      const start = await handle.startUpdate(commandMessages.start.update, {
        args: [{ request_id: requestId('start') }],
        waitForStage: WorkflowUpdateStage.ACCEPTED,
      });
      assert.deepEqual(
        (await snapshotOf(handle)).pending.map((c) => c.name),
        ['scale', 'stop', 'start'],
        'the start was accepted while the scale still held the queue',
      );
      assert.equal((await scale).state, 'running');
      assert.equal((await stop).state, 'stopped');
      assert.equal((await start.result()).state, 'running');
      assert.ok(
        !events(id).some((e) => e.event.type === 'instance.command_rejected'),
        'the second stop was refused by the validator, not when its turn came',
      );
    });

    it('a refused command sent as a signal is recorded as rejected, and changes nothing', async () => {
      const { handle, id } = await running();
      const calls = h.provider.callsOf(id).length;
      const request_id = requestId('signal-start');
      await signal(handle, 'start', {}, request_id);
      const rejected = await eventually('the rejection recorded', async () =>
        events(id).find((e) => e.event.payload.request_id === request_id),
      );
      assert.equal(rejected.event.type, 'instance.command_rejected');
      assert.equal(rejected.event.payload.conclusion, 'rejected');
      assert.equal(rejected.event.payload.via, 'signal');
      assert.equal(rejected.event.payload.code, 'invalid_state');
      assert.equal(rejected.instance.state, 'running');
      assert.equal((await settledIn(handle, 'running')).seq, rejected.seq);
      assert.equal(h.provider.callsOf(id).length, calls);
    });
  });

  describe('request ids', { concurrency: true }, () => {
    it('a command whose request id was seen is not applied again, whether sent as update or signal', async () => {
      const { handle, id } = await running();
      const stopId = requestId('stop');
      assert.equal((await send(handle, 'stop', {}, stopId)).state, 'stopped');
      assert.equal((await send(handle, 'start', {})).state, 'running');
      const seq = lastSeq(id);

      // The same stop again (a client retrying): answered with the first stop's outcome, not applied.
      assert.equal((await send(handle, 'stop', {}, stopId)).state, 'stopped');
      await signal(handle, 'stop', {}, stopId);
      // A later command drains the queue: had the signal been queued, it would have run first.
      await send(handle, 'update', { labels: { after: 'retries' } });
      assert.deepEqual(path(eventsSince(id, seq)), ['instance.updated']);
      assert.equal(h.provider.callsOf(id).filter((c) => c === 'stopInstance').length, 1, 'stopped once');
      assert.equal(h.readModel.conclusionsOf(id).get(stopId)?.length, 1);
    });

    it('two callers racing with one request id get one outcome, applied once', async () => {
      const { handle, id } = await running();
      const shared = requestId('scale');
      const [a, b] = await Promise.all([
        send(handle, 'scale', { replicas: 2 }, shared),
        send(handle, 'scale', { replicas: 5 }, shared),
      ]);
      assert.deepEqual(a, b, 'both callers get the one outcome');
      const concluded = h.readModel.conclusionsOf(id).get(shared) ?? [];
      assert.equal(concluded.length, 1);
      assert.equal(h.provider.callsOf(id).filter((c) => c === 'scaleInstance').length, 1);
      assert.equal(a.services?.[0]?.resources.replicas, concluded[0]?.event.payload.replicas);
    });
  });

  describe('provider failures', { concurrency: true }, () => {
    it('a provider call that fails for a moment is retried, and the command concludes once', async () => {
      const { handle, id } = await running();
      h.provider.failNext(id, 'stopInstance', { kind: 'transient', times: 1, message: 'daemon restarting' });
      const request_id = requestId('stop');
      const stopped = await send(handle, 'stop', {}, request_id);
      assert.equal(stopped.state, 'stopped');
      assert.deepEqual(
        h.provider.calls
          .filter((c) => c.instance_id === id && c.activity === 'stopInstance')
          .map((c) => c.attempt),
        [1, 2],
        'the second attempt succeeded',
      );
      const concluded = h.readModel.conclusionsOf(id).get(request_id) ?? [];
      assert.deepEqual(
        concluded.map((e) => e.event.payload.conclusion),
        ['succeeded'],
      );
      assert.ok(!events(id).some((e) => e.event.type === 'instance.failed'), 'never failed');
    });

    it('a permanent failure of a command ends failed with the reason, and the caller is told', async () => {
      const { handle, id } = await running();
      await send(handle, 'stop', {});
      h.provider.failNext(id, 'startInstance', {
        kind: 'permanent',
        code: 'capacity_exhausted',
        message: 'no room on host-1',
      });
      const seq = lastSeq(id);
      await refusedWith(send(handle, 'start', {}), 'capacity_exhausted', /^start failed: no room on host-1$/);
      const snapshot = await settledIn(handle, 'failed');
      assert.equal(snapshot.instance.error, 'start failed: no room on host-1');
      assert.deepEqual(path(eventsSince(id, seq)), [
        'instance.starting stopped→starting',
        'instance.failed starting→failed',
      ]);
      assert.equal(eventsSince(id, seq).at(-1)?.event.payload.conclusion, 'failed');
      assert.equal(eventsSince(id, seq).at(-1)?.event.payload.error, 'start failed: no room on host-1');

      // A failed instance can be started again, or deleted.
      assert.equal((await send(handle, 'start', {})).state, 'running');
    });

    it('a scale the provider refuses fails the command and leaves the instance as it was', async () => {
      const { handle, id } = await running();
      h.provider.failNext(id, 'scaleInstance', {
        kind: 'permanent',
        code: 'capacity_exhausted',
        message: 'not enough memory',
      });
      const seq = lastSeq(id);
      await refusedWith(
        send(handle, 'scale', { memory_mb: 4096 }),
        'capacity_exhausted',
        /not enough memory/,
      );
      const snapshot = await snapshotOf(handle);
      assert.equal(snapshot.instance.state, 'running');
      assert.deepEqual(snapshot.instance.services?.[0]?.resources, WEB_SERVICE.resources);
      assert.deepEqual(path(eventsSince(id, seq)), ['instance.command_failed']);
      assert.equal(eventsSince(id, seq)[0]?.event.payload.code, 'capacity_exhausted');
      assert.equal(eventsSince(id, seq)[0]?.event.payload.conclusion, 'failed');
    });

    it('a rename to a slug another instance holds fails the command and keeps the name', async () => {
      const { handle } = await running();
      h.readModel.slugs.set('ten_unit/taken-name', 'inst_someoneelse');
      await refusedWith(send(handle, 'update', { name: 'Taken Name' }), 'already_exists', /taken-name/);
      const snapshot = await snapshotOf(handle);
      assert.equal(snapshot.instance.name, 'web app');
      assert.equal(snapshot.instance.slug, 'web-app');
    });
  });

  describe('continue-as-new', { concurrency: true }, () => {
    it('carries the state and the request ids seen into the next runs', async () => {
      const { handle, id } = await running({ workflow: { maxCommandsPerRun: 3 } });
      const sent: string[] = [];
      // Five batches of three at once (two updates and a signal). A run continues as new once it is idle with
      // three or more commands behind it, so each batch ends the run it started in; the next batch waits for
      // that, so it cannot slip into a run about to end.
      let run = (await handle.describe()).runId;
      for (let batch = 0; batch < 5; batch++) {
        const ids = [0, 1, 2].map((i) => requestId(`label-${batch}-${i}`));
        sent.push(...ids);
        await Promise.all(
          ids.map(async (request_id, i) => {
            const args = { labels: { n: `${batch}.${i}` } };
            if (i === 2) await signal(handle, 'update', args, request_id);
            else await send(handle, 'update', args, request_id);
          }),
        );
        const ended = run;
        run = await eventually(`the run after batch ${batch}`, async () => {
          const latest = (await handle.describe()).runId;
          return latest !== ended ? latest : undefined;
        });
      }
      const conclusions = h.readModel.conclusionsOf(id);
      for (const request_id of sent) {
        assert.deepEqual(
          conclusions.get(request_id)?.map((e) => e.event.payload.conclusion),
          ['succeeded'],
          `${request_id} concluded once`,
        );
      }
      const runs = new Set(events(id).map((e) => e.run_id));
      assert.ok(runs.size >= 5, `one run ended by each batch wrote events, saw ${runs.size} runs`);

      // A request id from the first runs is still known.
      const seq = lastSeq(id);
      await send(handle, 'update', { labels: { n: 'again' } }, sent[0]);
      await signal(handle, 'update', { labels: { n: 'again' } }, sent[1]);
      const snapshot = await settledIn(handle, 'running');
      assert.equal(snapshot.seq, seq, 'nothing applied again');
      assert.notEqual(snapshot.instance.labels?.n, 'again');

      // The state went along: the labels of the last command, the provider's reference and endpoints, and
      // that the instance is provisioned (a stop and a start do not provision again).
      assert.match(snapshot.instance.labels?.n ?? '', /^4\.[012]$/, 'the labels of the last batch');
      assert.deepEqual(h.readModel.instanceOf(id), snapshot.instance, 'the read model holds the snapshot');
      assert.equal(snapshot.instance.provider_ref, `fake/${id}`);
      assert.deepEqual(
        snapshot.instance.endpoints?.map((e) => e.port),
        [30_001],
      );
      await send(handle, 'stop', {});
      await send(handle, 'start', {});
      assert.equal(h.provider.callsOf(id).filter((c) => c === 'provisionInstance').length, 1);
      const seqs = events(id).map((e) => e.seq);
      assert.deepEqual(
        seqs,
        seqs.map((_, i) => i + 1),
        'seq counts on across runs',
      );
    });

    it('a run starts with the commands and request ids the last one carried over, in order', async () => {
      const instance: Instance = {
        ...newInstance(),
        state: 'running',
        provider_ref: 'fake/carried',
      };
      h.provider.deployments.set(instance.id, { observed: { state: 'running' }, starts: 1 });
      const pending: QueuedCommand[] = [
        { name: 'stop', request_id: 'carried-stop', via: 'signal' },
        { name: 'update', request_id: 'carried-update', via: 'update', args: { labels: { carried: 'yes' } } },
      ];
      const handle = await h.startFrom({
        instance,
        seq: 7,
        provisioned: true,
        pending,
        recent_request_ids: ['applied-before'],
        options: { driftCheckIntervalMs: 0 },
      });
      const snapshot = await settledIn(handle, 'stopped');
      assert.deepEqual(snapshot.instance.labels, { carried: 'yes' });
      assert.deepEqual(
        events(instance.id).map((e) => `${e.seq} ${e.event.payload.request_id} ${e.event.type}`),
        [
          '8 carried-stop instance.stopping',
          '9 carried-stop instance.stopped',
          '10 carried-update instance.updated',
        ],
      );
      assert.equal(
        (await send(handle, 'start', {}, 'applied-before')).state,
        'stopped',
        'known: not applied',
      );
      assert.equal((await snapshotOf(handle)).seq, 10);
    });
  });

  describe('drift', { concurrency: true }, () => {
    const CHECK_EVERY_MS = 200;
    const checking: WorkflowHandle[] = [];
    /** A running instance checked every CHECK_EVERY_MS, until the tests of this block are done. */
    const checked = async () => {
      const created = await running({ workflow: { driftCheckIntervalMs: CHECK_EVERY_MS } });
      checking.push(created.handle);
      return created;
    };
    // Checks this frequent are load the other tests need not carry.
    after(async () => {
      await Promise.all(checking.map((handle) => handle.terminate().catch(() => {})));
    });

    it('records an instance the provider reports failed as failed, and its return as running', async () => {
      const { handle, id } = await checked();
      const deployment = h.provider.deployments.get(id);
      assert.ok(deployment);
      const seq = lastSeq(id);

      deployment.observed = { state: 'failed', message: 'OOMKilled' };
      const failed = await settledIn(handle, 'failed');
      assert.equal(failed.instance.error, 'drift: the provider reports the instance failed: OOMKilled');

      deployment.observed = { state: 'running' };
      await settledIn(handle, 'running');
      const drift = eventsSince(id, seq);
      assert.deepEqual(path(drift), [
        'instance.drift running→failed',
        'instance.drift failed→starting',
        'instance.drift starting→running',
      ]);
      assert.deepEqual(
        drift.map((e) => e.event.payload.observed),
        ['failed', 'running', 'running'],
      );
      assert.ok(
        drift.every((e) => e.event.payload.conclusion === undefined),
        'drift concludes no command',
      );
      assert.equal(failed.seq, seq + 1);
      assert.deepEqual(
        h.provider.callsOf(id),
        ['provisionInstance', 'startInstance'],
        'drift only looks and records: the provider was not asked to change anything',
      );
    });

    it('stops a suspended instance found running again, and keeps it stopped', async () => {
      const { handle, id } = await checked();
      await send(handle, 'suspend', { reason: 'billing' });
      const deployment = h.provider.deployments.get(id);
      assert.ok(deployment);
      const seq = lastSeq(id);
      const stops = () => h.provider.callsOf(id).filter((c) => c === 'stopInstance').length;
      assert.equal(stops(), 1);

      deployment.observed = { state: 'running' };
      const drift = await eventually('the drift recorded', async () => eventsSince(id, seq)[0]);
      assert.equal(drift.event.type, 'instance.drift');
      assert.equal(drift.event.payload.action, 'stopped again: suspended');
      assert.equal(stops(), 2);
      assert.equal(deployment.observed.state, 'stopped');
      const snapshot = await snapshotOf(handle);
      assert.equal(snapshot.instance.state, 'stopped');
      assert.equal(snapshot.instance.suspend_reason, 'billing');
    });

    it('a check that cannot reach the provider changes nothing', async () => {
      const { handle, id } = await checked();
      const seq = lastSeq(id);
      const looks = () =>
        h.provider.calls.filter((c) => c.instance_id === id && c.activity === 'observeInstance');
      h.provider.failNext(id, 'observeInstance', {
        kind: 'permanent',
        code: 'unavailable',
        message: 'api down',
      });
      await eventually('a failed look and a later one', async () => looks().length >= 2);
      assert.equal((await snapshotOf(handle)).instance.state, 'running');
      assert.equal(lastSeq(id), seq, 'nothing recorded');
    });
  });
});
