import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startApi } from '../api/server.ts';
import { createLogger } from '../config/logger.ts';
import { deleteTenantRows } from './support/api-seed.ts';
import { openSse, readNdjson } from './support/event-stream-client.ts';
import { apiClient, eventually } from './support/http.ts';
import { OutboxWriter } from './support/outbox.ts';
import { type Stack, startStack, uniqueTenant } from './support/stack.ts';

// Real PostgreSQL and API. The events are written as the instance workflows write them (the read-model
// projection's transaction); the subject is the stream that reads them, so no container stands behind them.
describe('GET /v1/events: the tenant event stream', () => {
  let stack: Stack;

  before(async () => {
    stack = await startStack({ worker: false });
  });

  after(async () => {
    await deleteTenantRows(stack.orm, 'ten_stream_');
    await stack?.close();
  });

  async function tenant(label: string) {
    const id = uniqueTenant(`stream_${label}`);
    return { id, token: await stack.token(id), outbox: new OutboxWriter(stack.orm, id) };
  }

  it("serves the tenant's events oldest first as NDJSON, and only the tenant's", async () => {
    const a = await tenant('a');
    const b = await tenant('b');
    const one = a.outbox.newInstance();
    const two = a.outbox.newInstance();
    const other = b.outbox.newInstance();
    await a.outbox.record(one, 'instance.created');
    await b.outbox.record(other, 'instance.created');
    await a.outbox.record(two, 'instance.created');
    await a.outbox.record(one, 'instance.stopped');

    const read = await eventually('the three events', async () => {
      const r = await readNdjson(stack.api.url, a.token, '');
      return r.events.length === 3 ? r : undefined;
    });
    assert.equal(read.status, 200);
    assert.match(read.contentType, /^application\/x-ndjson/);
    assert.deepEqual(
      read.events.map((e) => [e.instance_id, e.type, e.seq]),
      [
        [one, 'instance.created', 1],
        [two, 'instance.created', 1],
        [one, 'instance.stopped', 2],
      ],
    );
    assert.ok(read.events.every((e) => e.tenant_id === a.id && /^evt_/.test(e.id)));
    // The same ids as the instance's own event list.
    const own = await apiClient(stack.api.url, a.token)('GET', `/v1/instances/${one}/events`);
    assert.equal(own.status, 200);
    assert.deepEqual(
      own.body.items.map((e: { id: string }) => e.id),
      read.events.filter((e) => e.instance_id === one).map((e) => e.id),
    );
  });

  it('resumes after ?after= and Last-Event-ID with every later event once', async () => {
    const t = await tenant('resume');
    const inst = t.outbox.newInstance();
    for (const type of ['instance.created', 'instance.stopped', 'instance.started', 'instance.restarted']) {
      await t.outbox.record(inst, type);
    }
    const all = await eventually('four events', async () => {
      const r = await readNdjson(stack.api.url, t.token, '');
      return r.events.length === 4 ? r.events : undefined;
    });
    const second = all[1]?.id as string;
    const afterQuery = await readNdjson(stack.api.url, t.token, `?after=${second}`);
    assert.deepEqual(
      afterQuery.events.map((e) => e.id),
      all.slice(2).map((e) => e.id),
    );
    const header = await readNdjson(stack.api.url, t.token, '', { 'last-event-id': second });
    assert.deepEqual(
      header.events.map((e) => e.id),
      all.slice(2).map((e) => e.id),
    );

    // SSE: each event carries its id, which is what a reconnecting EventSource sends back.
    const sse = openSse(stack.api.url, t.token, `?after=${all[0]?.id}`);
    const got = await sse.until(3);
    await sse.ended;
    assert.equal(sse.status, 200);
    assert.deepEqual(
      got.map((e) => e.id),
      all.slice(1).map((e) => e.id),
    );
    assert.deepEqual(
      got.map((e) => e.data.id),
      all.slice(1).map((e) => e.id),
    );
  });

  it('holds back an event committed before an older transaction ends, so resuming skips nothing', async () => {
    const t = await tenant('race');
    const inst = t.outbox.newInstance();
    const late = t.outbox.newInstance();
    await t.outbox.record(inst, 'instance.created');
    const first = await eventually('the first event', async () => {
      const r = await readNdjson(stack.api.url, t.token, '');
      return r.events.length === 1 ? r.events[0] : undefined;
    });

    // The older transaction writes its event first (its position is the lower one) and stays open while a
    // second one writes and commits: the second event is visible in the table before the first.
    const held = await t.outbox.recordHeld(late, 'instance.created');
    await t.outbox.record(inst, 'instance.stopped');
    const visible = await stack.orm.em
      .fork()
      .getConnection()
      .execute<{ type: string }[]>('select type from instance_events where tenant_id = ? order by seq', [
        t.id,
      ]);
    assert.equal(visible.length, 2, 'the committed later event is in the table, the held one is not yet');

    const during = await readNdjson(stack.api.url, t.token, `?after=${first?.id}`);
    assert.deepEqual(
      during.events,
      [],
      'nothing is served past an event whose older neighbour may still come',
    );

    await held.commit();
    const resumed = await eventually('both events', async () => {
      const r = await readNdjson(stack.api.url, t.token, `?after=${first?.id}`);
      return r.events.length === 2 ? r.events : undefined;
    });
    assert.deepEqual(
      resumed.map((e) => [e.instance_id, e.type]),
      [
        [late, 'instance.created'],
        [inst, 'instance.stopped'],
      ],
    );
  });

  it('filters by instance and by type', async () => {
    const t = await tenant('filter');
    const one = t.outbox.newInstance();
    const two = t.outbox.newInstance();
    await t.outbox.record(one, 'instance.created');
    await t.outbox.record(two, 'instance.created');
    await t.outbox.record(one, 'instance.stopped');
    await t.outbox.record(two, 'instance.failed');
    await eventually(
      'four events',
      async () => (await readNdjson(stack.api.url, t.token, '')).events.length === 4,
    );

    const byInstance = await readNdjson(stack.api.url, t.token, `?instance=${two}`);
    assert.deepEqual(
      byInstance.events.map((e) => e.type),
      ['instance.created', 'instance.failed'],
    );
    const byType = await readNdjson(stack.api.url, t.token, '?type=instance.stopped,instance.failed');
    assert.deepEqual(
      byType.events.map((e) => [e.instance_id, e.type]),
      [
        [one, 'instance.stopped'],
        [two, 'instance.failed'],
      ],
    );
  });

  it("lets the operator read another tenant's and every tenant's events; a tenant may not", async () => {
    const a = await tenant('opa');
    const b = await tenant('opb');
    const type = `instance.test_${randomUUID().slice(0, 8)}`;
    await a.outbox.record(a.outbox.newInstance(), type);
    await b.outbox.record(b.outbox.newInstance(), type);
    const operator = await stack.token(uniqueTenant('stream_operator'), ['operator']);

    const every = await eventually('both tenants', async () => {
      const r = await readNdjson(stack.api.url, operator, `?all_tenants=true&type=${type}`);
      return r.events.length === 2 ? r.events : undefined;
    });
    assert.deepEqual(every.map((e) => e.tenant_id).sort(), [a.id, b.id].sort());
    const one = await readNdjson(stack.api.url, operator, `?tenant_id=${b.id}&type=${type}`);
    assert.deepEqual(
      one.events.map((e) => e.tenant_id),
      [b.id],
    );

    assert.equal((await readNdjson(stack.api.url, a.token, '?all_tenants=true')).status, 403);
    assert.equal((await readNdjson(stack.api.url, a.token, `?tenant_id=${b.id}`)).status, 403);
    // Another tenant's event id does not open a tenant's stream after it.
    const foreign = (await readNdjson(stack.api.url, operator, `?tenant_id=${b.id}&type=${type}`)).events[0];
    const refused = await readNdjson(stack.api.url, a.token, `?after=${foreign?.id}`);
    assert.equal(refused.status, 400);
    assert.equal(JSON.parse(refused.body).errors[0].field, 'after');
  });

  it('refuses a malformed after, Last-Event-ID, type, instance or unknown parameter, naming it', async () => {
    const t = await tenant('bad');
    const cases: [string, Record<string, string>, string][] = [
      ['?after=evt_nope', {}, 'after'],
      ['', { 'last-event-id': 'x' }, 'Last-Event-ID'],
      ['?type=Started', {}, 'type[0]'],
      ['?instance=inst_1', {}, 'instance'],
      ['?follow=maybe', {}, 'follow'],
      ['?color=red', {}, 'color'],
    ];
    for (const [query, headers, field] of cases) {
      const res = await readNdjson(stack.api.url, t.token, query, headers);
      assert.equal(res.status, 400, `${query} ${JSON.stringify(headers)}`);
      const problem = JSON.parse(res.body);
      assert.equal(problem.errors[0].field, field, res.body);
    }
    const res = await fetch(`${stack.api.url}/v1/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.token}` },
    });
    assert.equal(res.status, 405);
  });

  it('follows new events as they are written, and ends open streams when the API shuts down', async () => {
    const t = await tenant('follow');
    const inst = t.outbox.newInstance();
    await t.outbox.record(inst, 'instance.created');
    // An API of its own, with a grace period longer than the test: only its shutdown can end the stream.
    const config = { ...stack.config, PORT: 0, CTRLPLANE_API_SHUTDOWN_GRACE_MS: 600_000 };
    const api = await startApi(config, createLogger('events-test', 'warn'), stack.providers);
    const ndjsonFollow = await fetch(`${api.url}/v1/events?follow=true`, {
      headers: { authorization: `Bearer ${t.token}` },
    });
    const ndjsonLines: string[] = [];
    const ndjsonEnded = (async () => {
      let pending = '';
      for await (const chunk of ndjsonFollow.body ?? []) {
        pending += Buffer.from(chunk).toString('utf8');
        const parts = pending.split('\n');
        pending = parts.pop() ?? '';
        ndjsonLines.push(...parts.filter((l) => l !== ''));
      }
    })();
    const sse = openSse(api.url, t.token, '?follow=true');
    assert.equal((await sse.until(1))[0]?.data.type, 'instance.created');

    await t.outbox.record(inst, 'instance.stopped');
    await t.outbox.record(inst, 'instance.started');
    const got = await sse.until(3);
    assert.deepEqual(
      got.map((e) => e.data.type),
      ['instance.created', 'instance.stopped', 'instance.started'],
    );

    await eventually('the NDJSON stream has them too', async () => ndjsonLines.length === 3);

    await api.close();
    await sse.ended;
    await ndjsonEnded;
    assert.equal(sse.received.length, 3, 'nothing more, nothing twice');
    assert.deepEqual(
      ndjsonLines.map((l) => JSON.parse(l).type),
      ['instance.created', 'instance.stopped', 'instance.started'],
    );
  });
});
