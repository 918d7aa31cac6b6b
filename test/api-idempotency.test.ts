import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { requestFingerprint } from '../api/idempotency.ts';
import { IdempotencyStore } from '../db/idempotency-store.ts';
import { newInstanceId } from '../domain/ids.ts';
import { type ApiCall, checkedClient, OpenApiChecker } from './support/api-openapi.ts';
import { deleteTenantRows, seedRecord, seedRows } from './support/api-seed.ts';
import { type Stack, startStack, uniqueTenant } from './support/stack.ts';

// Idempotency keys in PostgreSQL: claims, replays, expiry and the takeover of a claim whose request died.
// No worker: creates here start workflows nobody runs, which is all a create's answer depends on.
describe('Idempotency-Key storage: claims, replays, expiry, and the takeover of a dead request', () => {
  let stack: Stack;
  let checker: OpenApiChecker;

  before(async () => {
    stack = await startStack({
      worker: false,
      env: { CTRLPLANE_RATE_LIMIT_PER_MINUTE: '0', CTRLPLANE_IDEMPOTENCY_WAIT_MS: '1500' },
    });
    await deleteTenantRows(stack.orm, 'ten_idem');
    checker = await OpenApiChecker.load(stack.api.url);
  });

  after(async () => {
    await deleteTenantRows(stack.orm, 'ten_idem');
    await stack?.close();
  });

  function scope(tenantId: string, key: string, body: unknown = { a: 1 }, resourceId?: string) {
    return {
      tenantId,
      key,
      method: 'POST',
      path: '/v1/instances',
      fingerprint: requestFingerprint('POST', '/v1/instances', body),
      ...(resourceId ? { resourceId } : {}),
    };
  }

  it('claims a key once, reports it busy, replays the stored response, and refuses another body', async () => {
    const store = new IdempotencyStore(stack.orm, { ttlMs: 60_000, lockMs: 60_000 });
    const tenant = uniqueTenant('idem');
    const first = await store.claim(scope(tenant, 'k1', { a: 1 }, 'inst_x'));
    assert.deepEqual(first, { outcome: 'owner', resourceId: 'inst_x', resumed: false });
    assert.deepEqual(await store.claim(scope(tenant, 'k1', { a: 1 })), { outcome: 'busy' });
    assert.deepEqual(await store.claim(scope(tenant, 'k1', { a: 2 })), { outcome: 'mismatch' });
    // Key order does not make another request.
    assert.equal(
      requestFingerprint('POST', '/x', { a: 1, b: { c: 2, d: 3 } }),
      requestFingerprint('POST', '/x', { b: { d: 3, c: 2 }, a: 1 }),
    );
    await store.complete(scope(tenant, 'k1'), {
      status: 201,
      headers: { Location: '/x' },
      body: '{"id":"x"}',
    });
    assert.deepEqual(await store.claim(scope(tenant, 'k1')), {
      outcome: 'replay',
      response: { status: 201, headers: { Location: '/x' }, body: '{"id":"x"}' },
    });
    // Keys are per tenant.
    const elsewhere = await store.claim(scope(uniqueTenant('idem'), 'k1'));
    assert.equal(elsewhere.outcome, 'owner');
    // A released key (a 5xx) is free again.
    await store.release(scope(tenant, 'k2'));
    assert.equal((await store.claim(scope(tenant, 'k2'))).outcome, 'owner');
    await store.release(scope(tenant, 'k2'));
    assert.equal((await store.claim(scope(tenant, 'k2'))).outcome, 'owner');
  });

  it('lets a repeat take over a claim whose request died, with the resource it reserved', async () => {
    const store = new IdempotencyStore(stack.orm, { ttlMs: 60_000, lockMs: 150 });
    const tenant = uniqueTenant('idem');
    assert.equal((await store.claim(scope(tenant, 'dead', { a: 1 }, 'inst_reserved'))).outcome, 'owner');
    assert.equal((await store.claim(scope(tenant, 'dead', { a: 1 }, 'inst_other'))).outcome, 'busy');
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(await store.claim(scope(tenant, 'dead', { a: 1 }, 'inst_other')), {
      outcome: 'owner',
      resourceId: 'inst_reserved',
      resumed: true,
    });
    assert.equal(
      (await store.claim(scope(tenant, 'dead', { a: 1 }))).outcome,
      'busy',
      'the takeover holds it',
    );
  });

  it('forgets keys after their time to live, and purges them', async () => {
    const store = new IdempotencyStore(stack.orm, { ttlMs: 100, lockMs: 50 });
    const tenant = uniqueTenant('idem');
    await store.claim(scope(tenant, 'old'));
    await store.complete(scope(tenant, 'old'), { status: 200, headers: {}, body: '{}' });
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(
      (await store.claim(scope(tenant, 'old', { other: true }))).outcome,
      'owner',
      'reusable after expiry',
    );
    await store.claim(scope(tenant, 'gone'));
    await new Promise((r) => setTimeout(r, 200));
    assert.ok((await store.purgeExpired()) >= 2);
    const [row] = await stack.orm.em
      .fork()
      .getConnection()
      .execute<{ count: string }[]>('select count(*) from idempotency_keys where tenant_id = ?', [tenant]);
    assert.equal(Number(row?.count), 0);
  });

  describe('a create whose first request died after claiming its key', () => {
    let api: ApiCall;
    const tenant = uniqueTenant('idem');
    const body = { name: 'resumed', services: [{ name: 'web', image: 'ctrlplane-test/busybox:1' }] };

    before(async () => {
      api = checkedClient(stack.api.url, checker, await stack.token(tenant));
    });

    async function abandonedClaim(key: string, requestBody: unknown, resourceId: string) {
      await stack.orm.em
        .fork()
        .getConnection()
        .execute(
          `insert into idempotency_keys (tenant_id, key, fingerprint, method, path, resource_id, locked_until, expires_at)
           values (?, ?, ?, 'POST', '/v1/instances', ?, now() - interval '1 second', now() + interval '1 day')`,
          [tenant, key, requestFingerprint('POST', '/v1/instances', requestBody), resourceId],
        );
    }

    it('creates the instance under the id the dead request reserved', async () => {
      const reserved = newInstanceId();
      await abandonedClaim('died-before-insert', body, reserved);
      const res = await api('POST', '/v1/instances', body, {
        headers: { 'idempotency-key': 'died-before-insert' },
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      assert.equal(res.body.id, reserved);
    });

    it('answers with the instance the dead request had already inserted, creating nothing new', async () => {
      const row = seedRecord({ tenant_id: tenant, name: 'half-done', state: 'provisioning' }, 0);
      await seedRows(stack.orm, [row]);
      const halfBody = { ...body, name: 'half-done' };
      await abandonedClaim('died-after-insert', halfBody, row.id);
      const res = await api('POST', '/v1/instances', halfBody, {
        headers: { 'idempotency-key': 'died-after-insert' },
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      assert.equal(res.body.id, row.id);
      const [count] = await stack.orm.em
        .fork()
        .getConnection()
        .execute<{ count: string }[]>('select count(*) from instances where tenant_id = ? and slug = ?', [
          tenant,
          'half-done',
        ]);
      assert.equal(Number(count?.count), 1);
      const replay = await api('POST', '/v1/instances', halfBody, {
        headers: { 'idempotency-key': 'died-after-insert' },
      });
      assert.equal(replay.headers.get('idempotent-replayed'), 'true');
      assert.equal(replay.text, res.text);
    });

    it('answers 409 request_in_progress with Retry-After while a live request holds the key', async () => {
      await stack.orm.em
        .fork()
        .getConnection()
        .execute(
          `insert into idempotency_keys (tenant_id, key, fingerprint, method, path, locked_until, expires_at)
           values (?, 'held', ?, 'POST', '/v1/instances', now() + interval '1 hour', now() + interval '1 day')`,
          [tenant, requestFingerprint('POST', '/v1/instances', body)],
        );
      const started = Date.now();
      const res = await api('POST', '/v1/instances', body, { headers: { 'idempotency-key': 'held' } });
      assert.equal(res.status, 409);
      assert.equal(res.body.code, 'request_in_progress');
      assert.equal(res.headers.get('retry-after'), '1');
      assert.ok(Date.now() - started >= 1_400, 'it waited for the holder first');
    });
  });
});
