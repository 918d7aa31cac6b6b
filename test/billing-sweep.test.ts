import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ScheduleOverlapPolicy } from '@temporalio/client';
import { BILLING_SCHEDULE_NOTE } from '../worker/billing-schedule.ts';
import { commandMessages, instanceWorkflowId, snapshotQuery } from '../workflows/messages.ts';
import {
  billingScheduleIdOf,
  ensureTestBillingSchedule,
  runsOf,
  startBillingApi,
  startBillingWorker,
  sweepStartedBy,
} from './support/billing-stack.ts';
import { containersOf, httpdService, removeInstances, removeTenantLeftovers } from './support/docker.ts';
import { eventsOf } from './support/events.ts';
import { apiClient, eventually } from './support/http.ts';
import { type Stack, startStack, uniqueTenant } from './support/stack.ts';

interface Row {
  id: string;
  state: string;
  suspend_reason: string | null;
  seq: number;
}

// Real Temporal (schedule, sweep and instance workflows), PostgreSQL and Docker. The billing routes are
// mounted on a small app of their own (test/support/billing-stack.ts), exactly as api/app.ts mounts them.
describe('billing suspension', () => {
  let stack: Stack;
  let worker: { stop(): Promise<void> };
  let billingApi: { url: string; close(): Promise<void> };
  let operator: ReturnType<typeof apiClient>;
  const payer = uniqueTenant('billpay');
  const other = uniqueTenant('billother');
  const created: string[] = [];
  let payerIds: string[] = [];
  let otherId = '';
  let otherBefore: { row: Row; events: number } | undefined;

  async function row(id: string): Promise<Row> {
    const [found] = await stack.orm.em
      .fork()
      .getConnection()
      .execute<Row[]>('select id, state, suspend_reason, seq from instances where id = ?', [id]);
    assert.ok(found, `instance ${id} has a row`);
    return found;
  }

  async function runningContainers(id: string): Promise<number> {
    return (await containersOf(id)).filter((c) => c.State === 'running').length;
  }

  const trigger = async () => {
    const res = await operator('POST', '/v1/admin/billing/sweep');
    assert.equal(res.status, 202, JSON.stringify(res.body));
  };

  before(async () => {
    await removeTenantLeftovers('ten_billpay_');
    await removeTenantLeftovers('ten_billother_');
    stack = await startStack({ worker: false });
    worker = await startBillingWorker(stack);
    // A day apart: the schedule never fires by itself during the test; the test triggers it.
    assert.equal(
      await ensureTestBillingSchedule(stack, {
        CTRLPLANE_BILLING_SWEEP_INTERVAL: '24h',
        // Three instances at two per run: the sweep continues as new once.
        CTRLPLANE_BILLING_SWEEP_MAX_INSTANCES_PER_RUN: '2',
      }),
      'created',
    );
    billingApi = await startBillingApi(stack);
    operator = apiClient(billingApi.url, await stack.token('ten_ops', ['operator']));

    const payerApi = apiClient(stack.api.url, await stack.token(payer));
    const otherApi = apiClient(stack.api.url, await stack.token(other));
    const create = async (api: typeof payerApi, name: string) => {
      const res = await api('POST', '/v1/instances?wait=60s', { name, services: [httpdService(name)] });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      created.push(res.body.id);
      assert.equal(res.body.state, 'running');
      return res.body.id as string;
    };
    payerIds = await Promise.all(['bill-a', 'bill-b', 'bill-c'].map((n) => create(payerApi, n)));
    otherId = await create(otherApi, 'bill-other');
    // The other tenant is past due too, but within its grace period.
    const put = await operator('PUT', `/v1/admin/tenants/${other}/billing`, { status: 'past_due' });
    assert.equal(put.status, 201, JSON.stringify(put.body));
    assert.equal(put.body.grace_period, '72h', 'the configured default grace period');
    otherBefore = { row: await row(otherId), events: (await eventsOf(stack.orm, otherId)).length };
  });

  after(async () => {
    await stack?.client.schedule
      .getHandle(billingScheduleIdOf(stack))
      .delete()
      .catch(() => {});
    await stack?.orm.em
      .fork()
      .getConnection()
      .execute('delete from billing_accounts where tenant_id in (?, ?)', [payer, other]);
    await worker?.stop();
    await billingApi?.close();
    await stack?.close();
    await removeInstances(created);
  });

  it('suspends every instance of a tenant past due beyond its grace period, and a second sweep changes nothing', async () => {
    const put = await operator('PUT', `/v1/admin/tenants/${payer}/billing`, {
      status: 'past_due',
      grace_period: '0s',
    });
    assert.equal(put.status, 201, JSON.stringify(put.body));
    assert.equal(put.body.status, 'past_due');
    assert.ok(put.body.past_due_since);

    const first = await sweepStartedBy(stack, trigger);
    assert.deepEqual(first.counts, { suspended: 3, unsuspended: 0, skipped: 0, failed: 0 });
    assert.ok((await runsOf(stack, first.workflowId, 2)) >= 2, 'bounded at two instances per run');

    for (const id of payerIds) {
      await eventually(`${id} suspended for billing`, async () => {
        const r = await row(id);
        return r.state === 'stopped' && r.suspend_reason === 'billing';
      });
      assert.equal(await runningContainers(id), 0, `${id}: no container runs`);
      const suspended = (await eventsOf(stack.orm, id)).filter((e) => e.type === 'instance.suspended');
      assert.equal(suspended.length, 1, `${id}: one suspension event`);
      assert.equal(suspended[0]?.payload.reason, 'billing');
      assert.equal(suspended[0]?.payload.actor, 'system:billing-sweep');
      assert.match(String(suspended[0]?.payload.request_id), /^billing-suspend\//);
    }

    const rowsBefore = await Promise.all(payerIds.map(row));
    const eventsBefore = await Promise.all(
      payerIds.map(async (id) => (await eventsOf(stack.orm, id)).length),
    );
    const second = await sweepStartedBy(stack, trigger);
    assert.deepEqual(second.counts, { suspended: 0, unsuspended: 0, skipped: 0, failed: 0 });
    assert.deepEqual(await Promise.all(payerIds.map(row)), rowsBefore, 'the read model did not move');
    assert.deepEqual(
      await Promise.all(payerIds.map(async (id) => (await eventsOf(stack.orm, id)).length)),
      eventsBefore,
      'no event was added',
    );
  });

  it('lifts only the billing suspensions once the tenant pays; an abuse suspension stays', async () => {
    const [abused, ...billed] = payerIds as [string, string, string];
    await stack.client.workflow
      .getHandle(instanceWorkflowId(abused))
      .executeUpdate(commandMessages.suspend.update, {
        args: [{ request_id: `abuse-${randomUUID()}`, actor: 'trust-and-safety', reason: 'abuse' }],
      });
    await eventually(
      'the abuse suspension recorded',
      async () => (await row(abused)).suspend_reason === 'abuse',
    );

    const paid = await operator('PUT', `/v1/admin/tenants/${payer}/billing`, { status: 'active' });
    assert.equal(paid.status, 200, JSON.stringify(paid.body));
    assert.equal(paid.body.past_due_since, null);
    assert.equal(paid.body.grace_period, '0s', 'the grace period is kept when not given');

    const sweep = await sweepStartedBy(stack, trigger);
    assert.deepEqual(sweep.counts, { suspended: 0, unsuspended: 2, skipped: 0, failed: 0 });
    for (const id of billed) {
      await eventually(`${id} running again`, async () => {
        const r = await row(id);
        return r.state === 'running' && r.suspend_reason === null;
      });
      assert.equal(await runningContainers(id), 1, `${id}: its container runs again`);
      const lifted = (await eventsOf(stack.orm, id)).filter((e) => e.type === 'instance.unsuspended');
      assert.equal(lifted.length, 1);
      assert.equal(lifted[0]?.payload.reason, 'billing');
      assert.match(String(lifted[0]?.payload.request_id), /^billing-unsuspend\//);
    }
    const stillAbused = await row(abused);
    assert.equal(stillAbused.state, 'stopped');
    assert.equal(stillAbused.suspend_reason, 'abuse');
    assert.equal(await runningContainers(abused), 0);
    assert.ok(!(await eventsOf(stack.orm, abused)).some((e) => e.type === 'instance.unsuspended'));
  });

  it('lets the workflow, not a lagging read model, decide: billing never lifts nor replaces an abuse suspension', async () => {
    const [abused, ...billed] = payerIds as [string, string, string];
    const connection = stack.orm.em.fork().getConnection();
    const snapshotOf = () => stack.client.workflow.getHandle(instanceWorkflowId(abused)).query(snapshotQuery);
    try {
      // The read model a transition behind, still showing the billing suspension: the unsuspend is refused.
      await connection.execute(`update instances set suspend_reason = 'billing' where id = ?`, [abused]);
      const lift = await sweepStartedBy(stack, trigger);
      assert.deepEqual(lift.counts, { suspended: 0, unsuspended: 0, skipped: 1, failed: 0 });
      assert.equal((await snapshotOf()).instance.suspend_reason, 'abuse');

      // Past due again, with the read model not showing the abuse suspension yet: billing does not replace it.
      await connection.execute(`update instances set suspend_reason = null where id = ?`, [abused]);
      const due = await operator('PUT', `/v1/admin/tenants/${payer}/billing`, { status: 'past_due' });
      assert.equal(due.status, 200, JSON.stringify(due.body));
      const suspend = await sweepStartedBy(stack, trigger);
      assert.deepEqual(suspend.counts, { suspended: 2, unsuspended: 0, skipped: 1, failed: 0 });
      const snapshot = await snapshotOf();
      assert.equal(snapshot.instance.suspend_reason, 'abuse');
      assert.equal(snapshot.instance.state, 'stopped');
      assert.equal(snapshot.pending.length, 0);
      for (const id of billed) {
        await eventually(`${id} suspended for billing again`, async () => {
          const r = await row(id);
          return r.state === 'stopped' && r.suspend_reason === 'billing';
        });
      }
    } finally {
      await connection.execute(`update instances set suspend_reason = 'abuse' where id = ?`, [abused]);
    }
  });

  it('never touches another tenant’s instances', async () => {
    assert.ok(otherBefore);
    assert.deepEqual(await row(otherId), otherBefore.row);
    assert.equal((await eventsOf(stack.orm, otherId)).length, otherBefore.events);
    assert.equal(await runningContainers(otherId), 1);
  });

  it('keeps one schedule across worker restarts and takes a new interval from configuration', async () => {
    const handle = stack.client.schedule.getHandle(billingScheduleIdOf(stack));
    const original = await handle.describe();
    assert.equal(original.spec.intervals?.[0]?.every, 24 * 3600_000);
    assert.equal(original.policies.overlap, ScheduleOverlapPolicy.SKIP);
    assert.equal(original.state.note, BILLING_SCHEDULE_NOTE);
    assert.equal(original.memo?.description, BILLING_SCHEDULE_NOTE);
    assert.equal(original.action.taskQueue, stack.config.CTRLPLANE_TASK_QUEUE);

    // A worker restart with the same configuration.
    await worker.stop();
    worker = await startBillingWorker(stack);
    const same = {
      CTRLPLANE_BILLING_SWEEP_INTERVAL: '24h',
      CTRLPLANE_BILLING_SWEEP_MAX_INSTANCES_PER_RUN: '2',
    };
    assert.equal(await ensureTestBillingSchedule(stack, same), 'unchanged');
    const afterRestart = await handle.describe();
    assert.equal(afterRestart.info.createdAt.getTime(), original.info.createdAt.getTime(), 'not recreated');

    // A restart with a new interval updates the schedule in place.
    assert.equal(
      await ensureTestBillingSchedule(stack, { ...same, CTRLPLANE_BILLING_SWEEP_INTERVAL: '48h' }),
      'updated',
    );
    const updated = await handle.describe();
    assert.equal(updated.spec.intervals?.length, 1);
    assert.equal(updated.spec.intervals?.[0]?.every, 48 * 3600_000);
    assert.equal(updated.info.createdAt.getTime(), original.info.createdAt.getTime(), 'the same schedule');
    assert.equal(updated.policies.overlap, ScheduleOverlapPolicy.SKIP);
    assert.equal(updated.state.note, BILLING_SCHEDULE_NOTE);

    const listed = await eventually('the schedule listed', async () => {
      const ids: string[] = [];
      for await (const s of stack.client.schedule.list()) ids.push(s.scheduleId);
      return ids.includes(billingScheduleIdOf(stack)) ? ids : undefined;
    });
    assert.equal(listed.filter((id) => id === billingScheduleIdOf(stack)).length, 1, 'exactly one');

    const shown = await operator('GET', '/v1/admin/billing/sweep');
    assert.equal(shown.status, 200, JSON.stringify(shown.body));
    assert.equal(shown.body.interval, '48h');
    assert.equal(shown.body.recent_runs.length, 5, 'the five sweeps this file triggered');
  });

  it('answers the billing API to the operator only: roles, validation naming the field with nothing written, 404 and past_due_since kept', async () => {
    const tenant = uniqueTenant('billapi');
    const path = `/v1/admin/tenants/${tenant}/billing`;
    const user = apiClient(billingApi.url, await stack.token(tenant));
    // The tenant's own admin too: billing is the operator's, never the tenant's.
    const tenantAdmin = apiClient(billingApi.url, await stack.token(tenant, ['admin']));
    for (const caller of [user, tenantAdmin])
      for (const [method, route, body] of [
        ['GET', path, undefined],
        ['PUT', path, { status: 'active' }],
        ['POST', '/v1/admin/billing/sweep', undefined],
        ['GET', '/v1/admin/billing/sweep', undefined],
      ] as const) {
        const res = await caller(method, route, body);
        assert.equal(res.status, 403, `${method} ${route}`);
        assert.equal(res.body.code, 'forbidden');
      }
    assert.equal((await apiClient(billingApi.url)('GET', path)).status, 401);

    const bad: [unknown, string][] = [
      [{ status: 'overdue' }, 'status'],
      [{}, 'status'],
      [{ status: 'past_due', grace_period: '3 days' }, 'grace_period'],
      [{ status: 'past_due', grace_period: -5 }, 'grace_period'],
      [{ status: 'past_due', grace_period: 1.5 }, 'grace_period'],
      [{ status: 'past_due', grace_period: '99999d' }, 'grace_period'],
      [{ status: 'active', plan: 'gold' }, 'plan'],
      ['{"status": ', 'body'],
    ];
    for (const [body, field] of bad) {
      const res = await operator('PUT', path, body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
      assert.ok(
        res.body.errors?.some((e: { field: string }) => e.field === field),
        `${field} named in ${JSON.stringify(res.body)}`,
      );
    }
    const missing = await operator('GET', path);
    assert.equal(missing.status, 404, 'nothing was written');
    assert.equal(missing.body.code, 'not_found');

    const first = await operator('PUT', path, { status: 'past_due', grace_period: 259200 });
    assert.equal(first.status, 201);
    assert.equal(first.body.grace_period, '72h');
    assert.equal(first.body.grace_period_seconds, 259200);
    const since = first.body.past_due_since;
    assert.equal(first.body.suspend_after, new Date(new Date(since).getTime() + 259200_000).toISOString());
    const again = await operator('PUT', path, { status: 'past_due', grace_period: '30m' });
    assert.equal(again.status, 200);
    assert.equal(again.body.past_due_since, since, 'a repeated past_due keeps when it began');
    assert.equal(again.body.grace_period, '30m');
    const got = await operator('GET', path);
    assert.deepEqual(got.body, again.body);
    const wrong = await operator('DELETE', path);
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.get('allow'), 'GET, PUT');
    await stack.orm.em
      .fork()
      .getConnection()
      .execute('delete from billing_accounts where tenant_id = ?', [tenant]);
  });
});
