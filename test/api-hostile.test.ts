import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import { createInstanceSchema } from '../api/schemas/instance-requests.ts';
import { type ApiCall, type CheckedResponse, checkedClient, OpenApiChecker } from './support/api-openapi.ts';
import { deleteTenantRows, seedRecord, seedRows } from './support/api-seed.ts';
import { type Stack, startStack, uniqueTenant } from './support/stack.ts';

interface Hostile {
  method: string;
  path: string;
  body?: unknown;
  raw?: string | Buffer;
  headers?: Record<string, string>;
  /**
   * The caller: the attacker tenant (default), an admin of it, the platform's operator (only with bodies it
   * must refuse), or no/forged credentials.
   */
  as?: 'attacker' | 'admin' | 'operator' | 'anonymous';
  /** Node's HTTP server answers some of these itself (431), outside the API and its document. */
  unchecked?: boolean;
}

// The subject is the API's input handling, not a provider: no worker runs, and both tenants' instances are
// read-model rows seeded directly (no workflow stands behind them, so no request here can change one).
describe('500 malformed or hostile requests: no 5xx, nothing written, nothing of another tenant shown', () => {
  let stack: Stack;
  let checker: OpenApiChecker;
  const victim = uniqueTenant('hostvictim');
  const attacker = uniqueTenant('hostattacker');
  const victimRows = Array.from({ length: 5 }, (_, i) =>
    seedRecord({
      tenant_id: victim,
      name: `victim-secret-${i}`,
      labels: { owner: 'victim', env: 'prod' },
      datacenter_id: 'dc_victim',
    }),
  );
  const attackerRows = Array.from({ length: 3 }, (_, i) =>
    seedRecord({ tenant_id: attacker, name: `attacker-own-${i}`, labels: { env: 'prod' }, state: 'stopped' }),
  );
  const secrets = [victim, ...victimRows.flatMap((r) => [r.id, r.name, r.slug]), 'dc_victim'];

  before(async () => {
    stack = await startStack({ worker: false, env: { CTRLPLANE_RATE_LIMIT_PER_MINUTE: '0' } });
    await deleteTenantRows(stack.orm, 'ten_host');
    await seedRows(stack.orm, [...victimRows, ...attackerRows]);
    checker = await OpenApiChecker.load(stack.api.url);
  });

  after(async () => {
    await deleteTenantRows(stack.orm, 'ten_host');
    await stack?.close();
  });

  async function tableCounts(): Promise<Record<string, number>> {
    const conn = stack.orm.em.fork().getConnection();
    const counts: Record<string, number> = {};
    const newest: Record<string, string> = {
      instances: 'updated_at',
      instance_events: 'occurred_at',
      idempotency_keys: 'created_at',
      billing_accounts: 'updated_at',
      stream_tickets: 'expires_at',
    };
    for (const [table, column] of Object.entries(newest)) {
      const [row] = await conn.execute<{ count: string; newest: Date | null }[]>(
        `select count(*), max(${column}) as newest from ${table}`,
      );
      counts[table] = Number(row?.count);
      counts[`${table}.newest`] = row?.newest ? new Date(row.newest).getTime() : 0;
    }
    return counts;
  }

  function hostileRequests(): Hostile[] {
    const own = attackerRows[0]!.id;
    const theirs = victimRows[0]!.id;
    const service = { name: 'web', image: 'ctrlplane-test/busybox:1' };
    const valid = { name: 'fine', services: [service] };
    const deepText = (depth: number) => `${'['.repeat(depth)}1${']'.repeat(depth)}`;
    const list: Hostile[] = [];
    const create = (body: unknown, extra: Partial<Hostile> = {}) =>
      list.push({ method: 'POST', path: '/v1/instances', body, ...extra });

    // Wrong types, field by field, on create.
    const wrongValues: unknown[] = [
      null,
      0,
      -1,
      1.5,
      true,
      'x',
      '',
      [],
      {},
      [null],
      { $ne: null },
      'a'.repeat(1000),
    ];
    const createFields: [string, (v: unknown) => unknown][] = [
      ['name', (v) => ({ ...valid, name: v })],
      ['services', (v) => ({ ...valid, services: v })],
      ['services[0]', (v) => ({ ...valid, services: [v] })],
      ['services[0].name', (v) => ({ ...valid, services: [{ ...service, name: v }] })],
      ['services[0].image', (v) => ({ ...valid, services: [{ ...service, image: v }] })],
      ['services[0].resources', (v) => ({ ...valid, services: [{ ...service, resources: v }] })],
      ['services[0].ports', (v) => ({ ...valid, services: [{ ...service, ports: v }] })],
      ['services[0].env', (v) => ({ ...valid, services: [{ ...service, env: v }] })],
      ['labels', (v) => ({ ...valid, labels: v })],
      ['kind', (v) => ({ ...valid, kind: v })],
      ['provider_name', (v) => ({ ...valid, provider_name: v })],
      ['source', (v) => ({ name: 'x', source: v })],
      ['variables', (v) => ({ ...valid, variables: [v] })],
    ];
    for (const [, make] of createFields) {
      for (const value of wrongValues)
        list.push({ method: 'POST', path: '/v1/instances', body: make(value) });
    }
    // Hostile strings where strings are allowed.
    const nasty = [
      "'; drop table instances; --",
      "x' OR '1'='1",
      '../../etc/passwd',
      '<script>alert(1)</script>',
      '\u0000',
      'a\u0000b',
      '\ud800',
      'name\nwith\nnewlines',
      '%00',
      '\u0024{jndi:ldap://x}',
      '{{7*7}}',
    ];
    for (const s of nasty) {
      create({ ...valid, name: s });
      create({ ...valid, labels: { [s]: 'v' } });
      create({ ...valid, services: [{ ...service, env: { GOOD: s, [s]: 'x' } }] });
      create({ ...valid, services: [{ ...service, name: s }] });
      create({ ...valid, provider_name: s });
    }
    // NUL inside otherwise valid values: PostgreSQL text cannot hold it.
    create({ ...valid, labels: { a: 'x\u0000y' } });
    create({ ...valid, services: [{ ...service, env: { A: '\u0000' } }] });
    create({ ...valid, region: '\u0000' });
    // Unknown fields, at every level.
    create({ ...valid, tenant_id: victim });
    create({ ...valid, id: theirs });
    create({ ...valid, state: 'running' });
    create({ ...valid, services: [{ ...service, privileged: true }] });
    create({ ...valid, services: [{ ...service, resources: { cpu_millis: 1, nanos: 1 } }] });
    create(
      JSON.parse('{"name":"x","services":[{"name":"web","image":"i"}],"constructor":{"prototype":{"x":1}}}'),
    );
    // Out of range and inconsistent.
    create({ ...valid, services: [{ ...service, resources: { cpu_millis: -1 } }] });
    create({ ...valid, services: [{ ...service, resources: { replicas: 0 } }] });
    create({ ...valid, services: [{ ...service, resources: { memory_mb: 1e30 } }] });
    create({ ...valid, services: [{ ...service, ports: [{ container: 0 }] }] });
    create({ ...valid, services: [service, service] });
    create({ ...valid, services: [{ ...service, role: 'sidecar' }] });
    create({ ...valid, services: [{ ...service, depends_on: ['web'] }] });
    create({ ...valid, services: Array.from({ length: 21 }, (_, i) => ({ ...service, name: `s${i}` })) });
    create({ ...valid, labels: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v'])) });
    create({
      ...valid,
      services: [
        { ...service, env: Object.fromEntries(Array.from({ length: 201 }, (_, i) => [`E${i}`, 'v'])) },
      ],
    });
    create({ ...valid, variable_values: { a: 1 } });
    create({ ...valid, source: { type: 'helm', services: [service] } });
    create({ name: 'x', services: [service], source: { type: 'services', services: [service] } });
    create({});

    // Huge and deep bodies.
    create({ ...valid, name: 'x'.repeat(300_000) });
    create({ ...valid, labels: { a: 'x'.repeat(2_000_000) } });
    create(undefined, { raw: `{"name":"${'x'.repeat(1_000_000)}"}` });
    for (const depth of [33, 100, 1000, 10_000, 100_000]) {
      create(undefined, { raw: deepText(depth) });
      create(undefined, {
        raw: `{"name":"x","services":[{"name":"web","image":"i"}],"variable_values":{"a":${deepText(depth)}}}`,
      });
      create(undefined, {
        raw: `{"name":"x","services":[],"labels":${'{"a":'.repeat(Math.min(depth, 50_000))}1${'}'.repeat(Math.min(depth, 50_000))}}`,
      });
    }
    create({ ...valid, services: Array.from({ length: 5000 }, () => service) });

    // Malformed JSON and wrong media types.
    for (const raw of [
      '{',
      '{"name":',
      '{"name":"x",}',
      "{'name':'x'}",
      '{"name":NaN}',
      'null',
      'true',
      '"string"',
      '123',
      '[]',
      '[{"name":"x"}]',
      '\ufeff{"name":"x"}',
      '{"name":"x"}{"name":"y"}',
      '{"name":"\\ud800"}',
      '{"a":1e999999}',
      '',
      ' ',
    ]) {
      create(undefined, { raw, headers: { 'content-type': 'application/json' } });
    }
    for (const type of [
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/xml',
      'application/json; charset=utf-16',
      'application/octet-stream',
    ]) {
      create(undefined, { raw: JSON.stringify(valid), headers: { 'content-type': type } });
    }
    create(undefined, {
      raw: Buffer.from([0xff, 0xfe, 0x00, 0x7b]),
      headers: { 'content-type': 'application/json' },
    });

    // Ids: SQL, path tricks, other prefixes, another tenant's instance.
    const ids = [
      "inst_' OR 1=1 --",
      'inst_01h455vb4pex5vsknk084sn02q; drop table instances',
      '..',
      '..%2F..%2Fetc%2Fpasswd',
      '%2e%2e',
      'inst_%00',
      '%00',
      'inst_01H455VB4PEX5VSKNK084SN02Q',
      'dc_01h455vb4pex5vsknk084sn02q',
      'inst_01h455vb4pex5vsknk084sn02q',
      'inst_zzzzzzzzzzzzzzzzzzzzzzzzzz',
      'x'.repeat(5000),
      '%F0%9F%92%A9',
      '*',
      '%',
      theirs,
      theirs.toUpperCase(),
      `${theirs}%20`,
      `${theirs}/`,
      `${theirs};`,
    ];
    for (const id of ids) {
      list.push({ method: 'GET', path: `/v1/instances/${id}` });
      list.push({ method: 'PATCH', path: `/v1/instances/${id}`, body: { name: 'renamed' } });
      list.push({ method: 'DELETE', path: `/v1/instances/${id}` });
      for (const command of ['start', 'stop', 'restart'])
        list.push({ method: 'POST', path: `/v1/instances/${id}/${command}` });
      list.push({ method: 'POST', path: `/v1/instances/${id}/scale`, body: { replicas: 2 } });
      list.push({ method: 'POST', path: `/v1/instances/${id}/suspend`, body: { reason: 'x' }, as: 'admin' });
      list.push({ method: 'POST', path: `/v1/instances/${id}/unsuspend`, as: 'admin' });
      list.push({ method: 'POST', path: `/v1/instances/${id}/unsuspend`, body: {}, as: 'admin' });
      list.push({ method: 'POST', path: `/v1/instances/${id}/logs/stream-ticket` });
      for (const sub of ['events', 'logs', 'resources', 'wait?state=running&timeout=1ms', 'logs/stream']) {
        list.push({ method: 'GET', path: `/v1/instances/${id}/${sub}` });
      }
    }
    // Another tenant's instance with every kind of credential trick.
    list.push({ method: 'GET', path: `/v1/instances/${theirs}`, headers: { 'x-tenant-id': victim } });
    list.push({ method: 'GET', path: `/v1/instances?tenant_id=${victim}` });
    list.push({ method: 'GET', path: `/v1/instances/${theirs}/logs/stream?token=forged`, as: 'anonymous' });
    list.push({ method: 'GET', path: `/v1/instances/${theirs}/logs/stream?ticket=forged`, as: 'anonymous' });
    list.push({ method: 'GET', path: `/v1/instances/${theirs}/logs/stream?ticket=${'x'.repeat(5000)}` });
    list.push({ method: 'GET', path: `/v1/instances?tenant_id=${victim}`, as: 'admin' });
    // The operator's routes, as the attacker's admin: billing of the victim (past due, no grace: the next
    // sweep would suspend all its instances), the sweep, host capacity.
    for (const body of [{ status: 'past_due', grace_period: '0s' }, { status: 'active' }]) {
      list.push({ method: 'PUT', path: `/v1/admin/tenants/${victim}/billing`, body, as: 'admin' });
      list.push({ method: 'PUT', path: `/v1/admin/tenants/${attacker}/billing`, body, as: 'admin' });
    }
    list.push({ method: 'GET', path: `/v1/admin/tenants/${victim}/billing`, as: 'admin' });
    list.push({ method: 'POST', path: '/v1/admin/billing/sweep', as: 'admin' });
    list.push({ method: 'GET', path: '/v1/admin/capacity', as: 'admin' });
    list.push({ method: 'GET', path: `/v1/instances/${theirs}`, as: 'anonymous' });
    list.push({
      method: 'PATCH',
      path: `/v1/instances/${theirs}`,
      body: { labels: {} },
      headers: { 'if-match': '*' },
    });

    // Filters: SQL and JSON tricks, wrong types, repeated and nested parameters.
    const filters = [
      "state=running' OR '1'='1",
      'state[$ne]=destroyed',
      'state[]=running',
      "provider=docker' OR 1=1 --",
      "provider='; drop table instances; --",
      `datacenter=dc_victim' OR tenant_id='${victim}`,
      "slug=' OR ''='",
      'slug=%25',
      'slug=_',
      "label=owner') OR 1=1 --=x",
      'label={"owner":"victim"}=x',
      'label=owner=victim',
      'label=%7B%7D=%7B%7D',
      'label=a=b=c',
      'label==x',
      'label=' + 'k='.repeat(300),
      'label[0]=owner=victim&label[1]=x',
      Array.from({ length: 25 }, (_, i) => `label=k${i}=v`).join('&'),
      'limit=-1',
      'limit=1e3',
      'limit=0x10',
      'limit=1;select 1',
      'limit[]=1',
      'cursor=' + Buffer.from(JSON.stringify(["2020-01-01' OR 1=1", 'x'])).toString('base64url'),
      'cursor=' + Buffer.from(JSON.stringify(['2020-01-01T00:00:00Z', { $gt: '' }])).toString('base64url'),
      'cursor=' + Buffer.from('{"__proto__":1}').toString('base64url'),
      'cursor=' + 'A'.repeat(600),
      'cursor=%00',
      'slug=%00',
      'provider=a%00b',
      'a[b][c][d][e][f][g][h]=1',
      'state=running&state=stopped',
      'x'.repeat(8000) + '=1',
    ];
    for (const f of filters) list.push({ method: 'GET', path: `/v1/instances?${f}` });
    for (const f of [
      'cursor=abc',
      'cursor=' + Buffer.from('seq:-1').toString('base64url'),
      'limit=201',
      'limit=0',
      'x=1',
    ]) {
      list.push({ method: 'GET', path: `/v1/instances/${own}/events?${f}` });
    }
    for (const q of [
      'state=sleeping',
      'state=running&timeout=1h',
      'state=running&timeout=-1s',
      'timeout=1s',
      'state[]=running',
    ]) {
      list.push({ method: 'GET', path: `/v1/instances/${own}/wait?${q}` });
    }
    for (const q of [
      'tail=-5',
      'tail=1e9',
      'follow=yes',
      "since=' OR 1=1",
      'since=2020-13-45T99:99:99Z',
      'service=' + 'x'.repeat(100),
    ]) {
      list.push({ method: 'GET', path: `/v1/instances/${own}/logs?${q}` });
    }

    // Commands on the attacker's own instance with bad bodies, queries and headers.
    for (const body of [
      { cpu_millis: -1 },
      { cpu_millis: '100' },
      { cpu_millis: 1.5 },
      { memory_mb: 1e12 },
      { replicas: 0 },
      { replicas: 1001 },
      { replicas: null },
      {},
      { cpu_millis: 100, gpu: 1 },
      [],
      'scale',
    ]) {
      list.push({ method: 'POST', path: `/v1/instances/${own}/scale`, body });
    }
    for (const body of [
      {},
      { reason: '' },
      { reason: ' ' },
      { reason: 5 },
      { reason: 'x'.repeat(201) },
      { reason: 'a\u0007b' },
      { reason: 'x', extra: 1 },
    ]) {
      list.push({ method: 'POST', path: `/v1/instances/${own}/suspend`, body, as: 'operator' });
      list.push({ method: 'POST', path: `/v1/instances/${theirs}/suspend`, body, as: 'operator' });
    }
    list.push({ method: 'POST', path: `/v1/instances/${own}/suspend`, body: { reason: 'not an operator' } });
    list.push({
      method: 'POST',
      path: `/v1/instances/${own}/suspend`,
      body: { reason: 'mine' },
      as: 'admin',
    });
    list.push({ method: 'POST', path: `/v1/instances/${own}/unsuspend`, body: {}, as: 'admin' });
    list.push({
      method: 'POST',
      path: `/v1/instances/${own}/unsuspend`,
      body: { reason: 5 },
      as: 'operator',
    });
    list.push({ method: 'POST', path: `/v1/instances/${own}/unsuspend`, body: { why: 'x' }, as: 'operator' });
    for (const body of [
      {},
      { name: '' },
      { name: 5 },
      { labels: [] },
      { services: [] },
      { name: 'x', state: 'running' },
      { tenant_id: victim },
    ]) {
      list.push({ method: 'PATCH', path: `/v1/instances/${own}`, body });
    }
    for (const command of ['start', 'stop', 'restart', 'delete']) {
      const method = command === 'delete' ? 'DELETE' : 'POST';
      const path = command === 'delete' ? `/v1/instances/${own}` : `/v1/instances/${own}/${command}`;
      list.push({ method, path, body: { force: true } });
      list.push({ method, path: `${path}?wait=forever` });
      list.push({ method, path: `${path}?wait=-1s` });
      list.push({ method, path: `${path}?wait[]=true` });
      list.push({ method, path: `${path}?wait=1h` });
      list.push({ method, path: `${path}?hack=1` });
      list.push({ method, path, headers: { 'idempotency-key': 'has spaces in it' } });
      list.push({ method, path, headers: { 'idempotency-key': 'k'.repeat(256) } });
      list.push({ method, path, headers: { 'idempotency-key': 'cl\u00e9' } });
      list.push({ method, path, headers: { 'if-match': '"999"' } });
      list.push({ method, path, headers: { 'if-match': 'W/"1"' } });
      list.push({ method, path, body: 'x', headers: { 'content-type': 'application/json' }, raw: '{"oops"' });
    }

    // Unknown routes and wrong methods.
    for (const [method, path] of <[string, string][]>[
      ['PUT', '/v1/instances'],
      ['DELETE', '/v1/instances'],
      ['PUT', `/v1/instances/${own}`],
      ['POST', `/v1/instances/${own}`],
      ['GET', `/v1/instances/${own}/start`],
      ['DELETE', `/v1/instances/${own}/events`],
      ['POST', `/v1/instances/${own}/logs`],
      ['OPTIONS', `/v1/instances/${own}`],
      ['GET', '/v1/tenants'],
      ['GET', '/v2/instances'],
      ['GET', '/v1/instances/../../admin'],
      ['GET', '/v1//instances'],
      ['GET', '/.env'],
      ['POST', '/healthz'],
      ['DELETE', '/metrics'],
      ['GET', `/v1/instances/${own}/exec`],
    ]) {
      list.push({ method, path });
    }
    // A URL too long for Node's HTTP server: it answers 431 itself.
    list.push({ method: 'GET', path: `/v1/instances?slug=${'x'.repeat(20_000)}`, unchecked: true });
    // Creates must all be invalid here (a valid one would write an instance): the few generated bodies that
    // happen to be valid (a plain string as a name, {} as labels) are left out.
    return list.filter(
      (r) =>
        !(
          r.method === 'POST' &&
          r.path === '/v1/instances' &&
          r.raw === undefined &&
          !JSON.stringify(r.body).includes('\\u0000') &&
          createInstanceSchema.safeParse(r.body).success &&
          [undefined, 'docker'].includes((r.body as { provider_name?: string }).provider_name)
        ),
    );
  }

  it('answers every one of them with a documented 4xx problem, writes nothing and leaks nothing', async (t) => {
    const requests = hostileRequests();
    assert.ok(requests.length >= 500, `${requests.length} requests`);
    const forged = await new SignJWT({ tenant_id: victim })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('mallory')
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode('not-the-secret-of-this-deployment-at-all'));
    const callers: Record<NonNullable<Hostile['as']>, ApiCall> = {
      attacker: checkedClient(stack.api.url, checker, await stack.token(attacker)),
      admin: checkedClient(stack.api.url, checker, await stack.token(attacker, ['admin'])),
      operator: checkedClient(
        stack.api.url,
        checker,
        await stack.token(uniqueTenant('hostoperator'), ['operator']),
      ),
      anonymous: checkedClient(stack.api.url, checker, forged),
    };
    const before = await tableCounts();
    const statuses = new Map<number, number>();
    const failures: string[] = [];
    let next = 0;
    const worker = async () => {
      for (;;) {
        const i = next++;
        const req = requests[i];
        if (!req) return;
        const what = `#${i} ${req.method} ${req.path.slice(0, 120)} ${JSON.stringify(req.body ?? req.raw ?? '').slice(0, 120)}`;
        let res: CheckedResponse;
        try {
          res = await callers[req.as ?? 'attacker'](req.method, req.path, req.body, {
            ...(req.raw !== undefined ? { raw: req.raw } : {}),
            headers: {
              ...(req.raw !== undefined ? { 'content-type': 'application/json' } : {}),
              ...req.headers,
            },
            unchecked: req.unchecked ?? false,
          });
        } catch (err) {
          failures.push(`${what}: ${err instanceof Error ? err.message.slice(0, 400) : String(err)}`);
          continue;
        }
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (res.status >= 500) failures.push(`${what}: ${res.status} ${res.text.slice(0, 300)}`);
        // An id the request itself named may be echoed back (`instance ... not found`); nothing else may show.
        const asked = `${req.path} ${req.raw ?? ''} ${JSON.stringify(req.body ?? '')}`;
        const leaked = secrets.find((s) => res.text.includes(s) && !asked.includes(s));
        if (leaked) failures.push(`${what}: the answer shows ${leaked}`);
        if (res.status >= 400 && !req.unchecked) {
          if (!/^application\/problem\+json/.test(res.headers.get('content-type') ?? '')) {
            failures.push(`${what}: ${res.status} is not problem+json`);
          }
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    assert.deepEqual(failures, [], failures.join('\n'));
    assert.deepEqual(await tableCounts(), before, 'nothing was written');
    const summary = [...statuses.entries()].sort(([a], [b]) => a - b).map(([s, n]) => `${s}×${n}`);
    assert.ok(!summary.some((s) => s.startsWith('5')), summary.join(' '));
    t.diagnostic(`${requests.length} requests answered: ${summary.join(' ')}`);
    // The attacker's own list still shows only its own rows, unchanged.
    const own = await callers.attacker('GET', '/v1/instances?limit=100');
    assert.deepEqual(
      own.body.items.map((i: { name: string }) => i.name).sort(),
      attackerRows.map((r) => r.name).sort(),
    );
    for (const item of own.body.items) assert.equal(item.state, 'stopped');
  });
});
