import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { ROUTE_ROLES } from '../api/route-roles.ts';
import { REPO_ROOT } from '../scripts/temporal-cli.ts';
import { type ApiCall, checkedClient, OpenApiChecker } from './support/api-openapi.ts';
import { deleteTenantRows, seedRecord, seedRows } from './support/api-seed.ts';
import { type Stack, startStack, uniqueTenant } from './support/stack.ts';

interface Operation {
  method: string;
  path: string;
  role: 'tenant' | 'admin' | 'operator';
}

// No worker and no container: the subject is who may call what. Instances are read-model rows seeded directly;
// suspending a real instance across tenants is in test/instance-commands.test.ts.
describe('roles: the tenant role admin never holds the operator’s powers', () => {
  let stack: Stack;
  let checker: OpenApiChecker;
  const victim = uniqueTenant('rolesvictim');
  const attacker = uniqueTenant('rolesattacker');
  let member: ApiCall;
  let attackerAdmin: ApiCall;
  let victimAdmin: ApiCall;
  let operator: ApiCall;
  const victimRows = [
    seedRecord({ tenant_id: victim, name: 'victim-a', state: 'running' }),
    seedRecord({ tenant_id: victim, name: 'victim-b', state: 'stopped' }),
  ];

  const billingRow = async (tenantId: string) =>
    stack.orm.em
      .fork()
      .getConnection()
      .execute<{ status: string }[]>('select status from billing_accounts where tenant_id = ?', [tenantId]);

  before(async () => {
    stack = await startStack({ worker: false, env: { CTRLPLANE_RATE_LIMIT_PER_MINUTE: '0' } });
    checker = await OpenApiChecker.load(stack.api.url);
    await seedRows(stack.orm, victimRows);
    member = checkedClient(stack.api.url, checker, await stack.token(attacker));
    attackerAdmin = checkedClient(stack.api.url, checker, await stack.token(attacker, ['admin']));
    victimAdmin = checkedClient(stack.api.url, checker, await stack.token(victim, ['admin']));
    operator = checkedClient(
      stack.api.url,
      checker,
      await stack.token(uniqueTenant('rolesoperator'), ['operator']),
    );
  });

  after(async () => {
    await deleteTenantRows(stack.orm, 'ten_roles');
    await stack?.orm.em
      .fork()
      .getConnection()
      .execute("delete from billing_accounts where tenant_id like 'ten_roles%'");
    await stack?.close();
  });

  function operations(): Operation[] {
    return Object.entries(checker.doc.paths as Record<string, Record<string, Record<string, unknown>>>)
      .filter(([path]) => path.startsWith('/v1/'))
      .flatMap(([path, item]) =>
        Object.entries(item).map(([method, op]) => ({
          method: method.toUpperCase(),
          path,
          role: op['x-required-role'] as Operation['role'],
        })),
      );
  }

  it('a tenant admin cannot put another tenant past due with no grace: 403, and nothing is written', async () => {
    const path = `/v1/admin/tenants/${victim}/billing`;
    for (const caller of [attackerAdmin, victimAdmin]) {
      const res = await caller('PUT', path, { status: 'past_due', grace_period: '0s' });
      assert.equal(res.status, 403, JSON.stringify(res.body));
      assert.equal(res.body.code, 'forbidden');
      assert.equal(res.body.detail, 'this operation needs the operator role');
    }
    assert.deepEqual(await billingRow(victim), [], 'no billing account was written');
    assert.equal((await attackerAdmin('GET', path)).status, 403);
    assert.equal((await attackerAdmin('POST', '/v1/admin/billing/sweep')).status, 403);
    // The operator can: the same request writes the account.
    const put = await operator('PUT', path, { status: 'past_due', grace_period: '0s' });
    assert.equal(put.status, 201, JSON.stringify(put.body));
    assert.deepEqual(await billingRow(victim), [{ status: 'past_due' }]);
  });

  it('documents the role of every /v1 route, and each route refuses a caller without it', async () => {
    const ops = operations();
    assert.deepEqual(
      ops.map((o) => `${o.method} ${o.path}`).sort(),
      Object.keys(ROUTE_ROLES).sort(),
      'every /v1 operation has its role in the document',
    );
    const byRole = (role: Operation['role']) => ops.filter((o) => o.role === role);
    assert.ok(
      byRole('operator').length >= 7,
      'suspend, unsuspend, billing (4) and capacity are the operator’s',
    );
    assert.ok(byRole('admin').length >= 4, 'the datacenter routes are the tenant admin’s');
    // An instance of the attacker's own tenant: a 403 here is the role, not the tenant boundary.
    const own = seedRecord({ tenant_id: attacker, name: 'own', state: 'stopped' });
    await seedRows(stack.orm, [own]);
    const fill = (path: string) =>
      path
        .replace('{id}', path.startsWith('/v1/datacenters') ? 'dc_01h455vb4pex5vsknk084sn02q' : own.id)
        .replace('{tenantId}', attacker);
    const refusals: [Operation['role'], ApiCall[]][] = [
      ['operator', [member, attackerAdmin]],
      ['admin', [member, operator]],
    ];
    for (const [role, callers] of refusals) {
      for (const op of byRole(role)) {
        for (const caller of callers) {
          const body = ['POST', 'PUT', 'PATCH'].includes(op.method) ? {} : undefined;
          const res = await caller(op.method, fill(op.path), body);
          assert.equal(res.status, 403, `${op.method} ${op.path}: ${JSON.stringify(res.body)}`);
          assert.equal(res.body.detail, `this operation needs the ${role} role`);
        }
      }
    }
    assert.deepEqual(await billingRow(attacker), []);
  });

  it('says each route’s role in the README’s route table', () => {
    const readme = readFileSync(`${REPO_ROOT}/README.md`, 'utf8');
    for (const [route, role] of Object.entries(ROUTE_ROLES)) {
      const [method, path] = route.split(' ') as [string, string];
      const written = path.replace(/\{(\w+)\}/g, ':$1');
      const row = readme.split('\n').find((l) => l.startsWith(`| \`${method} ${written}\``));
      assert.ok(row, `README has a row for ${method} ${written}`);
      assert.match(row, new RegExp(`\\| ${role} \\|`), `${method} ${written}: ${role}`);
    }
  });

  it('lets the operator list another tenant’s instances with ?tenant_id=; a tenant, its admin too, gets 403', async () => {
    const listed = await operator('GET', `/v1/instances?tenant_id=${victim}`);
    assert.equal(listed.status, 200, JSON.stringify(listed.body));
    assert.deepEqual(listed.body.items.map((i: { name: string }) => i.name).sort(), ['victim-a', 'victim-b']);
    assert.equal(listed.body.total, 2);
    const stopped = await operator('GET', `/v1/instances?tenant_id=${victim}&state=stopped`);
    assert.deepEqual(
      stopped.body.items.map((i: { name: string }) => i.name),
      ['victim-b'],
    );
    const paged = await operator('GET', `/v1/instances?tenant_id=${victim}&limit=1`);
    const next = await operator(
      'GET',
      `/v1/instances?tenant_id=${victim}&limit=1&cursor=${paged.body.next_cursor}`,
    );
    assert.deepEqual([...paged.body.items, ...next.body.items].map((i: { name: string }) => i.name).sort(), [
      'victim-a',
      'victim-b',
    ]);
    // Without tenant_id the operator's token acts in its own tenant, like any caller.
    assert.equal((await operator('GET', '/v1/instances')).body.total, 0);
    for (const [caller, tenant] of [
      [attackerAdmin, victim],
      [member, victim],
      [victimAdmin, victim],
    ] as const) {
      const res = await caller('GET', `/v1/instances?tenant_id=${tenant}`);
      assert.equal(res.status, 403, JSON.stringify(res.body));
      assert.equal(res.body.detail, 'this operation needs the operator role');
    }
  });

  it('keeps the tenant boundary for everything else: the operator’s token reads no other tenant’s instance by id', async () => {
    const [row] = victimRows;
    assert.equal((await operator('GET', `/v1/instances/${row?.id}`)).status, 404);
    assert.equal((await operator('GET', `/v1/instances/${row?.id}/events`)).status, 404);
    assert.equal((await attackerAdmin('GET', `/v1/instances/${row?.id}`)).status, 404);
    assert.equal((await victimAdmin('GET', `/v1/instances/${row?.id}`)).status, 200);
  });
});
