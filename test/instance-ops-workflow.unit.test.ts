/**
 * Stop options, per-service restart and the exec record through the instance workflow's public surface, on a real
 * Temporal dev server with the in-memory activities of test/support/fake-instance-activities.ts (no Docker:
 * test/instance-ops.test.ts has the real engine). What this adds: the arguments reach the provider call, they
 * survive continue-as-new in the queue, and a provider that cannot restart one service leaves the instance running.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ApplicationFailure, type WorkflowHandle, WorkflowUpdateFailedError } from '@temporalio/client';
import type { UpdateDefinition } from '@temporalio/common';
import type { Instance } from '../domain/instance.ts';
import { commandMessages, type QueuedCommand } from '../workflows/messages.ts';
import {
  newInstance,
  requestId,
  settledIn,
  startWorkflowHarness,
  type WorkflowHarness,
} from './support/workflow-harness.ts';

type CommandMessage = keyof typeof commandMessages;
type RequestOf<N extends CommandMessage> =
  (typeof commandMessages)[N]['update'] extends UpdateDefinition<Instance, [infer R]> ? R : never;

let h: WorkflowHarness;
before(async () => {
  h = await startWorkflowHarness();
});
after(async () => {
  await h?.close();
});

function send<N extends CommandMessage>(
  handle: WorkflowHandle,
  name: N,
  args: Omit<RequestOf<N>, 'request_id' | 'actor'>,
  request_id = requestId(name),
): Promise<Instance> {
  const update = commandMessages[name].update as UpdateDefinition<Instance, [RequestOf<N>]>;
  return handle.executeUpdate(update, { args: [{ ...args, request_id, actor: 'user-ops' } as RequestOf<N>] });
}

/** The update failed with a reason (the failure's cause) matching `reason`. */
function refused(outcome: Promise<unknown>, reason: RegExp): Promise<void> {
  return assert.rejects(outcome, (err: unknown) => {
    assert.ok(err instanceof WorkflowUpdateFailedError, String(err));
    assert.match(String(err.cause?.message), reason);
    return true;
  });
}

async function running(): Promise<{ handle: WorkflowHandle; id: string }> {
  const handle = await h.create();
  const snapshot = await settledIn(handle, 'running');
  return { handle, id: snapshot.instance.id };
}

const eventsOf = (id: string) => h.readModel.eventsOf(id).map((e) => e.event);

describe('stop options, per-service restart and exec records in the workflow', { concurrency: true }, () => {
  it('passes a stop signal and timeout to the provider, and records them on the stopping event', async () => {
    const { handle, id } = await running();
    const stopped = await send(handle, 'stop', { signal: 'SIGINT', timeout: 30 });
    assert.equal(stopped.state, 'stopped');
    assert.deepEqual(h.provider.deployments.get(id)?.lastStop, { signal: 'SIGINT', timeout_seconds: 30 });
    const stopping = eventsOf(id).find((e) => e.type === 'instance.stopping');
    assert.equal(stopping?.payload.signal, 'SIGINT');
    assert.equal(stopping?.payload.timeout, 30);
  });

  it('a plain stop passes no options (the provider defaults)', async () => {
    const { handle, id } = await running();
    await send(handle, 'stop', {});
    assert.equal(h.provider.deployments.get(id)?.lastStop, undefined);
  });

  it('refuses a stop with an unknown signal in the validator, naming the field', async () => {
    const { handle } = await running();
    await assert.rejects(
      send(handle, 'stop', { signal: 'SIGFOO' } as unknown as Omit<RequestOf<'stop'>, 'request_id'>),
      (err: unknown) => {
        assert.ok(err instanceof WorkflowUpdateFailedError);
        assert.ok(err.cause instanceof ApplicationFailure);
        assert.equal(err.cause.type, 'invalid_request');
        assert.match(err.cause.message, /^signal: /);
        return true;
      },
    );
  });

  it('restarts one service and records it; the state stays running', async () => {
    const { handle, id } = await running();
    const after = await send(handle, 'restart_service', { service: 'web' });
    assert.equal(after.state, 'running');
    assert.deepEqual(h.provider.deployments.get(id)?.restartedServices, ['web']);
    const event = eventsOf(id).at(-1);
    assert.equal(event?.type, 'instance.service_restarted');
    assert.equal(event?.payload.service, 'web');
    assert.equal(event?.payload.conclusion, 'succeeded');
  });

  it('a provider that cannot restart one service: the command fails with not_supported, the instance runs on', async () => {
    const { handle, id } = await running();
    h.provider.failNext(id, 'restartService', {
      kind: 'permanent',
      code: 'not_supported',
      message: 'provider fake cannot restart a single service (capability restart:service)',
    });
    await assert.rejects(send(handle, 'restart_service', { service: 'web' }), (err: unknown) => {
      assert.ok(err instanceof WorkflowUpdateFailedError);
      assert.ok(err.cause instanceof ApplicationFailure);
      assert.equal(err.cause.type, 'not_supported');
      assert.match(err.cause.message, /provider fake/);
      return true;
    });
    const snapshot = await settledIn(handle, 'running');
    assert.equal(snapshot.instance.state, 'running');
    assert.equal(eventsOf(id).at(-1)?.type, 'instance.command_failed');
  });

  it('refuses restart_service unless running, and for a service the instance does not have', async () => {
    const { handle, id } = await running();
    const seq = h.readModel.eventsOf(id).length;
    await refused(send(handle, 'restart_service', { service: 'nope' }), /has no service nope/);
    assert.equal(eventsOf(id).at(-1)?.type, 'instance.command_rejected');
    assert.equal(h.readModel.eventsOf(id).length, seq + 1);
    await send(handle, 'stop', {});
    await refused(send(handle, 'restart_service', { service: 'web' }), /only a running instance/);
  });

  it('records an exec with who, what and the exit code', async () => {
    const { handle, id } = await running();
    await send(handle, 'record_exec', { service: 'web', argv: ['ls', '-l'], exit_code: 2, timed_out: false });
    const event = eventsOf(id).at(-1);
    assert.equal(event?.type, 'instance.exec');
    assert.deepEqual(
      { ...event?.payload, request_id: undefined },
      {
        service: 'web',
        argv: ['ls', '-l'],
        exit_code: 2,
        timed_out: false,
        command: 'record_exec',
        request_id: undefined,
        actor: 'user-ops',
        conclusion: 'succeeded',
      },
    );
  });

  it('a run continued as new applies a carried stop with its options and restart_service with its service', async () => {
    const instance: Instance = { ...newInstance(), state: 'running', provider_ref: 'fake/carried' };
    h.provider.deployments.set(instance.id, { observed: { state: 'running' }, starts: 1 });
    const pending: QueuedCommand[] = [
      { name: 'restart_service', request_id: 'carried-restart', via: 'update', args: { service: 'web' } },
      { name: 'stop', request_id: 'carried-stop', via: 'signal', args: { signal: 'SIGQUIT', timeout: 5 } },
    ];
    // As the queue crosses continue-as-new: JSON, so only what survives a round trip.
    const handle = await h.startFrom({
      instance,
      seq: 3,
      provisioned: true,
      pending: JSON.parse(JSON.stringify(pending)),
    });
    await settledIn(handle, 'stopped');
    const deployment = h.provider.deployments.get(instance.id);
    assert.deepEqual(deployment?.restartedServices, ['web']);
    assert.deepEqual(deployment?.lastStop, { signal: 'SIGQUIT', timeout_seconds: 5 });
  });
});
