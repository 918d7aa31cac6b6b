import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { deleteTenantRows } from './support/api-seed.ts';
import { apiClient, eventually } from './support/http.ts';
import { OutboxWriter } from './support/outbox.ts';
import { type Stack, startStack, uniqueTenant } from './support/stack.ts';
import { type Receiver, startReceiver } from './support/webhook-receiver.ts';
import { spawnWorker, type WorkerProcess } from './support/worker-process.ts';

// Real Temporal and PostgreSQL. The API allowed a receiver on loopback when the webhook was made; the worker
// (a real worker process) does not allow private addresses: its check at delivery time is what stops them.
describe('a webhook whose address is refused at delivery time', () => {
  let stack: Stack;
  let receiver: Receiver;
  let worker: WorkerProcess | undefined;

  before(async () => {
    stack = await startStack({ worker: false, env: { CTRLPLANE_WEBHOOK_ALLOW_PRIVATE: 'true' } });
  });

  after(async () => {
    await worker?.kill();
    await receiver?.close();
    await deleteTenantRows(stack.orm, 'ten_hookrefused_');
    await stack?.close();
  });

  it('sends nothing, marks each delivery failed at once, and goes on to the next event', async () => {
    const tenant = uniqueTenant('hookrefused');
    const admin = apiClient(stack.api.url, await stack.token(tenant, ['admin']));
    receiver = await startReceiver();
    const hook = await admin('POST', '/v1/webhooks', { url: receiver.url });
    assert.equal(hook.status, 201);
    worker = spawnWorker({
      CTRLPLANE_TASK_QUEUE: stack.config.CTRLPLANE_TASK_QUEUE,
      CTRLPLANE_WEBHOOK_ALLOW_PRIVATE: 'false',
    });
    const outbox = new OutboxWriter(stack.orm, tenant);
    const inst = outbox.newInstance();
    await outbox.record(inst, 'instance.created');
    await outbox.record(inst, 'instance.stopped');

    const deliveries = await eventually(
      'both deliveries failed',
      async () => {
        const res = await admin('GET', `/v1/webhooks/${hook.body.id}/deliveries`);
        return res.body.items.length === 2 &&
          res.body.items.every((d: { status: string }) => d.status === 'failed')
          ? res.body.items
          : undefined;
      },
      120_000,
    );
    assert.equal(receiver.requests.length, 0, 'nothing reached the receiver');
    for (const d of deliveries) {
      assert.equal(d.attempts, 1, 'a refused address is not retried');
      assert.equal(d.last_response_code, null);
      assert.match(d.last_error, /127\.0\.0\.1 is a loopback/);
    }
    assert.deepEqual(
      deliveries.map((d: { event_type: string }) => d.event_type),
      ['instance.stopped', 'instance.created'],
      'newest first',
    );
  });
});
