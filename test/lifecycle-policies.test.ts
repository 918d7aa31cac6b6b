import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { containersOf, httpdService, removeInstances, removeTenantLeftovers } from './support/docker.ts';
import { apiClient, eventually } from './support/http.ts';
import { type Stack, startStack, uniqueTenant } from './support/stack.ts';

// Lifecycle policies on the real Temporal dev server, PostgreSQL and Docker engine: durations of seconds, and
// six-field cron expressions (seconds first) so a schedule fires within the test.
describe('lifecycle policies: auto_stop, auto_delete, expires_at and schedule', () => {
  let stack: Stack;
  let api: ReturnType<typeof apiClient>;
  let operator: ReturnType<typeof apiClient>;
  const tenant = uniqueTenant('policy');
  const created: string[] = [];

  before(async () => {
    await removeTenantLeftovers('ten_policy_');
    stack = await startStack();
    api = apiClient(stack.api.url, await stack.token(tenant));
    operator = apiClient(stack.api.url, await stack.token(uniqueTenant('policyops'), ['operator']));
  });

  after(async () => {
    await stack?.close();
    await removeInstances(created);
  });

  async function createInstance(name: string, policies: object): Promise<string> {
    const res = await api('POST', '/v1/instances?wait=true', {
      name,
      services: [httpdService(name)],
      ...policies,
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    created.push(res.body.id);
    return res.body.id;
  }

  async function events(id: string): Promise<{ type: string; payload: Record<string, unknown> }[]> {
    const res = await api('GET', `/v1/instances/${id}/events?limit=200`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.items;
  }

  function eventOfType(id: string, type: string) {
    return eventually(`${id} ${type}`, async () => (await events(id)).find((e) => e.type === type), 90_000);
  }

  async function runningContainers(id: string): Promise<number> {
    return (await containersOf(id)).filter((c) => c.State === 'running').length;
  }

  it('auto_stop stops the containers that long after the last start; a restart resets it', async () => {
    const id = await createInstance('auto stop', { auto_stop: { after: '15s' } });
    const running = await api('GET', `/v1/instances/${id}`);
    assert.equal(running.body.state, 'running', JSON.stringify(running.body));
    assert.deepEqual(running.body.auto_stop, { after: '15s' });
    assert.equal(running.body.next_auto_action.action, 'auto_stop');
    const firstDeadline = Date.parse(running.body.next_auto_action.at);
    assert.equal(firstDeadline, Date.parse(running.body.last_started_at) + 15_000);

    const restarted = await api('POST', `/v1/instances/${id}/restart?wait=true`);
    assert.equal(restarted.status, 200, JSON.stringify(restarted.body));
    const deadline = Date.parse(restarted.body.next_auto_action.at);
    assert.ok(deadline > firstDeadline, 'the restart moved the deadline');
    assert.equal(deadline, Date.parse(restarted.body.last_started_at) + 15_000);

    const stopped = await eventOfType(id, 'instance.auto_stopped');
    assert.equal(stopped.payload.conclusion, 'succeeded');
    assert.equal(stopped.payload.auto_action, 'auto_stop');
    const after = await api('GET', `/v1/instances/${id}`);
    assert.equal(after.body.state, 'stopped');
    assert.equal(after.body.next_auto_action, undefined);
    assert.ok(Date.parse(after.body.stopped_at) >= deadline, 'not before the deadline the restart set');
    assert.equal(await runningContainers(id), 0);
    assert.equal((await events(id)).filter((e) => e.type === 'instance.auto_stopped').length, 1);
  });

  it('auto_delete deletes an instance once it has been stopped that long', async () => {
    const id = await createInstance('auto delete', { auto_delete: { after_stopped: '3s' } });
    assert.equal((await api('GET', `/v1/instances/${id}`)).body.next_auto_action, undefined);
    const stopped = await api('POST', `/v1/instances/${id}/stop?wait=true`);
    assert.equal(stopped.status, 200, JSON.stringify(stopped.body));
    assert.equal(stopped.body.next_auto_action.action, 'auto_delete');
    const deleted = await eventOfType(id, 'instance.auto_deleted');
    assert.equal(deleted.payload.conclusion, 'succeeded');
    assert.equal((await api('GET', `/v1/instances/${id}`)).body.state, 'destroyed');
    assert.equal((await containersOf(id)).length, 0);
  });

  it('expires_at deletes the instance at that time; a PATCH moves it', async () => {
    const id = await createInstance('expiring', {
      expires_at: new Date(Date.now() + 3_600_000).toISOString(),
    });
    const expiresAt = new Date(Date.now() + 4000).toISOString();
    const patched = await api('PATCH', `/v1/instances/${id}`, { expires_at: expiresAt });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    assert.deepEqual(patched.body.next_auto_action, { action: 'expire', at: expiresAt });
    const expired = await eventOfType(id, 'instance.expired');
    assert.equal(expired.payload.conclusion, 'succeeded');
    const row = await api('GET', `/v1/instances/${id}`);
    assert.equal(row.body.state, 'destroyed');
    assert.ok(Date.parse(row.body.updated_at) >= Date.parse(expiresAt));
    assert.equal((await containersOf(id)).length, 0);
  });

  it('a schedule starts a stopped instance, but never a suspended one', async () => {
    const schedule = { start: '*/2 * * * * *', timezone: 'Europe/Berlin' };
    const id = await createInstance('scheduled', {});
    const suspendedId = await createInstance('scheduled suspended', {});
    for (const target of [id, suspendedId]) {
      assert.equal((await api('POST', `/v1/instances/${target}/stop?wait=true`)).status, 200);
    }
    const suspended = await operator('POST', `/v1/instances/${suspendedId}/suspend?wait=true`, {
      reason: 'abuse',
    });
    assert.equal(suspended.status, 200, JSON.stringify(suspended.body));
    const onSuspended = await api('PATCH', `/v1/instances/${suspendedId}`, { schedule });
    assert.equal(onSuspended.status, 200, JSON.stringify(onSuspended.body));
    assert.equal(onSuspended.body.next_auto_action, undefined, 'nothing is due while suspended');
    const patched = await api('PATCH', `/v1/instances/${id}`, { schedule });
    assert.equal(patched.body.next_auto_action.action, 'scheduled_start');

    const started = await eventOfType(id, 'instance.scheduled_started');
    assert.equal(started.payload.conclusion, 'succeeded');
    assert.equal((await api('GET', `/v1/instances/${id}`)).body.state, 'running');
    assert.ok((await runningContainers(id)) > 0);
    // The scheduled instance started on an occurrence; the suspended one saw the same occurrences.
    const other = await api('GET', `/v1/instances/${suspendedId}`);
    assert.equal(other.body.state, 'stopped');
    assert.equal(await runningContainers(suspendedId), 0);
    const types = (await events(suspendedId)).map((e) => e.type);
    assert.ok(!types.includes('instance.scheduled_started'), types.join(', '));
    assert.ok(!types.includes('instance.command_rejected'), 'no start was even queued');
  });

  it('refuses bad policies with a 400 naming the field, and writes nothing', async () => {
    const cases: [object, string][] = [
      [{ auto_stop: { after: '2 hours' } }, 'auto_stop.after'],
      [{ auto_delete: { after_stopped: '0s' } }, 'auto_delete.after_stopped'],
      [{ expires_at: 'tomorrow' }, 'expires_at'],
      [{ schedule: { start: '61 * * * *', timezone: 'UTC' } }, 'schedule.start'],
      [{ schedule: { stop: '0 18 * * *', timezone: 'Mars/Olympus' } }, 'schedule.timezone'],
      [{ schedule: { timezone: 'UTC' } }, 'schedule.start'],
    ];
    const before = await api('GET', '/v1/instances');
    for (const [policy, field] of cases) {
      const res = await api('POST', '/v1/instances', {
        name: 'bad policy',
        services: [httpdService('bad')],
        ...policy,
      });
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.match(res.headers.get('content-type') ?? '', /application\/problem\+json/);
      assert.deepEqual(
        res.body.errors.map((e: { field: string }) => e.field),
        [field],
        JSON.stringify(res.body),
      );
    }
    assert.equal((await api('GET', '/v1/instances')).body.total, before.body.total);

    const id = await createInstance('patched badly', { auto_stop: { after: '1h' } });
    const res = await api('PATCH', `/v1/instances/${id}`, {
      schedule: { start: '0 8 * * *', timezone: 'Nowhere/City' },
    });
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.equal(res.body.errors[0].field, 'schedule.timezone');
    const row = await api('GET', `/v1/instances/${id}`);
    assert.equal(row.body.schedule, undefined);
    assert.deepEqual(row.body.auto_stop, { after: '1h' });
  });
});
