import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { type ApiCall, checkedClient, OpenApiChecker } from './support/api-openapi.ts';
import { seedRecord, seedRows } from './support/api-seed.ts';
import { removeInstances, removeTenantLeftovers, TEST_IMAGE } from './support/docker.ts';
import { type Stack, startStack, uniqueTenant } from './support/stack.ts';

/** A service that logs a line to stdout every second (and one to stderr at start), and stops at once on TERM. */
function chattyService(name: string, role?: 'sidecar') {
  return {
    name,
    image: TEST_IMAGE,
    ...(role ? { role } : {}),
    command: [
      '/bin/sh',
      '-c',
      `trap 'exit 0' TERM; echo ${name}-started; echo ${name}-warning >&2; i=0; while true; do echo ${name}-tick-$i; i=$((i+1)); sleep 1; done`,
    ],
  };
}

// Real Temporal, PostgreSQL, worker and Docker engine: every route of the API on real instances, each answer
// checked against the API's own OpenAPI document by ajv.
describe('every route of the REST API, its success and its errors, checked against the OpenAPI document', () => {
  let stack: Stack;
  let checker: OpenApiChecker;
  let owner: ApiCall;
  let admin: ApiCall;
  let operator: ApiCall;
  let stranger: ApiCall;
  let anonymous: ApiCall;
  const tenant = uniqueTenant('routes');
  const created: string[] = [];
  let id = '';
  let second = '';
  const unknownId = 'inst_01h455vb4pex5vsknk084sn02q';
  const spec = { name: 'Routes Main', services: [chattyService('web'), chattyService('side', 'sidecar')] };

  before(async () => {
    await removeTenantLeftovers('ten_routes_');
    stack = await startStack({
      env: {
        CTRLPLANE_RATE_LIMIT_PER_MINUTE: '0',
        // No worker creates this schedule: the sweep routes answer 503 here (test/billing-sweep.test.ts runs sweeps).
        CTRLPLANE_BILLING_SCHEDULE_ID: `billing-none-${randomUUID()}`,
        // The webhook routes' receiver is on loopback.
        CTRLPLANE_WEBHOOK_ALLOW_PRIVATE: 'true',
      },
    });
    checker = await OpenApiChecker.load(stack.api.url);
    owner = checkedClient(stack.api.url, checker, await stack.token(tenant));
    admin = checkedClient(stack.api.url, checker, await stack.token(tenant, ['admin']));
    // The platform's operator: its token names a tenant of its own, never this one.
    operator = checkedClient(
      stack.api.url,
      checker,
      await stack.token(uniqueTenant('routesops'), ['operator']),
    );
    stranger = checkedClient(stack.api.url, checker, await stack.token(uniqueTenant('routesother')));
    anonymous = checkedClient(stack.api.url, checker);
  });

  after(async () => {
    await stack?.close();
    await removeInstances(created);
  });

  async function eventsOf(instanceId: string): Promise<{ type: string; payload: Record<string, unknown> }[]> {
    return stack.orm.em
      .fork()
      .getConnection()
      .execute('select type, payload from instance_events where instance_id = ? order by seq', [instanceId]);
  }

  it('serves /healthz, /readyz, /metrics, /openapi.json and /docs without a token', async () => {
    const health = await anonymous('GET', '/healthz');
    assert.deepEqual([health.status, health.body], [200, { status: 'ok' }]);
    const ready = await anonymous('GET', '/readyz');
    assert.equal(ready.status, 200, JSON.stringify(ready.body));
    assert.deepEqual(ready.body, {
      status: 'ready',
      checks: { postgres: 'ok', temporal: 'ok', 'provider:docker': 'ok' },
    });
    const doc = await anonymous('GET', '/openapi.json');
    assert.equal(doc.body.openapi, '3.1.0');
    assert.ok(Object.keys(doc.body.paths).length >= 18);
    const docs = await anonymous('GET', '/docs');
    assert.equal(docs.status, 200);
    assert.match(docs.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(docs.text, /swagger-ui-bundle\.js/);
    assert.doesNotMatch(docs.text, /https?:\/\//i, 'the page names no other origin');
    assert.match(docs.headers.get('content-security-policy') ?? '', /script-src 'self'/);
    for (const asset of [...docs.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1] ?? '')) {
      assert.match(asset, /^\/docs\//, `${asset} is served by the API itself`);
      const served = await fetch(`${stack.api.url}${asset}`);
      assert.equal(served.status, 200, asset);
    }
    const metrics = await anonymous('GET', '/metrics');
    assert.equal(metrics.status, 200);
    assert.match(metrics.text, /ctrlplane_http_request_duration_seconds/);
    const wrong = await anonymous('POST', '/healthz');
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.get('allow'), 'GET');
  });

  it('creates once when a create is repeated with its Idempotency-Key after a dropped connection', async () => {
    const key = randomUUID();
    const dropped = new AbortController();
    const first = fetch(`${stack.api.url}/v1/instances?wait=60s`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${await stack.token(tenant)}`,
        'content-type': 'application/json',
        'idempotency-key': key,
      },
      body: JSON.stringify(spec),
      signal: dropped.signal,
    });
    setTimeout(() => dropped.abort(), 300);
    await assert.rejects(first, /abort/i, 'the client dropped the connection before the answer');

    const repeat = await owner('POST', '/v1/instances?wait=60s', spec, {
      headers: { 'idempotency-key': key },
    });
    assert.equal(repeat.status, 201, JSON.stringify(repeat.body));
    id = repeat.body.id;
    created.push(id);
    assert.equal(
      repeat.body.state,
      'running',
      'the repeat waited for the first request, which waited for running',
    );
    assert.equal(repeat.headers.get('idempotent-replayed'), 'true', 'the dropped request did the work');
    assert.equal(repeat.headers.get('location'), `/v1/instances/${id}`);
    assert.match(repeat.headers.get('etag') ?? '', /^"\d+"$/);
    const [count] = await stack.orm.em
      .fork()
      .getConnection()
      .execute<{ count: string }[]>('select count(*) from instances where tenant_id = ? and slug = ?', [
        tenant,
        'routes-main',
      ]);
    assert.equal(Number(count?.count), 1, 'one instance');

    const again = await owner('POST', '/v1/instances?wait=60s', spec, {
      headers: { 'idempotency-key': key },
    });
    assert.equal(again.status, 201);
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    assert.equal(again.text, repeat.text, 'the same response, byte for byte');
    assert.equal(again.headers.get('etag'), repeat.headers.get('etag'));

    const reordered = { services: spec.services, name: spec.name };
    assert.equal(
      (await owner('POST', '/v1/instances', reordered, { headers: { 'idempotency-key': key } })).status,
      201,
    );
    const other = await owner(
      'POST',
      '/v1/instances',
      { ...spec, labels: { a: 'b' } },
      { headers: { 'idempotency-key': key } },
    );
    assert.equal(other.status, 422);
    assert.equal(other.body.code, 'idempotency_key_reused');
    const badKey = await owner('POST', '/v1/instances', spec, {
      headers: { 'idempotency-key': 'has space' },
    });
    assert.equal(badKey.status, 400);
    assert.equal(badKey.body.errors[0].field, 'Idempotency-Key');
  });

  it('refuses bad creates: 400 naming the field, 409 for a taken slug, 415 for non-JSON, 401 without a token', async () => {
    const dup = await owner('POST', '/v1/instances', { ...spec, name: 'routes main' });
    assert.equal(dup.status, 409);
    assert.equal(dup.body.code, 'already_exists');
    const invalid = await owner('POST', '/v1/instances', {
      name: 'x',
      services: [{ name: 'Web!', image: 'i' }],
    });
    assert.equal(invalid.status, 400);
    assert.equal(invalid.body.errors[0].field, 'services[0].name');
    const unknownProvider = await owner('POST', '/v1/instances', {
      ...spec,
      name: 'x',
      provider_name: 'nomad',
    });
    assert.equal(unknownProvider.status, 400);
    assert.equal(unknownProvider.body.code, 'provider_not_found');
    const text = await owner('POST', '/v1/instances', undefined, {
      raw: JSON.stringify(spec),
      headers: { 'content-type': 'text/plain' },
    });
    assert.equal(text.status, 415);
    assert.equal(text.body.code, 'unsupported_media_type');
    const relative = await owner('POST', '/v1/instances', {
      name: 'x',
      services: [{ ...chattyService('web'), config_files: [{ name: 'a', path: 'etc/a', content: 'x' }] }],
    });
    assert.equal(relative.status, 400);
    assert.equal(relative.body.errors[0].field, 'services[0].config_files[0].path');
    const nul = await owner('POST', '/v1/instances', { ...spec, name: 'x', labels: { a: 'b\u0000' } });
    assert.equal(nul.status, 400);
    assert.equal(nul.body.errors[0].field, 'body');
    const badWait = await owner('POST', '/v1/instances?wait=soon', spec);
    assert.equal(badWait.status, 400);
    assert.equal(badWait.body.errors[0].field, 'wait');
    assert.equal((await anonymous('POST', '/v1/instances', spec)).status, 401);
  });

  it('gets an instance with its ETag (304 when unchanged), finds it by slug, and hides it from other tenants', async () => {
    const got = await owner('GET', `/v1/instances/${id}`);
    assert.equal(got.status, 200);
    assert.equal(got.body.id, id);
    const etag = got.headers.get('etag') ?? '';
    assert.match(etag, /^"\d+"$/);
    const cached = await owner('GET', `/v1/instances/${id}`, undefined, {
      headers: { 'if-none-match': etag },
    });
    assert.equal(cached.status, 304);
    const bySlug = await owner('GET', '/v1/instances?slug=routes-main');
    assert.deepEqual(
      bySlug.body.items.map((i: { id: string }) => i.id),
      [id],
    );
    assert.equal(bySlug.body.total, 1);
    assert.equal((await stranger('GET', `/v1/instances/${id}`)).status, 404);
    assert.equal((await owner('GET', `/v1/instances/${unknownId}`)).status, 404);
    const badId = await owner('GET', '/v1/instances/not-an-id');
    assert.equal(badId.status, 400);
    assert.equal(badId.body.errors[0].field, 'id');
    assert.equal((await anonymous('GET', `/v1/instances/${id}`)).status, 401);
  });

  it('PATCHes labels and the name under If-Match; a taken slug is 409, a stale ETag 412', async () => {
    const current = await owner('GET', `/v1/instances/${id}`);
    const etag = current.headers.get('etag') ?? '';
    const relabelled = await owner(
      'PATCH',
      `/v1/instances/${id}`,
      { labels: { app: 'routes', tier: 'web' } },
      { headers: { 'if-match': etag } },
    );
    assert.equal(relabelled.status, 200, JSON.stringify(relabelled.body));
    assert.deepEqual(relabelled.body.labels, { app: 'routes', tier: 'web' });
    assert.notEqual(relabelled.headers.get('etag'), etag, 'a new version');
    const stale = await owner(
      'PATCH',
      `/v1/instances/${id}`,
      { labels: {} },
      { headers: { 'if-match': etag } },
    );
    assert.equal(stale.status, 412);
    assert.equal(stale.body.code, 'precondition_failed');
    assert.deepEqual((await owner('GET', `/v1/instances/${id}`)).body.labels, { app: 'routes', tier: 'web' });

    const renamed = await owner('PATCH', `/v1/instances/${id}`, { name: 'Routes Renamed' });
    assert.equal(renamed.status, 200);
    assert.equal(renamed.body.slug, 'routes-renamed');

    // A slug held in the read model is refused before anything is sent.
    const holder = seedRecord({ tenant_id: tenant, name: 'Taken Name', state: 'stopped' });
    await seedRows(stack.orm, [holder]);
    const taken = await owner('PATCH', `/v1/instances/${id}`, { name: 'taken name' });
    assert.equal(taken.status, 409);
    assert.equal(taken.body.code, 'already_exists');
    assert.equal(taken.body.errors[0].field, 'name');

    const configFile = { name: 'app.json', path: '/etc/app/', format: 'json', content: { greeting: 'hi' } };
    const res = await owner('POST', '/v1/instances', {
      name: 'Routes Second',
      services: [
        { ...chattyService('web'), config_files: [configFile], secrets: [{ key: 'db', type: 'env' }] },
      ],
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.deepEqual(res.body.services[0].config_files, [configFile]);
    second = res.body.id;
    created.push(second);
    await owner('GET', `/v1/instances/${second}/wait?state=running&timeout=60s`);
    // Both renamed to one name at once: the workflow's unique-index check refuses one of them (or, if one
    // finishes first, the read-model pre-check does), with the same 409.
    const [a, b] = await Promise.all([
      owner('PATCH', `/v1/instances/${id}`, { name: 'Contested' }),
      owner('PATCH', `/v1/instances/${second}`, { name: 'Contested' }),
    ]);
    assert.deepEqual([a.status, b.status].sort(), [200, 409], `${a.text} / ${b.text}`);
    const loser = a.status === 409 ? a : b;
    assert.equal(loser.body.code, 'already_exists');
    if (a.status === 200) await owner('PATCH', `/v1/instances/${id}`, { name: 'Routes Main' });
    else {
      await owner('PATCH', `/v1/instances/${second}`, { name: 'Routes Second' });
      await owner('PATCH', `/v1/instances/${id}`, { name: 'Routes Main' });
    }

    const accepted = await owner('PATCH', `/v1/instances/${id}?wait=false`, { labels: { app: 'routes' } });
    assert.equal(accepted.status, 202);
    for (const [body, field] of [
      [{}, 'body'],
      [{ name: 5 }, 'name'],
      [{ name: '' }, 'name'],
      [{ labels: { 'bad key!': 'v' } }, 'labels.bad key!'],
      [{ services: [] }, 'services'],
      [{ state: 'running' }, 'state'],
    ] as const) {
      const bad = await owner('PATCH', `/v1/instances/${id}`, body);
      assert.equal(bad.status, 400, JSON.stringify(body));
      assert.ok(
        bad.body.errors.some((e: { field: string }) => e.field === field),
        `${field} in ${JSON.stringify(bad.body.errors)}`,
      );
    }
    assert.equal((await stranger('PATCH', `/v1/instances/${id}`, { labels: {} })).status, 404);
    assert.equal((await owner('PATCH', `/v1/instances/${unknownId}`, { labels: {} })).status, 404);
  });

  it('stops, starts and restarts; refuses what the state machine refuses; replays a keyed command', async () => {
    await owner('GET', `/v1/instances/${id}/wait?state=running&timeout=30s`);
    const key = randomUUID();
    const stopped = await owner('POST', `/v1/instances/${id}/stop?wait=true`, undefined, {
      headers: { 'idempotency-key': key },
    });
    assert.equal(stopped.status, 200, JSON.stringify(stopped.body));
    assert.equal(stopped.body.state, 'stopped');
    const replayed = await owner('POST', `/v1/instances/${id}/stop?wait=true`, undefined, {
      headers: { 'idempotency-key': key },
    });
    assert.equal(replayed.status, 200);
    assert.equal(replayed.headers.get('idempotent-replayed'), 'true');
    assert.equal(replayed.text, stopped.text);
    const applied = (await eventsOf(id)).filter((e) => e.payload.request_id === `stop:${key}`);
    assert.deepEqual(
      applied.map((e) => e.type),
      ['instance.stopping', 'instance.stopped'],
      'the command ran once',
    );

    const again = await owner('POST', `/v1/instances/${id}/stop`);
    assert.equal(again.status, 409);
    assert.equal(again.body.code, 'invalid_state');

    const etag = (await owner('GET', `/v1/instances/${id}`)).headers.get('etag') ?? '';
    const staleStart = await owner('POST', `/v1/instances/${id}/start`, undefined, {
      headers: { 'if-match': '"0"' },
    });
    assert.equal(staleStart.status, 412);
    const started = await owner('POST', `/v1/instances/${id}/start`, {}, { headers: { 'if-match': etag } });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const running = await owner('GET', `/v1/instances/${id}/wait?state=running&timeout=30s`);
    assert.equal(running.status, 200);
    assert.equal(running.body.state, 'running');
    const timedOut = await owner('GET', `/v1/instances/${id}/wait?state=stopped&timeout=300ms`);
    assert.equal(timedOut.status, 408);
    assert.equal(timedOut.body.code, 'request_timeout');
    const badWait = await owner('GET', `/v1/instances/${id}/wait?state=asleep`);
    assert.equal(badWait.status, 400);
    assert.equal(badWait.body.errors[0].field, 'state');
    assert.equal((await stranger('GET', `/v1/instances/${id}/wait?state=running`)).status, 404);

    const restarted = await owner('POST', `/v1/instances/${id}/restart?wait=30s`);
    assert.equal(restarted.status, 200, JSON.stringify(restarted.body));
    assert.equal(restarted.body.state, 'running');
    assert.ok((await eventsOf(id)).some((e) => e.type === 'instance.restarted'));
    const withBody = await owner('POST', `/v1/instances/${id}/restart`, { force: true });
    assert.equal(withBody.status, 400);
    for (const command of ['start', 'stop', 'restart']) {
      assert.equal((await stranger('POST', `/v1/instances/${id}/${command}`)).status, 404, command);
      assert.equal((await owner('POST', `/v1/instances/${unknownId}/${command}`)).status, 404, command);
    }
  });

  it('scales: 400 for bad values before anything is sent, the new resources with ?wait', async () => {
    const before = (await eventsOf(id)).length;
    for (const [body, field] of [
      [{ cpu_millis: -1 }, 'cpu_millis'],
      [{ memory_mb: 'lots' }, 'memory_mb'],
      [{ replicas: 0 }, 'replicas'],
      [{ replicas: 1.5 }, 'replicas'],
      [{}, 'body'],
      [{ cpu_millis: 1, gpu: 1 }, 'gpu'],
    ] as const) {
      const bad = await owner('POST', `/v1/instances/${id}/scale`, body);
      assert.equal(bad.status, 400, JSON.stringify(body));
      assert.ok(
        bad.body.errors.some((e: { field: string }) => e.field === field),
        JSON.stringify(bad.body),
      );
    }
    assert.equal((await eventsOf(id)).length, before, 'nothing reached the workflow');
    const scaled = await owner('POST', `/v1/instances/${id}/scale?wait=30s`, {
      cpu_millis: 250,
      memory_mb: 64,
    });
    assert.equal(scaled.status, 200, JSON.stringify(scaled.body));
    const web = scaled.body.services.find((s: { name: string }) => s.name === 'web');
    assert.equal(web.resources.cpu_millis, 250);
    assert.equal(web.resources.memory_mb, 64);
    assert.equal((await stranger('POST', `/v1/instances/${id}/scale`, { replicas: 1 })).status, 404);
  });

  it('suspends and unsuspends for the operator only; a suspended instance refuses start, restart and scale', async () => {
    for (const tenantCaller of [owner, admin]) {
      const refused = await tenantCaller('POST', `/v1/instances/${id}/suspend`, { reason: 'billing' });
      assert.equal(refused.status, 403);
      assert.equal(refused.body.code, 'forbidden');
      assert.equal(refused.body.detail, 'this operation needs the operator role');
    }
    const suspended = await operator('POST', `/v1/instances/${id}/suspend?wait=30s`, { reason: 'billing' });
    assert.equal(suspended.status, 200, JSON.stringify(suspended.body));
    assert.equal(suspended.body.state, 'stopped');
    assert.equal(suspended.body.suspend_reason, 'billing');
    assert.ok(suspended.body.suspended_at);
    for (const [command, body] of [
      ['start', undefined],
      ['restart', undefined],
      ['scale', { replicas: 1 }],
    ] as const) {
      const refused = await owner('POST', `/v1/instances/${id}/${command}`, body);
      assert.equal(refused.status, 409, command);
      assert.equal(refused.body.code, 'suspended', command);
    }
    assert.equal((await owner('POST', `/v1/instances/${id}/unsuspend`)).status, 403);
    assert.equal((await admin('POST', `/v1/instances/${id}/unsuspend`, {})).status, 403);
    const wrongReason = await operator('POST', `/v1/instances/${id}/unsuspend`, { reason: 'abuse' });
    assert.equal(wrongReason.status, 409);
    const lifted = await operator('POST', `/v1/instances/${id}/unsuspend?wait=30s`);
    assert.equal(lifted.status, 200, JSON.stringify(lifted.body));
    assert.equal(lifted.body.state, 'running', 'back to the run state it had');
    assert.equal(lifted.body.suspend_reason, undefined);
    const notSuspended = await operator('POST', `/v1/instances/${id}/unsuspend`, {});
    assert.equal(notSuspended.status, 409);
    assert.equal((await operator('POST', `/v1/instances/${unknownId}/suspend`, { reason: 'x' })).status, 404);
  });

  it('restarts one service, runs a command (exec), and refuses a stop signal it does not know', async () => {
    if ((await owner('GET', `/v1/instances/${id}`)).body.state !== 'running') {
      assert.equal((await owner('POST', `/v1/instances/${id}/start?wait=true`)).status, 200);
    }
    const restarted = await owner('POST', `/v1/instances/${id}/services/side/restart?wait=true`);
    assert.equal(restarted.status, 200, JSON.stringify(restarted.body));
    assert.equal(restarted.body.state, 'running');
    assert.equal((await owner('POST', `/v1/instances/${id}/services/nope/restart`)).status, 404);
    const ran = await owner('POST', `/v1/instances/${id}/exec`, { command: ['sh', '-c', 'echo hi'] });
    assert.equal(ran.status, 200, JSON.stringify(ran.body));
    assert.equal(ran.body.stdout, 'hi\n');
    const bad = await owner('POST', `/v1/instances/${id}/exec`, { command: [] });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.errors[0].field, 'command');
    assert.equal((await stranger('POST', `/v1/instances/${id}/exec`, { command: ['id'] })).status, 404);
    const signal = await owner('POST', `/v1/instances/${id}/stop`, { signal: 'SIGFOO' });
    assert.equal(signal.status, 400);
    assert.equal(signal.body.errors[0].field, 'signal');
  });

  it('lists lifecycle events oldest first, cursor-paged', async () => {
    const seen: { id: string; seq: number; type: string }[] = [];
    let cursor: string | undefined;
    do {
      const page = await owner(
        'GET',
        `/v1/instances/${id}/events?limit=3${cursor ? `&cursor=${cursor}` : ''}`,
      );
      assert.equal(page.status, 200);
      assert.ok(page.body.items.length <= 3);
      seen.push(...page.body.items);
      cursor = page.body.next_cursor;
    } while (cursor);
    const stored = await eventsOf(id);
    assert.equal(seen.length, stored.length);
    assert.deepEqual(
      seen.map((e) => e.type),
      stored.map((e) => e.type),
    );
    for (let i = 1; i < seen.length; i++) assert.ok((seen[i]?.seq ?? 0) > (seen[i - 1]?.seq ?? 0));
    for (const type of [
      'instance.created',
      'instance.updated',
      'instance.stopped',
      'instance.restarted',
      'instance.scaled',
      'instance.suspended',
      'instance.unsuspended',
    ]) {
      assert.ok(
        seen.some((e) => e.type === type),
        type,
      );
    }
    assert.equal((await owner('GET', `/v1/instances/${id}/events?cursor=bogus`)).status, 400);
    assert.equal((await owner('GET', `/v1/instances/${id}/events?limit=201`)).status, 400);
    assert.equal((await stranger('GET', `/v1/instances/${id}/events`)).status, 404);
  });

  it('serves logs as NDJSON (service, tail, since, follow) and SSE, and resource usage', async () => {
    const logs = await owner('GET', `/v1/instances/${id}/logs?tail=5`);
    assert.equal(logs.status, 200);
    const lines = logs.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.ok(lines.length >= 1 && lines.length <= 5, `${lines.length} lines`);
    assert.ok(
      lines.every((l) => l.line.startsWith('web-')),
      'the main service by default',
    );
    const side = await owner('GET', `/v1/instances/${id}/logs?service=side&since=10m`);
    const sideLines = side.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.ok(
      sideLines.some((l) => l.line === 'side-warning' && l.stream === 'stderr'),
      side.text.slice(0, 500),
    );
    assert.ok(sideLines.every((l) => l.line.startsWith('side-')));
    const unknownService = await owner('GET', `/v1/instances/${id}/logs?service=db`);
    assert.equal(unknownService.status, 400);
    assert.equal(unknownService.body.errors[0].field, 'service');

    // follow: lines keep coming; the client leaves after two new ones.
    const leave = new AbortController();
    const followed = await fetch(`${stack.api.url}/v1/instances/${id}/logs?follow=true&tail=1`, {
      headers: { authorization: `Bearer ${await stack.token(tenant)}` },
      signal: leave.signal,
    });
    assert.equal(followed.status, 200);
    const reader = followed.body!.getReader();
    let text = '';
    while ((text.match(/tick/g) ?? []).length < 3) {
      const { value, done } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString('utf8');
    }
    leave.abort();
    assert.ok((text.match(/tick/g) ?? []).length >= 3, text);

    // SSE authenticates with a one-time ticket (EventSource cannot send the header).
    const ticket = await owner('POST', `/v1/instances/${id}/logs/stream-ticket`);
    assert.equal(ticket.status, 201, JSON.stringify(ticket.body));
    const sseAbort = new AbortController();
    const sse = await fetch(`${stack.api.url}${ticket.body.stream_url}&tail=2`, { signal: sseAbort.signal });
    assert.equal(sse.status, 200);
    assert.match(sse.headers.get('content-type') ?? '', /^text\/event-stream/);
    const sseReader = sse.body!.getReader();
    let events = '';
    while (!/event: log\ndata: \{.*"line":"web-tick-\d+"\}\n\n/.test(events)) {
      const { value, done } = await sseReader.read();
      if (done) break;
      events += Buffer.from(value).toString('utf8');
    }
    sseAbort.abort();
    assert.match(events, /^retry: 3000\n\n/);
    const sseWithoutToken = await fetch(`${stack.api.url}/v1/instances/${id}/logs/stream`);
    assert.equal(sseWithoutToken.status, 401);
    assert.equal((await stranger('GET', `/v1/instances/${id}/logs`)).status, 404);
    assert.equal((await stranger('GET', `/v1/instances/${id}/logs/stream`)).status, 404);
    assert.equal((await stranger('POST', `/v1/instances/${id}/logs/stream-ticket`)).status, 404);

    const usage = await owner('GET', `/v1/instances/${id}/resources`);
    assert.equal(usage.status, 200, JSON.stringify(usage.body));
    assert.ok(usage.body.memory_used_mb > 0, 'the running containers use memory');
    assert.ok(usage.body.memory_limit_mb >= 64);
    assert.equal((await stranger('GET', `/v1/instances/${id}/resources`)).status, 404);
    assert.equal((await owner('GET', `/v1/instances/${unknownId}/resources`)).status, 404);
  });

  it('lists releases newest first, reads one by number or id, and rolls back to one as a new release', async () => {
    const page = await owner('GET', `/v1/instances/${id}/releases?limit=1`);
    assert.equal(page.status, 200, JSON.stringify(page.body));
    const [newest] = page.body.items;
    assert.equal(newest.current, true);
    assert.ok(page.body.next_cursor, 'the create and the scale made two releases at least');
    const first = await owner('GET', `/v1/instances/${id}/releases/1`);
    assert.equal(first.status, 200);
    assert.equal(first.body.description, 'create');
    assert.deepEqual((await owner('GET', `/v1/instances/${id}/releases/${first.body.id}`)).body, first.body);
    assert.equal((await owner('GET', `/v1/instances/${id}/releases?cursor=bogus`)).status, 400);
    assert.equal((await owner('GET', `/v1/instances/${id}/releases?limit=101`)).status, 400);
    assert.equal((await owner('GET', `/v1/instances/${id}/releases/9999`)).status, 404);
    assert.equal((await stranger('GET', `/v1/instances/${id}/releases`)).status, 404);
    assert.equal((await stranger('GET', `/v1/instances/${id}/releases/1`)).status, 404);
    assert.equal((await stranger('POST', `/v1/instances/${id}/rollback`, { release: 1 })).status, 404);
    assert.equal((await owner('POST', `/v1/instances/${id}/rollback`, { release: 'x' })).status, 400);
    assert.equal(
      (await owner('POST', `/v1/instances/${id}/rollback?rollback_on_failure=x`, { release: 1 })).status,
      400,
    );
    const rollback = await owner('POST', `/v1/instances/${id}/rollback?wait=30s`, { release: 1 });
    assert.equal(rollback.status, 200, JSON.stringify(rollback.body));
    const now = await owner('GET', `/v1/instances/${id}/releases/${rollback.body.current_release}`);
    assert.equal(now.body.description, 'rollback to v1');
    assert.equal(now.body.number, newest.number + 1);
  });

  it('deletes (204 with ?wait, then 202 again: convergent); a destroyed instance takes no other command', async () => {
    const stale = await owner('DELETE', `/v1/instances/${id}`, undefined, { headers: { 'if-match': '"1"' } });
    assert.equal(stale.status, 412);
    const deleted = await owner('DELETE', `/v1/instances/${id}?wait=60s`);
    assert.equal(deleted.status, 204, deleted.text);
    assert.equal(deleted.text, '');
    const again = await owner('DELETE', `/v1/instances/${id}`);
    assert.equal(again.status, 202);
    assert.equal(again.body.state, 'destroyed');
    const start = await owner('POST', `/v1/instances/${id}/start`);
    assert.equal(start.status, 409);
    assert.equal(start.body.code, 'invalid_state');
    const never = await owner('GET', `/v1/instances/${id}/wait?state=running&timeout=5s`);
    assert.equal(never.status, 409, 'a destroyed instance never reaches running');
    assert.equal((await owner('GET', `/v1/instances/${id}`)).body.state, 'destroyed');
    const live = await owner('GET', '/v1/instances?limit=100');
    assert.ok(
      !live.body.items.some((i: { id: string }) => i.id === id),
      'tombstones are not listed by default',
    );
    const tombstones = await owner('GET', '/v1/instances?state=destroyed');
    assert.ok(tombstones.body.items.some((i: { id: string }) => i.id === id));

    const accepted = await owner('DELETE', `/v1/instances/${second}`);
    assert.equal(accepted.status, 202);
    assert.ok(['running', 'destroying', 'destroyed'].includes(accepted.body.state));
    const gone = await owner('GET', `/v1/instances/${second}/wait?state=destroyed&timeout=60s`);
    assert.equal(gone.status, 200);
    assert.equal((await stranger('DELETE', `/v1/instances/${second}`)).status, 404);
    assert.equal((await owner('DELETE', `/v1/instances/${unknownId}`)).status, 404);
  });

  it('mounts the billing and capacity routes under /v1/admin, for the operator only', async () => {
    const path = `/v1/admin/tenants/${tenant}/billing`;
    assert.equal((await owner('GET', path)).status, 403);
    assert.equal((await admin('GET', path)).status, 403, 'a tenant admin does not read its billing account');
    assert.equal((await operator('GET', path)).status, 404);
    const put = await operator('PUT', path, { status: 'active', grace_period: '24h' });
    assert.equal(put.status, 201, JSON.stringify(put.body));
    assert.equal((await operator('PUT', path, { status: 'active' })).status, 200);
    const got = await operator('GET', path);
    assert.equal(got.body.grace_period_seconds, 86_400);
    assert.equal((await operator('PUT', path, { status: 'bankrupt' })).status, 400);
    for (const method of ['GET', 'POST']) {
      assert.equal((await admin(method, '/v1/admin/billing/sweep')).status, 403, method);
      const sweep = await operator(method, '/v1/admin/billing/sweep');
      assert.equal(sweep.status, 503, `${method}: no worker has created this schedule`);
      assert.equal(sweep.body.code, 'temporal_unavailable');
    }
    assert.equal((await admin('GET', '/v1/admin/capacity')).status, 403);
    const capacity = await operator('GET', '/v1/admin/capacity');
    assert.equal(capacity.status, 200, JSON.stringify(capacity.body));
    assert.equal(capacity.body.capacity.docker.host, 'unix:///var/run/docker.sock');
  });

  it('answers wrong methods with 405 and Allow, unknown routes with 404, all as problem+json', async () => {
    const cases: [string, string, string][] = [
      ['PUT', '/v1/instances', 'GET, POST'],
      ['PUT', `/v1/instances/${id}`, 'GET, PATCH, DELETE'],
      ['GET', `/v1/instances/${id}/start`, 'POST'],
      ['POST', `/v1/instances/${id}/events`, 'GET'],
      ['DELETE', `/v1/instances/${id}/logs/stream`, 'GET'],
      ['GET', `/v1/instances/${id}/exec`, 'POST'],
    ];
    for (const [method, path, allow] of cases) {
      const res = await owner(method, path);
      assert.equal(res.status, 405, `${method} ${path}`);
      assert.equal(res.headers.get('allow'), allow);
      assert.equal(res.body.code, 'method_not_allowed');
    }
    const unknown = await owner('GET', `/v1/instances/${id}/shell`);
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.code, 'not_found');
    assert.equal((await anonymous('GET', '/nothing')).status, 404);
  });

  it('mounts the datacenter admin routes, for admins only', async () => {
    assert.equal((await owner('GET', '/v1/datacenters')).status, 403);
    const made = await admin('POST', '/v1/datacenters', { name: 'Routes DC', region: 'r1' });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    assert.equal((await admin('GET', '/v1/datacenters')).body.items.length, 1);
    assert.equal((await admin('GET', `/v1/datacenters/${made.body.id}`)).status, 200);
    const patched = await admin('PATCH', `/v1/datacenters/${made.body.id}`, { status: 'maintenance' });
    assert.equal(patched.body.status, 'maintenance');
  });

  it('mounts the registry credential routes, for admins only, never answering a password', async () => {
    assert.equal((await owner('GET', '/v1/registry-credentials')).status, 403);
    const put = await admin('PUT', '/v1/registry-credentials/ghcr.io', {
      username: 'bot',
      password: 'pw-route',
    });
    assert.equal(put.status, 201, JSON.stringify(put.body));
    assert.equal(
      (await admin('PUT', '/v1/registry-credentials/ghcr.io', { username: 'bot', password: 'x' })).status,
      200,
    );
    const list = await admin('GET', '/v1/registry-credentials');
    assert.deepEqual(
      list.body.items.map((c: { registry: string }) => c.registry),
      ['ghcr.io'],
    );
    assert.ok(!JSON.stringify(list.body).includes('pw-route'));
    assert.equal((await admin('PUT', '/v1/registry-credentials/ghcr.io', { username: 'bot' })).status, 400);
    assert.equal((await admin('DELETE', '/v1/registry-credentials/ghcr.io')).status, 204);
    assert.equal((await admin('DELETE', '/v1/registry-credentials/ghcr.io')).status, 404);
  });

  it('serves the event stream to the tenant and the webhook routes to admins only, never a secret after creation', async () => {
    const stream = await owner('GET', `/v1/events?instance=${id}`);
    assert.equal(stream.status, 200, stream.text);
    const events = stream.text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    assert.ok(events.length > 0 && events.every((e: { instance_id: string }) => e.instance_id === id));
    assert.equal((await owner('GET', '/v1/events?after=evt_nope')).status, 400);
    assert.equal((await owner('GET', '/v1/events?all_tenants=true')).status, 403);

    assert.equal((await owner('GET', '/v1/webhooks')).status, 403);
    const made = await admin('POST', '/v1/webhooks', {
      url: 'http://127.0.0.1:9/hooks',
      event_types: ['instance.routes_none'],
    });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const hook = `/v1/webhooks/${made.body.id}`;
    assert.equal((await admin('POST', '/v1/webhooks', { url: 'gopher://x' })).status, 400);
    const list = await admin('GET', '/v1/webhooks');
    assert.deepEqual(
      list.body.items.map((w: { id: string }) => w.id),
      [made.body.id],
    );
    assert.equal((await admin('GET', hook)).status, 200);
    assert.equal((await admin('PATCH', hook, { enabled: false })).body.enabled, false);
    const rotated = await admin('POST', `${hook}/rotate-secret`);
    assert.equal(rotated.status, 200);
    assert.ok(!JSON.stringify((await admin('GET', hook)).body).includes(rotated.body.secret));
    assert.deepEqual((await admin('GET', `${hook}/deliveries`)).body.items, []);
    assert.equal((await admin('DELETE', hook)).status, 204);
    assert.equal((await admin('GET', hook)).status, 404);
    assert.equal((await admin('POST', `${hook}/rotate-secret`)).status, 404);
  });

  it('covered every documented route', (t) => {
    const operations = new Set([...checker.seen].map((s) => s.split(' ').slice(0, 2).join(' ')));
    const documented = Object.entries(checker.doc.paths as Record<string, object>).flatMap(([path, item]) =>
      Object.keys(item).map((m) => `${m.toUpperCase()} ${path}`),
    );
    const missing = documented.filter((op) => !operations.has(op));
    assert.deepEqual(missing, []);
    t.diagnostic(`${checker.seen.size} (operation, status) pairs checked against the document`);
  });
});
