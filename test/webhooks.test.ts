import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { typeid } from 'typeid-js';
import { createWebhookActivities } from '../activities/webhook-activities.ts';
import { startApi } from '../api/server.ts';
import { createLogger } from '../config/logger.ts';
import { EventStream } from '../db/event-stream.ts';
import { WebhookStore } from '../db/webhook-store.ts';
import { WebhookSecretCipher } from '../webhooks/secret-cipher.ts';
import { deleteTenantRows } from './support/api-seed.ts';
import { httpdService, removeInstances } from './support/docker.ts';
import { apiClient, eventually } from './support/http.ts';
import { OutboxWriter } from './support/outbox.ts';
import { type Stack, startStack, uniqueTenant } from './support/stack.ts';
import { type Receiver, startReceiver } from './support/webhook-receiver.ts';

// Real Temporal (the delivery workflow runs on the stack's worker), PostgreSQL, and an HTTP receiver on
// loopback, which the stack allows (CTRLPLANE_WEBHOOK_ALLOW_PRIVATE). Most events are written as the instance
// workflows write them (the read-model projection); one test drives a real Docker instance.
describe('webhooks', () => {
  let stack: Stack;
  const receivers: Receiver[] = [];
  const created: string[] = [];

  before(async () => {
    stack = await startStack({
      env: {
        CTRLPLANE_WEBHOOK_ALLOW_PRIVATE: 'true',
        CTRLPLANE_WEBHOOK_SECRET_KEY: randomBytes(32).toString('hex'),
      },
    });
  });

  after(async () => {
    for (const r of receivers) await r.close();
    await removeInstances(created);
    await deleteTenantRows(stack.orm, 'ten_hooks_');
    await stack?.close();
  });

  async function tenant(label: string) {
    const id = uniqueTenant(`hooks_${label}`);
    return {
      id,
      admin: apiClient(stack.api.url, await stack.token(id, ['admin'])),
      outbox: new OutboxWriter(stack.orm, id),
    };
  }

  async function receiver(...args: Parameters<typeof startReceiver>) {
    const r = await startReceiver(...args);
    receivers.push(r);
    return r;
  }

  it('creates, reads, changes, rotates and deletes webhooks inside the tenant; the secret is shown once', async () => {
    const t = await tenant('crud');
    const other = await tenant('crud_other');
    const r = await receiver();
    const res = await t.admin('POST', '/v1/webhooks', { url: r.url, event_types: ['instance.started'] });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.match(res.body.secret, /^whsec_/);
    assert.equal(res.headers.get('location'), `/v1/webhooks/${res.body.id}`);
    const id = res.body.id;

    const read = await t.admin('GET', `/v1/webhooks/${id}`);
    assert.equal(read.status, 200);
    assert.deepEqual(
      { url: read.body.url, event_types: read.body.event_types, enabled: read.body.enabled },
      { url: r.url, event_types: ['instance.started'], enabled: true },
    );
    assert.equal(read.body.secret, undefined);
    const list = await t.admin('GET', '/v1/webhooks');
    assert.deepEqual(
      list.body.items.map((w: { id: string }) => w.id),
      [id],
    );
    assert.ok(!JSON.stringify(list.body).includes(res.body.secret));
    // At rest the secret is encrypted: the database alone does not sign deliveries.
    const [stored] = await stack.orm.em
      .fork()
      .getConnection()
      .execute<{ secret: string }[]>('select secret from webhooks where id = ?', [id]);
    assert.match(stored?.secret ?? '', /^aes256gcm:/);
    assert.ok(!stored?.secret.includes(res.body.secret.slice('whsec_'.length)));

    const patched = await t.admin('PATCH', `/v1/webhooks/${id}`, { enabled: false, event_types: [] });
    assert.equal(patched.status, 200);
    assert.equal(patched.body.enabled, false);
    assert.deepEqual(patched.body.event_types, []);

    const rotated = await t.admin('POST', `/v1/webhooks/${id}/rotate-secret`);
    assert.equal(rotated.status, 200);
    assert.match(rotated.body.secret, /^whsec_/);
    assert.notEqual(rotated.body.secret, res.body.secret);

    assert.equal((await other.admin('GET', `/v1/webhooks/${id}`)).status, 404);
    assert.equal((await other.admin('DELETE', `/v1/webhooks/${id}`)).status, 404);
    const plain = apiClient(stack.api.url, await stack.token(t.id));
    assert.equal((await plain('GET', '/v1/webhooks')).status, 403);

    assert.equal((await t.admin('DELETE', `/v1/webhooks/${id}`)).status, 204);
    assert.equal((await t.admin('GET', `/v1/webhooks/${id}`)).status, 404);
    assert.equal((await t.admin('GET', `/v1/webhooks/${id}/deliveries`)).status, 404);
  });

  it('refuses bad input with 400 naming the field, and writes nothing', async () => {
    const t = await tenant('bad');
    const cases: [unknown, string][] = [
      [{ url: 'ftp://example.com/x' }, 'url'],
      [{ url: 'not a url' }, 'url'],
      [{ url: 'http://user:pw@127.0.0.1:9/x' }, 'url'],
      [{ url: 'http://127.0.0.1:9/x', event_types: ['Started'] }, 'event_types[0]'],
      [{ url: 'http://127.0.0.1:9/x', enabled: 'yes' }, 'enabled'],
      [{ url: 'http://127.0.0.1:9/x', colour: 'red' }, 'colour'],
      [{ url: 'http://no-such-host.invalid/x' }, 'url'],
    ];
    for (const [body, field] of cases) {
      const res = await t.admin('POST', '/v1/webhooks', body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.match(res.headers.get('content-type') ?? '', /application\/problem\+json/);
      assert.equal(res.body.errors[0].field, field, JSON.stringify(res.body));
    }
    assert.deepEqual((await t.admin('GET', '/v1/webhooks')).body.items, []);
  });

  it('refuses loopback, private, link-local and metadata addresses unless the operator allows them', async () => {
    const config = { ...stack.config, PORT: 0, CTRLPLANE_WEBHOOK_ALLOW_PRIVATE: false };
    const api = await startApi(config, createLogger('webhooks-test', 'warn'), stack.providers);
    try {
      const id = uniqueTenant('hooks_ssrf');
      const admin = apiClient(api.url, await stack.token(id, ['admin']));
      for (const url of [
        'http://127.0.0.1:8080/x',
        'http://localhost/x',
        'http://10.1.2.3/x',
        'http://172.16.0.1/x',
        'http://192.168.1.1/x',
        'http://169.254.169.254/latest/meta-data/',
        'http://100.100.100.200/x',
        'http://[::1]/x',
        'http://[fd00:ec2::254]/x',
        'http://[::ffff:127.0.0.1]/x',
        'http://0.0.0.0/x',
      ]) {
        const res = await admin('POST', '/v1/webhooks', { url });
        assert.equal(res.status, 400, url);
        assert.equal(res.body.errors[0].field, 'url', url);
      }
      assert.deepEqual((await admin('GET', '/v1/webhooks')).body.items, []);
    } finally {
      await api.close();
    }
  });

  it('checks the address again at delivery time: a name that now resolves to loopback is not sent to', async () => {
    const t = await tenant('rebind');
    const r = await receiver();
    const inst = t.outbox.newInstance();
    await t.outbox.record(inst, 'instance.created');
    const stream = new EventStream(stack.orm);
    const webhooks = new WebhookStore(
      stack.orm,
      new WebhookSecretCipher(stack.config.CTRLPLANE_WEBHOOK_SECRET_KEY),
    );
    // Stored as the API stores a webhook whose name resolved to a public address when it was made (the API's
    // check is the test above); by delivery time the name resolves to loopback. No DNS server can be
    // controlled here, so the resolver is the activity's injected one: it answers what a rebinding server would.
    const id = typeid('wh').toString();
    await webhooks.create({
      id,
      tenant_id: t.id,
      url: `http://hooks.rebind.test:${r.port}/hooks`,
      event_types: [],
      enabled: true,
      secret: 'whsec_test',
      cursor: { txid: '0', position: '0' },
      created_at: new Date(),
      updated_at: new Date(),
    });
    try {
      // The stream serves an event once every transaction older than it has ended, anywhere in the cluster: in
      // the full suite another test's open transaction can hold it back for a moment.
      const event = await eventually(
        'the event served by the stream',
        async () => (await stream.page({ tenant_id: t.id }, { txid: '0', position: '0' }, {}, 10))[0],
      );
      await webhooks.queue(id, [event]);
      const rebound = async () => [{ address: '127.0.0.1', family: 4 as const }];
      const env = new MockActivityEnvironment();
      const refused = createWebhookActivities({
        webhooks,
        stream,
        allowPrivate: false,
        lookup: rebound,
        timeoutMs: 5_000,
      });
      await assert.rejects(
        env.run(refused.deliverWebhookEvent, { webhook_id: id, event_id: event.id }),
        (err: Error & { nonRetryable?: boolean }) =>
          /127\.0\.0\.1 is a loopback/.test(err.message) && err.nonRetryable === true,
      );
      assert.equal(r.requests.length, 0, 'nothing reached the loopback receiver');
      const [delivery] = await webhooks.deliveries(id, 10);
      assert.equal(delivery?.attempts, 1);
      assert.match(delivery?.last_error ?? '', /loopback/);

      // The connection goes to the addresses that were checked (the name itself resolves nowhere): allowed,
      // the same delivery reaches the receiver.
      const allowed = createWebhookActivities({
        webhooks,
        stream,
        allowPrivate: true,
        lookup: rebound,
        timeoutMs: 5_000,
      });
      assert.equal(
        await env.run(allowed.deliverWebhookEvent, { webhook_id: id, event_id: event.id }),
        'delivered',
      );
      assert.equal(r.requests.length, 1);
    } finally {
      await webhooks.delete(t.id, id);
    }
  });

  it('delivers each event exactly once, in order per instance, signed, to a receiver that fails three times', async () => {
    const t = await tenant('retry');
    const r = await receiver((n) => (n <= 3 ? 500 : 200));
    const created = await t.admin('POST', '/v1/webhooks', { url: r.url });
    assert.equal(created.status, 201);
    const { id, secret } = created.body;
    const one = t.outbox.newInstance();
    const two = t.outbox.newInstance();
    const written: [string, string][] = [
      [one, 'instance.created'],
      [two, 'instance.created'],
      [one, 'instance.stopped'],
      [two, 'instance.stopped'],
      [one, 'instance.started'],
      [one, 'instance.restarted'],
    ];
    for (const [inst, type] of written) await t.outbox.record(inst, type);

    await eventually('every event delivered', async () => r.accepted().length >= written.length, 120_000);
    const accepted = r.accepted();
    const ids = accepted.map((d) => d.event.id);
    assert.equal(new Set(ids).size, ids.length, 'no event was taken twice');
    assert.equal(ids.length, written.length);
    for (const inst of [one, two]) {
      assert.deepEqual(
        accepted.filter((d) => d.event.instance_id === inst).map((d) => d.event.type),
        written.filter(([i]) => i === inst).map(([, type]) => type),
        `the events of ${inst} in order`,
      );
    }
    for (const d of r.requests) {
      assert.ok(r.signedWith(d, secret), `signature of request ${d.n}: ${d.signature}`);
      assert.equal(d.eventIdHeader, d.event.id);
      assert.match(d.signature, /^t=\d+,v1=[0-9a-f]{64}$/);
    }
    assert.ok(
      !r.signedWith(accepted[0] as (typeof accepted)[0], 'whsec_another'),
      'another secret does not verify',
    );
    assert.equal(r.requests.length, written.length + 3, 'three failed attempts, then one per event');

    const deliveries = await eventually('the deliveries all delivered', async () => {
      const res = await t.admin('GET', `/v1/webhooks/${id}/deliveries`);
      return res.body.items.every((d: { status: string }) => d.status === 'delivered') &&
        res.body.items.length === written.length
        ? res.body.items
        : undefined;
    });
    const attempts = deliveries.reduce((sum: number, d: { attempts: number }) => sum + d.attempts, 0);
    assert.equal(attempts, written.length + 3);
    assert.ok(deliveries.every((d: { last_response_code: number }) => d.last_response_code === 200));
    const retried = deliveries.filter((d: { attempts: number }) => d.attempts > 1);
    assert.ok(
      retried.length >= 1 && retried.every((d: { last_error: string | null }) => d.last_error === null),
    );
  });

  it('signs with the new secret once rotated, and sends nothing while disabled until enabled again', async () => {
    const t = await tenant('rotate');
    const r = await receiver();
    const created = await t.admin('POST', '/v1/webhooks', { url: r.url });
    const { id, secret } = created.body;
    const inst = t.outbox.newInstance();
    await t.outbox.record(inst, 'instance.created');
    await eventually('the first delivery', async () => r.accepted().length === 1, 60_000);
    assert.ok(r.signedWith(r.accepted()[0] as Parameters<Receiver['signedWith']>[0], secret));

    const rotated = await t.admin('POST', `/v1/webhooks/${id}/rotate-secret`);
    await t.outbox.record(inst, 'instance.stopped');
    await eventually('the second delivery', async () => r.accepted().length === 2, 60_000);
    const second = r.accepted()[1] as Parameters<Receiver['signedWith']>[0];
    assert.ok(r.signedWith(second, rotated.body.secret));
    assert.ok(!r.signedWith(second, secret), 'the old secret no longer signs');

    assert.equal((await t.admin('PATCH', `/v1/webhooks/${id}`, { enabled: false })).status, 200);
    // A second, enabled webhook of the tenant: once it has the event, the disabled one had the same chance.
    const witness = await receiver();
    assert.equal((await t.admin('POST', '/v1/webhooks', { url: witness.url })).status, 201);
    await t.outbox.record(inst, 'instance.started');
    await eventually(
      'the enabled webhook got the event',
      async () => witness.accepted().length === 1,
      60_000,
    );
    assert.equal(r.requests.length, 2, 'the disabled webhook sent nothing');
    const paused = await t.admin('GET', `/v1/webhooks/${id}/deliveries`);
    assert.equal(paused.body.items.length, 2);
    assert.equal((await t.admin('PATCH', `/v1/webhooks/${id}`, { enabled: true })).status, 200);
    await eventually('the event kept while disabled', async () => r.accepted().length === 3, 60_000);
    assert.equal(r.accepted()[2]?.event.type, 'instance.started');
  });

  it('delivers the lifecycle events of a real instance', async () => {
    const t = await tenant('docker');
    const r = await receiver();
    const hook = await t.admin('POST', '/v1/webhooks', {
      url: r.url,
      event_types: ['instance.created', 'instance.stopped'],
    });
    assert.equal(hook.status, 201);
    const tenantApi = apiClient(stack.api.url, await stack.token(t.id));
    const res = await tenantApi('POST', '/v1/instances?wait=60s', {
      name: 'hooked',
      services: [httpdService('hooked')],
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    created.push(res.body.id);
    const stop = await tenantApi('POST', `/v1/instances/${res.body.id}/stop?wait=60s`);
    assert.ok(stop.status < 300, JSON.stringify(stop.body));
    await eventually('two deliveries', async () => r.accepted().length >= 2, 90_000);
    assert.deepEqual(
      r.accepted().map((d) => [d.event.instance_id, d.event.type]),
      [
        [res.body.id, 'instance.created'],
        [res.body.id, 'instance.stopped'],
      ],
    );
    assert.ok(r.signedWith(r.accepted()[0] as Parameters<Receiver['signedWith']>[0], hook.body.secret));
  });
});
