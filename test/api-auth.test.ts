import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { pino } from 'pino';
import { type RunningApi, startApi } from '../api/server.ts';
import { buildProviders } from '../providers/build-providers.ts';
import { FakeLogProvider } from './support/api-fake-provider.ts';
import { type ApiCall, checkedClient, OpenApiChecker } from './support/api-openapi.ts';
import { deleteTenantRows, seedRecord, seedRows } from './support/api-seed.ts';
import { type Stack, startStack, uniqueTenant } from './support/stack.ts';

const RATE_LIMIT = 40;
const BURST_LIMIT = 15;
const ISSUER = 'https://idp.ctrlplane.test/';
const AUDIENCE = 'ctrlplane-api';

// No worker and no container: the subjects are authentication, roles, rate limits, the mapping of Temporal's
// update limit, metrics and shutdown. Instances are read-model rows seeded directly, or created through the
// API with no worker polling their task queue; log streams come from a test-only provider registered here.
describe('auth (HS256 and JWKS), roles, rate limits, metrics and graceful shutdown', () => {
  let stack: Stack;
  let checker: OpenApiChecker;
  let jwks: Server;
  let rsa: Awaited<ReturnType<typeof generateKeyPair>>;
  let otherRsa: Awaited<ReturnType<typeof generateKeyPair>>;
  let es: Awaited<ReturnType<typeof generateKeyPair>>;

  before(async () => {
    rsa = await generateKeyPair('RS256');
    otherRsa = await generateKeyPair('RS256');
    es = await generateKeyPair('ES256');
    const keys = {
      keys: [
        { ...(await exportJWK(rsa.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' },
        { ...(await exportJWK(es.publicKey)), kid: 'es-1', alg: 'ES256', use: 'sig' },
      ],
    };
    jwks = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(keys));
    });
    await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', () => r()));
    const jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`;
    stack = await startStack({
      worker: false,
      env: {
        CTRLPLANE_JWKS_URL: jwksUrl,
        CTRLPLANE_JWT_ISSUER: ISSUER,
        CTRLPLANE_JWT_AUDIENCE: AUDIENCE,
        CTRLPLANE_RATE_LIMIT_PER_MINUTE: String(RATE_LIMIT),
        CTRLPLANE_RATE_LIMIT_BURST_PER_SECOND: String(BURST_LIMIT),
        CTRLPLANE_COMMAND_ACCEPT_TIMEOUT_MS: '2000',
      },
    });
    await deleteTenantRows(stack.orm, 'ten_auth');
    checker = await OpenApiChecker.load(stack.api.url);
  });

  after(async () => {
    await deleteTenantRows(stack.orm, 'ten_auth');
    await stack?.close();
    await new Promise((r) => jwks?.close(r));
  });

  function asymmetricToken(
    key: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'],
    alg: string,
    kid: string,
    claims: Record<string, unknown>,
    expires: string | number | null = '5m',
  ) {
    const jwt = new SignJWT({ iss: ISSUER, aud: AUDIENCE, ...claims })
      .setProtectedHeader({ alg, kid })
      .setSubject('jwks-user')
      .setIssuedAt();
    return (expires === null ? jwt : jwt.setExpirationTime(expires)).sign(key);
  }

  /** An HS256 token the stack's secret signs, with the issuer and audience and these claims (no exp unless given). */
  function hsToken(claims: Record<string, unknown>) {
    return new SignJWT({ iss: ISSUER, aud: AUDIENCE, ...claims })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('hs-user')
      .sign(new TextEncoder().encode(stack.jwtSecret));
  }

  function call(token?: string): ApiCall {
    return checkedClient(stack.api.url, checker, token);
  }

  it('accepts RS256 and ES256 tokens from the JWKS, alongside HS256 ones, for the tenant they name', async () => {
    const tenant = uniqueTenant('auth');
    await seedRows(stack.orm, [seedRecord({ tenant_id: tenant, name: 'jwks-visible' })]);
    const tokens = [
      await asymmetricToken(rsa.privateKey, 'RS256', 'rsa-1', { tenant_id: tenant }),
      await asymmetricToken(es.privateKey, 'ES256', 'es-1', { tenant_id: tenant, roles: ['viewer'] }),
      await stack.token(tenant),
    ];
    for (const token of tokens) {
      const res = await call(token)('GET', '/v1/instances');
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.deepEqual(
        res.body.items.map((i: { name: string }) => i.name),
        ['jwks-visible'],
      );
    }
  });

  it('refuses forged, expired, unsigned, algorithm-confused and claim-less tokens with 401', async () => {
    const tenant = uniqueTenant('auth');
    const header = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const unsigned = `${header({ alg: 'none', typ: 'JWT' })}.${header({ sub: 'x', tenant_id: tenant })}.`;
    const publicPem = Buffer.from(JSON.stringify(await exportJWK(rsa.publicKey)));
    const confused = await new SignJWT({ tenant_id: tenant })
      .setProtectedHeader({ alg: 'HS256', kid: 'rsa-1' })
      .setSubject('x')
      .setExpirationTime('5m')
      .sign(publicPem);
    const bad = [
      await asymmetricToken(otherRsa.privateKey, 'RS256', 'rsa-1', { tenant_id: tenant }),
      await asymmetricToken(rsa.privateKey, 'RS256', 'unknown-kid', { tenant_id: tenant }),
      await asymmetricToken(
        rsa.privateKey,
        'RS256',
        'rsa-1',
        { tenant_id: tenant },
        Math.floor(Date.now() / 1000) - 60,
      ),
      await asymmetricToken(rsa.privateKey, 'RS256', 'rsa-1', {}),
      await asymmetricToken(rsa.privateKey, 'RS256', 'rsa-1', { tenant_id: ['a', 'b'] }),
      unsigned,
      confused,
      'not.a.token',
      '',
    ];
    for (const token of bad) {
      const res = await call()('GET', '/v1/instances', undefined, {
        headers: { authorization: `Bearer ${token}` },
      });
      assert.equal(res.status, 401, `${token.slice(0, 40)} → ${res.status}`);
      assert.equal(res.body.code, 'unauthorized');
      assert.equal(res.headers.get('www-authenticate'), 'Bearer');
    }
    for (const authorization of [
      'Basic dXNlcjpwYXNz',
      'Bearer',
      `Bearer ${await stack.token(tenant)} extra`,
    ]) {
      const res = await call()('GET', '/v1/instances', undefined, { headers: { authorization } });
      assert.equal(res.status, 401, authorization);
    }
    // A token is never taken from the query string, not even by the SSE log stream (it takes a ticket).
    const viaQuery = await call()('GET', `/v1/instances?token=${await stack.token(tenant)}`);
    assert.equal(viaQuery.status, 401);
  });

  it('refuses a token without exp, and a JWKS token without the configured iss and aud, saying why', async () => {
    const tenant = uniqueTenant('auth');
    const refused = [
      [await hsToken({ tenant_id: tenant }), 'the token has no exp claim: tokens must expire'],
      [
        await asymmetricToken(rsa.privateKey, 'RS256', 'rsa-1', { tenant_id: tenant }, null),
        'the token has no exp claim: tokens must expire',
      ],
      [
        await asymmetricToken(rsa.privateKey, 'RS256', 'rsa-1', { tenant_id: tenant, iss: undefined }),
        'the token has no iss claim',
      ],
      [
        await asymmetricToken(rsa.privateKey, 'RS256', 'rsa-1', { tenant_id: tenant, aud: undefined }),
        'the token has no aud claim',
      ],
      [
        await asymmetricToken(es.privateKey, 'ES256', 'es-1', {
          tenant_id: tenant,
          iss: 'https://other.test/',
        }),
        "the token's iss claim is not the one this API accepts",
      ],
      [
        await asymmetricToken(es.privateKey, 'ES256', 'es-1', { tenant_id: tenant, aud: 'another-service' }),
        "the token's aud claim is not the one this API accepts",
      ],
    ] as const;
    for (const [token, detail] of refused) {
      const res = await call(token)('GET', '/v1/instances');
      assert.equal(res.status, 401, `${detail}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.code, 'unauthorized');
      assert.equal(res.body.detail, detail);
    }
    // The same token with exp is accepted: exp was the only thing missing.
    const withExp = await hsToken({ tenant_id: tenant, exp: Math.floor(Date.now() / 1000) + 60 });
    assert.equal((await call(withExp)('GET', '/v1/instances')).status, 200);
  });

  it('lets only the operator role suspend and unsuspend, any tenant’s instance: 403 for a tenant, its admin too', async () => {
    const tenant = uniqueTenant('auth');
    const row = seedRecord({ tenant_id: tenant, name: 'to-suspend', state: 'stopped' });
    await seedRows(stack.orm, [row]);
    const member = call(await stack.token(tenant, ['member']));
    const tenantAdmin = call(await stack.token(tenant, ['admin']));
    const outsider = call(await stack.token(uniqueTenant('auth'), ['admin']));
    for (const api of [member, tenantAdmin, outsider]) {
      for (const [path, body] of [
        [`/v1/instances/${row.id}/suspend`, { reason: 'billing' }],
        [`/v1/instances/${row.id}/unsuspend`, undefined],
      ] as const) {
        const res = await api('POST', path, body);
        assert.equal(res.status, 403, `${path}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.code, 'forbidden');
      }
    }
    // The operator, whose token names another tenant, gets through the role check and finds the instance by
    // id; this row has no workflow behind it, so the workflow service answers that it takes no commands.
    const operator = call(await stack.token(uniqueTenant('auth'), ['operator']));
    const res = await operator('POST', `/v1/instances/${row.id}/suspend`, { reason: 'billing' });
    assert.equal(res.status, 409, JSON.stringify(res.body));
    const missingReason = await operator('POST', `/v1/instances/${row.id}/suspend`, {});
    assert.equal(missingReason.status, 400);
    assert.equal(missingReason.body.errors[0].field, 'reason');
    const unknown = await operator('POST', '/v1/instances/inst_01h455vb4pex5vsknk084sn02q/suspend', {
      reason: 'x',
    });
    assert.equal(unknown.status, 404, 'an instance no tenant has is not found');
  });

  it('limits each tenant to its budget per minute with 429, Retry-After and RateLimit headers', async () => {
    const busy = call(await stack.token(uniqueTenant('auth')));
    const quiet = call(await stack.token(uniqueTenant('auth')));
    // Ten a second, under the per-second limit: only the minute's budget runs out.
    for (let i = 0; i < RATE_LIMIT; i++) {
      assert.equal((await busy('GET', '/v1/instances')).status, 200);
      await new Promise((r) => setTimeout(r, 100));
    }
    const limited = await busy('GET', '/v1/instances');
    assert.equal(limited.status, 429);
    assert.equal(limited.body.code, 'rate_limited');
    const retryAfter = Number(limited.headers.get('retry-after'));
    assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);
    assert.match(limited.headers.get('ratelimit') ?? '', /remaining=0/);
    assert.equal((await quiet('GET', '/v1/instances')).status, 200, 'another tenant is not limited');
  });

  it('limits each tenant to its burst per second (429, Retry-After 1) without spending its minute or slowing others', async () => {
    const bursting = call(await stack.token(uniqueTenant('auth')));
    const quiet = call(await stack.token(uniqueTenant('auth')));
    // Sent at once: the API receives them within a second or two, so no more than two seconds' bursts pass.
    const answers = await Promise.all(
      Array.from({ length: 3 * BURST_LIMIT }, () => bursting('GET', '/v1/instances')),
    );
    const passed = answers.filter((a) => a.status === 200).length;
    const refused = answers.filter((a) => a.status === 429);
    assert.ok(passed >= 1 && passed <= 2 * BURST_LIMIT, `${passed} of ${answers.length} passed`);
    assert.equal(refused.length, answers.length - passed, 'every other answer is a 429');
    for (const r of refused) {
      assert.equal(r.body.code, 'rate_limited');
      assert.match(r.body.detail, new RegExp(`more than ${BURST_LIMIT} requests in a second`));
      assert.equal(r.headers.get('retry-after'), '1');
    }
    assert.equal((await quiet('GET', '/v1/instances')).status, 200, 'another tenant is not limited');
    await new Promise((r) => setTimeout(r, 1_100));
    // The refused requests did not count against the minute: the tenant is admitted again at once.
    assert.equal((await bursting('GET', '/v1/instances')).status, 200);
  });

  it('maps Temporal’s limit of 10 in-flight updates on one workflow to 429 with Retry-After', async () => {
    const tenant = uniqueTenant('auth');
    const api = call(await stack.token(tenant));
    // No worker polls this stack's task queue: accepted updates stay in flight until the accept deadline.
    const created = await api('POST', '/v1/instances', {
      name: 'busy',
      services: [{ name: 'web', image: 'ctrlplane-test/busybox:1' }],
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const answers = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        api('POST', `/v1/instances/${created.body.id}/start`, undefined, {
          headers: { 'idempotency-key': `busy-${i}` },
        }),
      ),
    );
    const statuses = answers.map((a) => a.status).sort();
    const limited = answers.filter((a) => a.status === 429);
    assert.ok(limited.length >= 1, `statuses ${statuses}`);
    for (const res of limited) {
      assert.equal(res.body.code, 'rate_limited');
      assert.equal(res.headers.get('retry-after'), '1');
    }
    for (const res of answers.filter((a) => a.status !== 429)) {
      assert.equal(res.status, 503, 'the others time out waiting for a worker');
      assert.equal(res.body.code, 'temporal_unavailable');
    }
    // Neither a 429 nor a 503 is stored as the answer under its key, and no key stays locked: a retry does the
    // work. A 503 in doubt keeps its key bound to the request (the retry resumes it); a 429 frees it.
    const [kept] = await stack.orm.em
      .fork()
      .getConnection()
      .execute<{ stored: string; locked: string; bound: string }[]>(
        `select count(*) filter (where status is not null) as stored,
                count(*) filter (where locked_until > now()) as locked,
                count(*) as bound
           from idempotency_keys where tenant_id = ?`,
        [tenant],
      );
    assert.equal(Number(kept?.stored), 0);
    assert.equal(Number(kept?.locked), 0);
    assert.equal(Number(kept?.bound), answers.filter((a) => a.status === 503).length);
  });

  it('exports Prometheus metrics: latency by route template and status, commands by type and outcome', async () => {
    const res = await fetch(`${stack.api.url}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
    const text = await res.text();
    assert.match(
      text,
      /ctrlplane_http_request_duration_seconds_bucket\{le="[^"]+",method="GET",route="\/v1\/instances",status="200"\}/,
    );
    assert.match(text, /route="\/v1\/instances\/:id\/suspend",status="403"/);
    assert.match(text, /ctrlplane_commands_total\{command="start",outcome="rate_limited"\} [1-9]/);
    assert.match(text, /ctrlplane_commands_total\{command="start",outcome="temporal_unavailable"\} [1-9]/);
    assert.doesNotMatch(text, /route="\/v1\/instances\/inst_/, 'raw paths never become labels');
  });

  describe('log streams and shutdown, on a test-only provider', () => {
    let api: RunningApi;
    let fake: FakeLogProvider;
    let row: ReturnType<typeof seedRecord>;
    let token: string;
    const tenant = uniqueTenant('auth');

    /** What this API logged, one JSON line each: the request log, where a credential must never appear. */
    const logged: string[] = [];

    before(async () => {
      fake = new FakeLogProvider();
      const sink = new Writable({
        write(chunk, _encoding, done) {
          logged.push(...String(chunk).split('\n').filter(Boolean));
          done();
        },
      });
      const logger = pino({ name: 'test-shutdown', level: 'info' }, sink);
      const providers = buildProviders(stack.config, logger).register('fake', fake);
      api = await startApi({ ...stack.config, CTRLPLANE_SSE_PING_INTERVAL_MS: 100 }, logger, providers);
      row = seedRecord({ tenant_id: tenant, name: 'chatty', provider_name: 'fake', state: 'stopped' });
      await seedRows(stack.orm, [row]);
      token = await stack.token(tenant);
    });

    after(async () => {
      await api?.close();
    });

    it('serves NDJSON lines, forwards service, tail and since, and refuses an unknown service with 400', async () => {
      const get = checkedClient(api.url, checker, token);
      const res = await get('GET', `/v1/instances/${row.id}/logs?tail=4&service=web&since=10m`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^application\/x-ndjson/);
      const lines = res.text
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      assert.equal(lines.length, 4);
      assert.deepEqual(lines[1], { ts: lines[1].ts, stream: 'stderr', line: 'line 1' });
      const forwarded = fake.logCalls.at(-1);
      assert.equal(forwarded?.service_name, 'web');
      assert.equal(forwarded?.tail, 4);
      assert.equal(forwarded?.follow, false);
      assert.ok(Math.abs(Date.parse(forwarded?.since ?? '') - (Date.now() - 600_000)) < 10_000);
      const unknown = await get('GET', `/v1/instances/${row.id}/logs?service=nope`);
      assert.equal(unknown.status, 400);
      assert.equal(unknown.body.errors[0].field, 'service');
      for (const query of ['tail=-1', 'follow=maybe', 'since=yesterday', 'tail=1&bogus=1']) {
        assert.equal((await get('GET', `/v1/instances/${row.id}/logs?${query}`)).status, 400, query);
      }
    });

    async function ticketFor(instanceId: string): Promise<{ ticket: string; stream_url: string }> {
      const issued = await checkedClient(
        api.url,
        checker,
        token,
      )('POST', `/v1/instances/${instanceId}/logs/stream-ticket`);
      assert.equal(issued.status, 201, JSON.stringify(issued.body));
      assert.equal(issued.headers.get('cache-control'), 'no-store');
      return issued.body;
    }

    it('follows over SSE with a one-time ticket, pings, and lets go of the provider when the client leaves', async () => {
      const before = fake.closedStreams;
      const controller = new AbortController();
      const { ticket, stream_url } = await ticketFor(row.id);
      assert.equal(stream_url, `/v1/instances/${row.id}/logs/stream?ticket=${ticket}`);
      const res = await fetch(`${api.url}${stream_url}`, { signal: controller.signal });
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
      checker.check('GET', `/v1/instances/${row.id}/logs/stream`, {
        status: res.status,
        headers: res.headers,
        body: '',
        text: '',
      });
      const reader = res.body!.getReader();
      let text = '';
      while (!(text.includes(': ping') && (text.match(/event: log/g) ?? []).length >= 3)) {
        const { value, done } = await reader.read();
        if (done) break;
        text += Buffer.from(value).toString('utf8');
      }
      assert.match(text, /^retry: 3000\n\n/);
      assert.match(text, /event: log\ndata: \{"ts":"[^"]+","stream":"stdout","line":"line 0"\}\n\n/);
      assert.equal(fake.logCalls.at(-1)?.follow, true);
      assert.equal(fake.logCalls.at(-1)?.tail, 100, 'SSE keeps the last 100 lines by default');
      controller.abort();
      const deadline = Date.now() + 5000;
      while (fake.closedStreams === before && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
      assert.equal(fake.closedStreams, before + 1, 'the provider stream was closed after the client left');
      const again = await fetch(`${api.url}${stream_url}`);
      assert.equal(again.status, 401, 'a ticket opens one stream only');
      assert.match(((await again.json()) as { detail: string }).detail, /stream ticket is not valid/);
    });

    it('refuses a token in the stream’s query, another instance’s ticket and an expired one; logs none of them', async () => {
      const other = seedRecord({ tenant_id: tenant, name: 'quiet', provider_name: 'fake', state: 'stopped' });
      await seedRows(stack.orm, [other]);
      const stream = (id: string, query: string) =>
        fetch(`${api.url}/v1/instances/${id}/logs/stream?${query}`);

      // The token in the query, under its name spelt as the query parser reads it: never accepted.
      for (const name of ['token', '%74oken', 'TOKEN', 'token[]']) {
        const res = await stream(row.id, `${name}=${token}`);
        assert.equal(res.status, 401, name);
        await res.body?.cancel();
      }
      const elsewhere = await ticketFor(other.id);
      const misused = await stream(row.id, `ticket=${elsewhere.ticket}`);
      assert.equal(misused.status, 401, 'a ticket is for one instance');
      await misused.body?.cancel();
      const gone = await stream(other.id, `ticket=${elsewhere.ticket}`);
      assert.equal(gone.status, 401, 'and a misused ticket is spent');
      await gone.body?.cancel();

      const late = await ticketFor(row.id);
      await stack.orm.em
        .fork()
        .getConnection()
        .execute(`update stream_tickets set expires_at = now() - interval '1 second' where tenant_id = ?`, [
          tenant,
        ]);
      const expired = await stream(row.id, `%74icket=${late.ticket}`);
      assert.equal(expired.status, 401, 'an expired ticket');
      await expired.body?.cancel();

      // Every one of those requests reached the request log, and neither the token nor a ticket did.
      await new Promise((r) => setTimeout(r, 100));
      const requestLines = logged.filter((l) => l.includes('/logs/stream'));
      assert.ok(requestLines.length >= 7, `request lines logged: ${requestLines.length}`);
      for (const secret of [token, elsewhere.ticket, late.ticket]) {
        assert.ok(!logged.some((l) => l.includes(secret)), `${secret.slice(0, 12)}… is not in the log`);
      }
      assert.ok(requestLines.some((l) => l.includes('%74oken=[redacted]')));
      assert.ok(requestLines.some((l) => l.includes('%74icket=[redacted]')));
    });

    it('on shutdown finishes in-flight requests: waits answer, follow streams end, then it stops', async () => {
      const base = api.url;
      const headers = { authorization: `Bearer ${token}` };
      const follow = await fetch(`${base}/v1/instances/${row.id}/logs?follow=true`, { headers });
      assert.equal(follow.status, 200);
      const streamed = follow.text();
      const waiting = fetch(`${base}/v1/instances/${row.id}/wait?state=running&timeout=60s`, { headers });
      await new Promise((r) => setTimeout(r, 300));
      const started = Date.now();
      await api.close();
      const tookMs = Date.now() - started;
      assert.ok(tookMs < 5000, `close took ${tookMs} ms`);
      const waited = await waiting;
      assert.equal(waited.status, 408);
      assert.equal(waited.headers.get('retry-after'), '1');
      const lines = (await streamed).trim().split('\n');
      assert.ok(lines.length >= 2, 'the follow stream delivered lines and then ended cleanly');
      for (const line of lines) assert.match(JSON.parse(line).line, /^line \d+$/);
      await assert.rejects(fetch(`${base}/healthz`), 'the server no longer accepts connections');
    });
  });
});
