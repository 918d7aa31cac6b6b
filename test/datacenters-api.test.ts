import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type ApiCall, checkedClient, OpenApiChecker } from './support/api-openapi.ts';
import { removeInstances, removeTenantLeftovers, TEST_IMAGE } from './support/docker.ts';
import { eventually } from './support/http.ts';
import { type Stack, startStack, uniqueTenant } from './support/stack.ts';
import { tenantRows, tenantWorkflowIds } from './support/tenant-footprint.ts';

const service = {
  name: 'web',
  image: TEST_IMAGE,
  command: ['/bin/sh', '-c', "trap 'exit 0' TERM; while true; do sleep 1; done"],
};

// Real Temporal, PostgreSQL, worker and Docker engine; every answer checked against the OpenAPI document.
describe('datacenters: admin routes, and where a create goes', () => {
  let stack: Stack;
  let checker: OpenApiChecker;
  let admin: ApiCall;
  let owner: ApiCall;
  let otherAdmin: ApiCall;
  const tenant = uniqueTenant('dcapi');
  const other = uniqueTenant('dcapiother');
  const created: string[] = [];

  before(async () => {
    await removeTenantLeftovers('ten_dcapi');
    stack = await startStack({ env: { CTRLPLANE_RATE_LIMIT_PER_MINUTE: '0' } });
    checker = await OpenApiChecker.load(stack.api.url);
    admin = checkedClient(stack.api.url, checker, await stack.token(tenant, ['admin']));
    owner = checkedClient(stack.api.url, checker, await stack.token(tenant));
    otherAdmin = checkedClient(stack.api.url, checker, await stack.token(other, ['admin']));
  });

  after(async () => {
    await stack?.close();
    await removeInstances(created);
  });

  async function datacenterRows(tenantId: string) {
    return stack.orm.em
      .fork()
      .getConnection()
      .execute<Record<string, unknown>[]>('select * from datacenters where tenant_id = ? order by id', [
        tenantId,
      ]);
  }

  it('creates, lists, gets and updates datacenters, for admins of the tenant only', async () => {
    const made = await admin('POST', '/v1/datacenters', { name: 'Frankfurt One', region: 'eu-central' });
    assert.equal(made.status, 201, made.text);
    assert.match(made.body.id, /^dc_[0-9a-z]{26}$/);
    assert.equal(made.headers.get('location'), `/v1/datacenters/${made.body.id}`);
    assert.deepEqual(
      {
        tenant_id: made.body.tenant_id,
        name: made.body.name,
        slug: made.body.slug,
        provider_name: made.body.provider_name,
        region: made.body.region,
        status: made.body.status,
      },
      {
        tenant_id: tenant,
        name: 'Frankfurt One',
        slug: 'frankfurt-one',
        provider_name: 'docker',
        region: 'eu-central',
        status: 'active',
      },
    );
    const second = await admin('POST', '/v1/datacenters', {
      name: 'Paris',
      provider_name: 'docker',
      status: 'maintenance',
    });
    assert.equal(second.status, 201, second.text);
    assert.equal(second.body.region, '');

    // Listed oldest first, one page at a time, filtered by status; another tenant sees none of them.
    const all = await admin('GET', '/v1/datacenters');
    assert.deepEqual(
      all.body.items.map((d: { id: string }) => d.id),
      [made.body.id, second.body.id],
    );
    assert.equal(all.body.next_cursor, undefined);
    const page1 = await admin('GET', '/v1/datacenters?limit=1');
    assert.deepEqual(
      page1.body.items.map((d: { id: string }) => d.id),
      [made.body.id],
    );
    const page2 = await admin('GET', `/v1/datacenters?limit=1&cursor=${page1.body.next_cursor}`);
    assert.deepEqual(
      page2.body.items.map((d: { id: string }) => d.id),
      [second.body.id],
    );
    assert.equal(page2.body.next_cursor, undefined);
    const inMaintenance = await admin('GET', '/v1/datacenters?status=maintenance');
    assert.deepEqual(
      inMaintenance.body.items.map((d: { id: string }) => d.id),
      [second.body.id],
    );
    assert.deepEqual((await otherAdmin('GET', '/v1/datacenters')).body.items, []);

    const got = await admin('GET', `/v1/datacenters/${made.body.id}`);
    assert.equal(got.status, 200);
    assert.deepEqual(got.body, made.body);
    assert.equal((await otherAdmin('GET', `/v1/datacenters/${made.body.id}`)).status, 404);

    const patched = await admin('PATCH', `/v1/datacenters/${made.body.id}`, {
      name: 'Frankfurt Main',
      status: 'draining',
      region: 'eu-central-1',
    });
    assert.equal(patched.status, 200, patched.text);
    assert.equal(patched.body.slug, 'frankfurt-main');
    assert.equal(patched.body.status, 'draining');
    assert.equal(patched.body.region, 'eu-central-1');
    assert.ok(patched.body.updated_at > made.body.updated_at);
    assert.equal(patched.body.created_at, made.body.created_at);
    const back = await admin('PATCH', `/v1/datacenters/${made.body.id}`, { status: 'active' });
    assert.equal(back.body.status, 'active');
    assert.equal(back.body.name, 'Frankfurt Main');

    // Not an admin: 403 on every route, and nothing written.
    assert.equal((await owner('GET', '/v1/datacenters')).status, 403);
    assert.equal((await owner('POST', '/v1/datacenters', { name: 'nope' })).status, 403);
    assert.equal((await owner('GET', `/v1/datacenters/${made.body.id}`)).status, 403);
    assert.equal(
      (await owner('PATCH', `/v1/datacenters/${made.body.id}`, { status: 'offline' })).status,
      403,
    );
    assert.equal((await admin('GET', `/v1/datacenters/${made.body.id}`)).body.status, 'active');
  });

  it('refuses invalid datacenter requests with 4xx naming the field, writing nothing', async () => {
    const dc = (await admin('POST', '/v1/datacenters', { name: 'Refusals' })).body;
    const taken = (await admin('POST', '/v1/datacenters', { name: 'Taken Name' })).body;
    const before = await datacenterRows(tenant);
    const cases: [string, string, unknown, number, string, string | undefined][] = [
      ['POST', '/v1/datacenters', {}, 400, 'invalid_request', 'name'],
      ['POST', '/v1/datacenters', { name: '  ' }, 400, 'invalid_request', 'name'],
      ['POST', '/v1/datacenters', { name: 'x', status: 'broken' }, 400, 'invalid_request', 'status'],
      ['POST', '/v1/datacenters', { name: 'x', region: 5 }, 400, 'invalid_request', 'region'],
      ['POST', '/v1/datacenters', { name: 'x', tenant_id: other }, 400, 'invalid_request', 'tenant_id'],
      [
        'POST',
        '/v1/datacenters',
        { name: 'x', provider_name: 'nope' },
        400,
        'provider_not_found',
        'provider_name',
      ],
      ['POST', '/v1/datacenters', { name: 'taken name' }, 409, 'already_exists', 'name'],
      ['PATCH', `/v1/datacenters/${dc.id}`, {}, 400, 'invalid_request', 'body'],
      ['PATCH', `/v1/datacenters/${dc.id}`, { status: 'gone' }, 400, 'invalid_request', 'status'],
      ['PATCH', `/v1/datacenters/${dc.id}`, { slug: 'x' }, 400, 'invalid_request', 'slug'],
      [
        'PATCH',
        `/v1/datacenters/${dc.id}`,
        { provider_name: 'mars', status: 'offline' },
        400,
        'provider_not_found',
        'provider_name',
      ],
      ['PATCH', `/v1/datacenters/${dc.id}`, { name: 'Taken Name' }, 409, 'already_exists', 'name'],
      [
        'PATCH',
        '/v1/datacenters/dc_01h455vb4pex5vsknk084sn02q',
        { status: 'offline' },
        404,
        'not_found',
        undefined,
      ],
      [
        'PATCH',
        '/v1/datacenters/inst_01h455vb4pex5vsknk084sn02q',
        { status: 'offline' },
        400,
        'invalid_request',
        'id',
      ],
      ['GET', '/v1/datacenters/not-an-id', undefined, 400, 'invalid_request', 'id'],
      ['GET', '/v1/datacenters/dc_01h455vb4pex5vsknk084sn02q', undefined, 404, 'not_found', undefined],
      ['GET', '/v1/datacenters?status=sleepy', undefined, 400, 'invalid_request', 'status'],
      ['GET', '/v1/datacenters?limit=0', undefined, 400, 'invalid_request', 'limit'],
      ['GET', '/v1/datacenters?cursor=abc', undefined, 400, 'invalid_request', 'cursor'],
    ];
    for (const [method, path, body, status, code, field] of cases) {
      const res = await admin(method, path, body);
      const what = `${method} ${path} ${JSON.stringify(body)}`;
      assert.equal(res.status, status, `${what}: ${res.text}`);
      assert.equal(res.body.code, code, `${what}: ${res.text}`);
      if (field) {
        assert.ok(
          res.body.errors?.some((e: { field: string }) => e.field === field),
          `${what}: names ${field}: ${res.text}`,
        );
      }
    }
    // Another tenant's admin cannot see or change them either.
    assert.equal((await otherAdmin('PATCH', `/v1/datacenters/${dc.id}`, { status: 'offline' })).status, 404);
    const wrongMethod = await admin('DELETE', `/v1/datacenters/${dc.id}`);
    assert.equal(wrongMethod.status, 405);
    assert.equal(wrongMethod.headers.get('allow'), 'GET, PATCH');
    assert.deepEqual(await datacenterRows(tenant), before, 'nothing was written');
    assert.equal(taken.status, 'active');
  });

  it('places a create through its datacenter: the datacenter’s provider and region', async () => {
    const dc = (await admin('POST', '/v1/datacenters', { name: 'Placement', region: 'dc-region' })).body;
    // The datacenter's provider overrides provider_name; its region fills a missing region.
    const res = await owner('POST', '/v1/instances?wait=60s', {
      name: 'placed',
      datacenter_id: dc.id,
      provider_name: 'mars',
      services: [{ ...service, env: { REGION: '{{ .region }}' } }],
    });
    assert.equal(res.status, 201, res.text);
    created.push(res.body.id);
    assert.equal(res.body.state, 'running', res.text);
    assert.equal(res.body.datacenter_id, dc.id);
    assert.equal(res.body.provider_name, 'docker');
    assert.equal(res.body.region, 'dc-region');
    const listed = await owner('GET', `/v1/instances?datacenter=${dc.id}`);
    assert.deepEqual(
      listed.body.items.map((i: { id: string }) => i.id),
      [res.body.id],
    );
    // A region given in the request wins over the datacenter's.
    const own = await owner('POST', '/v1/instances', {
      name: 'placed-own-region',
      datacenter_id: dc.id,
      region: 'mine',
      services: [service],
    });
    assert.equal(own.status, 201, own.text);
    created.push(own.body.id);
    assert.equal(own.body.region, 'mine');
    for (const id of [res.body.id, own.body.id]) {
      assert.equal((await owner('DELETE', `/v1/instances/${id}?wait=30s`)).status, 204);
    }
  });

  it('refuses a create in a datacenter that is not active (409) or unknown, or on an unknown provider (400): nothing written', async () => {
    const creator = uniqueTenant('dcapicreate');
    const creatorAdmin = checkedClient(stack.api.url, checker, await stack.token(creator, ['admin']));
    const dc = (await creatorAdmin('POST', '/v1/datacenters', { name: 'Closing', status: 'maintenance' }))
      .body;
    const foreign = (await otherAdmin('POST', '/v1/datacenters', { name: 'Foreign' })).body;
    const cases: [string, Record<string, unknown>, number, string, string][] = [
      ['in maintenance', { datacenter_id: dc.id }, 409, 'datacenter_unavailable', 'datacenter_id'],
      ['of another tenant', { datacenter_id: foreign.id }, 400, 'datacenter_not_found', 'datacenter_id'],
      [
        'that does not exist',
        { datacenter_id: 'dc_01h455vb4pex5vsknk084sn02q' },
        400,
        'datacenter_not_found',
        'datacenter_id',
      ],
      [
        'that is no datacenter id',
        { datacenter_id: 'frankfurt' },
        400,
        'datacenter_not_found',
        'datacenter_id',
      ],
      ['on an unknown provider', { provider_name: 'nope' }, 400, 'provider_not_found', 'provider_name'],
    ];
    for (const status of ['maintenance', 'draining', 'offline']) {
      await creatorAdmin('PATCH', `/v1/datacenters/${dc.id}`, { status });
      for (const [what, fields, code, problem, field] of cases) {
        const res = await creatorAdmin(
          'POST',
          '/v1/instances?wait=5s',
          { name: `refused-${status}`, services: [service], ...fields },
          { headers: { 'idempotency-key': `${status}-${what}` } },
        );
        assert.equal(res.status, code, `${what}: ${res.text}`);
        assert.equal(res.body.code, problem, `${what}: ${res.text}`);
        assert.ok(
          res.body.errors?.some((e: { field: string }) => e.field === field),
          res.text,
        );
        if (problem === 'datacenter_unavailable') assert.match(res.body.detail, new RegExp(status));
      }
    }
    assert.deepEqual(await tenantRows(stack.orm, creator), {
      instances: 0,
      instance_events: 0,
      idempotency_keys: 0,
    });

    // Back in service, the datacenter takes the same create; once its workflow is visible, it is the tenant's
    // only one: none was started for the refused requests.
    await creatorAdmin('PATCH', `/v1/datacenters/${dc.id}`, { status: 'active' });
    const accepted = await creatorAdmin('POST', '/v1/instances', {
      name: 'accepted',
      datacenter_id: dc.id,
      services: [service],
    });
    assert.equal(accepted.status, 201, accepted.text);
    created.push(accepted.body.id);
    const expected = [`instance/${accepted.body.id}`];
    await eventually('the accepted create to be visible', async () =>
      JSON.stringify(await tenantWorkflowIds(stack.client, creator)) === JSON.stringify(expected)
        ? true
        : undefined,
    );
    assert.deepEqual(await tenantWorkflowIds(stack.client, creator), expected);
    assert.equal((await tenantRows(stack.orm, creator)).instances, 1);
    assert.equal((await creatorAdmin('DELETE', `/v1/instances/${accepted.body.id}?wait=30s`)).status, 204);
  });
});
