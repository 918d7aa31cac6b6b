import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import { instanceWorkflowId } from '../workflows/messages.ts';
import { httpdService, removeInstances, removeTenantLeftovers } from './support/docker.ts';
import { apiClient, eventually } from './support/http.ts';
import { type Stack, startStack, uniqueTenant } from './support/stack.ts';

// Real Temporal, PostgreSQL and Docker.
describe('refused commands, tenant isolation and authentication', () => {
  let stack: Stack;
  let owner: ReturnType<typeof apiClient>;
  let stranger: ReturnType<typeof apiClient>;
  const tenant = uniqueTenant('guard');
  let id = '';

  before(async () => {
    await removeTenantLeftovers('ten_guard_');
    stack = await startStack();
    owner = apiClient(stack.api.url, await stack.token(tenant));
    stranger = apiClient(stack.api.url, await stack.token(uniqueTenant('guardother')));
    const res = await owner('POST', '/v1/instances?wait=30s', {
      name: 'guarded',
      services: [httpdService('guarded')],
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    id = res.body.id;
    assert.equal(res.body.state, 'running', '?wait on create returns once settled');
  });

  after(async () => {
    await stack?.close();
    await removeInstances([id]);
  });

  async function readModel() {
    const [row] = await stack.orm.em
      .fork()
      .getConnection()
      .execute<{ state: string; seq: number; updated_at: Date }[]>(
        'select state, seq, updated_at from instances where id = ?',
        [id],
      );
    const [counted] = await stack.orm.em
      .fork()
      .getConnection()
      .execute<{ count: string }[]>('select count(*) from instance_events where instance_id = ?', [id]);
    return { ...row, events: Number(counted?.count) };
  }

  it('refuses start on a running instance with 409 problem+json and changes nothing, not even history', async () => {
    const handle = stack.client.workflow.getHandle(instanceWorkflowId(id));
    // The workflow's task after the transition to running (it starts the drift timer) may still be under way
    // when the read model says running: compare histories from a quiet point, so only the refused update counts.
    await eventually('the instance workflow to be idle', async () => {
      const { raw } = await handle.describe();
      return !raw.pendingWorkflowTask && (raw.pendingActivities ?? []).length === 0;
    });
    const historyBefore = (await handle.fetchHistory()).events ?? [];
    const modelBefore = await readModel();

    const res = await owner('POST', `/v1/instances/${id}/start`);
    assert.equal(res.status, 409);
    assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
    assert.equal(res.body.code, 'invalid_state');
    assert.equal(res.body.status, 409);
    assert.match(res.body.detail, /start is not allowed while the instance is running/);

    const historyAfter = (await handle.fetchHistory()).events ?? [];
    assert.equal(
      historyAfter.length,
      historyBefore.length,
      'the refused update left no event in the history',
    );
    assert.deepEqual(await readModel(), modelBefore);
    assert.equal((await owner('GET', `/v1/instances/${id}`)).body.state, 'running');
  });

  it('answers 404 to another tenant on every instance route, and shows nothing in its list', async () => {
    const routes: [string, string][] = [
      ['GET', `/v1/instances/${id}`],
      ['POST', `/v1/instances/${id}/start`],
      ['POST', `/v1/instances/${id}/stop`],
      ['DELETE', `/v1/instances/${id}`],
    ];
    for (const [method, path] of routes) {
      const res = await stranger(method, path);
      assert.equal(res.status, 404, `${method} ${path}`);
      assert.equal(res.body.code, 'not_found');
    }
    const list = await stranger('GET', '/v1/instances');
    assert.equal(list.status, 200);
    assert.deepEqual(list.body.items, []);
    assert.equal(list.body.total, 0);
    assert.equal(
      (await owner('GET', `/v1/instances/${id}`)).body.state,
      'running',
      'the stranger changed nothing',
    );
  });

  it('answers 401 without a token, with a bad signature, or with an expired token', async () => {
    const forged = await new SignJWT({ tenant_id: tenant })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('mallory')
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode('not-the-secret-of-this-deployment'));
    const expired = await new SignJWT({ tenant_id: tenant })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('late')
      .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
      .sign(new TextEncoder().encode(stack.jwtSecret));
    const callers = [
      apiClient(stack.api.url),
      apiClient(stack.api.url, forged),
      apiClient(stack.api.url, expired),
    ];
    const routes: [string, string][] = [
      ['POST', '/v1/instances'],
      ['GET', '/v1/instances'],
      ['GET', `/v1/instances/${id}`],
      ['POST', `/v1/instances/${id}/start`],
      ['POST', `/v1/instances/${id}/stop`],
      ['DELETE', `/v1/instances/${id}`],
    ];
    for (const call of callers) {
      for (const [method, path] of routes) {
        const res = await call(method, path, method === 'POST' ? {} : undefined);
        assert.equal(res.status, 401, `${method} ${path}`);
        assert.equal(res.body.code, 'unauthorized');
        assert.equal(res.headers.get('www-authenticate'), 'Bearer');
      }
    }
    assert.equal((await owner('GET', `/v1/instances/${id}`)).body.state, 'running');
  });

  it('rejects bad create requests with 400 naming the field, and writes nothing', async () => {
    const cases: [unknown, string][] = [
      [{ services: [httpdService('x')] }, 'name'],
      [{ name: 'x', services: [{ ...httpdService('x'), image: 42 }] }, 'services[0].image'],
      [{ name: 'x', services: [{ ...httpdService('x'), colour: 'blue' }] }, 'services[0].colour'],
      [{ name: 'x', services: [] }, 'services'],
      [
        { name: 'x', services: [{ ...httpdService('x'), ports: [{ container: 70000 }] }] },
        'services[0].ports[0].container',
      ],
      [{ name: 'x', services: [httpdService('x')], provider_name: 'nomad' }, 'provider_name'],
      ['{"name": "x", "services": [', 'body'],
    ];
    const before = await owner('GET', '/v1/instances');
    for (const [body, field] of cases) {
      const res = await owner('POST', '/v1/instances', body);
      assert.ok(res.status === 400, `${JSON.stringify(body)} → ${res.status}`);
      assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
      assert.ok(
        res.body.errors?.some((e: { field: string }) => e.field === field),
        `field ${field} named in ${JSON.stringify(res.body)}`,
      );
    }
    const huge = await owner('POST', '/v1/instances', {
      name: 'x',
      services: [httpdService('x')],
      labels: { a: 'x'.repeat(300_000) },
    });
    assert.equal(huge.status, 400);
    assert.equal(huge.body.errors[0].field, 'body');
    const afterList = await owner('GET', '/v1/instances');
    assert.equal(afterList.body.total, before.body.total, 'nothing was written');
  });

  it('refuses a second instance with the same slug in the tenant with 409, but allows it in another tenant', async () => {
    const dup = await owner('POST', '/v1/instances', { name: 'Guarded', services: [httpdService('x')] });
    assert.equal(dup.status, 409);
    assert.equal(dup.body.code, 'already_exists');
    const elsewhere = await stranger('POST', '/v1/instances', {
      name: 'guarded',
      services: [httpdService('y')],
    });
    assert.equal(elsewhere.status, 201);
    await eventually(
      'the other tenant instance running',
      async () => (await stranger('GET', `/v1/instances/${elsewhere.body.id}`)).body.state === 'running',
    );
    const del = await stranger('DELETE', `/v1/instances/${elsewhere.body.id}?wait=true`);
    assert.equal(del.status, 204);
  });

  it('answers unknown routes and wrong methods with problem+json', async () => {
    const unknown = await owner('GET', '/v1/nothing-here');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.code, 'not_found');
    const wrong = await owner('PUT', `/v1/instances/${id}/start`);
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.get('allow'), 'POST');
    const badId = await owner('GET', '/v1/instances/dc_01h455vb4pex5vsknk084sn02q');
    assert.equal(badId.status, 400);
    assert.equal(badId.body.errors[0].field, 'id');
  });
});
