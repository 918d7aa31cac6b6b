import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { deleteTenantRows } from './support/api-seed.ts';
import { apiClient, eventually } from './support/http.ts';
import { OutboxWriter } from './support/outbox.ts';
import { type Stack, startStack, uniqueTenant } from './support/stack.ts';
import { type Receiver, startReceiver } from './support/webhook-receiver.ts';
import { spawnWorker, type WorkerProcess } from './support/worker-process.ts';

// Real Temporal and PostgreSQL; the worker is a real separate process that is SIGKILLed while a delivery is in
// flight; the receiver is an HTTP server on loopback (allowed by CTRLPLANE_WEBHOOK_ALLOW_PRIVATE).
const SECRET_KEY = randomBytes(32).toString('hex');

describe('a worker killed in the middle of a webhook delivery', () => {
  let stack: Stack;
  let receiver: Receiver;
  const workers: WorkerProcess[] = [];

  before(async () => {
    stack = await startStack({
      worker: false,
      env: { CTRLPLANE_WEBHOOK_ALLOW_PRIVATE: 'true', CTRLPLANE_WEBHOOK_SECRET_KEY: SECRET_KEY },
    });
  });

  after(async () => {
    for (const w of workers) await w.kill();
    await receiver?.close();
    await deleteTenantRows(stack.orm, 'ten_hookcrash_');
    await stack?.close();
  });

  function worker(): WorkerProcess {
    const w = spawnWorker({
      CTRLPLANE_TASK_QUEUE: stack.config.CTRLPLANE_TASK_QUEUE,
      CTRLPLANE_WEBHOOK_ALLOW_PRIVATE: 'true',
      // The API encrypts the secrets with this key; the worker opens them with it to sign.
      CTRLPLANE_WEBHOOK_SECRET_KEY: SECRET_KEY,
    });
    workers.push(w);
    return w;
  }

  it('loses nothing: every event reaches the receiver, in order, after the restart', async () => {
    const tenant = uniqueTenant('hookcrash');
    const admin = apiClient(stack.api.url, await stack.token(tenant, ['admin']));
    const outbox = new OutboxWriter(stack.orm, tenant);
    // The first request is held open: the worker is killed while it waits for the answer.
    receiver = await startReceiver((n) => (n === 1 ? 'hang' : 200));
    const doomed = worker();
    const hook = await admin('POST', '/v1/webhooks', { url: receiver.url });
    assert.equal(hook.status, 201);

    const inst = outbox.newInstance();
    const written = ['instance.created', 'instance.stopped', 'instance.started'];
    for (const type of written) await outbox.record(inst, type);
    await receiver.waitFor(() => receiver.requests.length === 1);
    await doomed.kill('SIGKILL');

    // Events written while no worker runs are delivered too.
    const more = ['instance.restarted', 'instance.stopped'];
    for (const type of more) await outbox.record(inst, type);
    worker();

    const all = [...written, ...more];
    await eventually('every event taken', async () => receiver.accepted().length >= all.length, 180_000);
    const accepted = receiver.accepted();
    assert.deepEqual(
      accepted.map((d) => d.event.type),
      all,
      'each event once, in order',
    );
    assert.deepEqual(
      accepted.map((d) => d.event.seq),
      [1, 2, 3, 4, 5],
    );
    assert.equal(
      receiver.requests[0]?.event.id,
      accepted[0]?.event.id,
      'the interrupted delivery was made again',
    );
    for (const d of accepted) assert.ok(receiver.signedWith(d, hook.body.secret));

    const deliveries = await eventually('all delivered', async () => {
      const res = await admin('GET', `/v1/webhooks/${hook.body.id}/deliveries`);
      return res.body.items.length === all.length &&
        res.body.items.every((d: { status: string }) => d.status === 'delivered')
        ? res.body.items
        : undefined;
    });
    assert.equal(deliveries.length, all.length);
  });
});
