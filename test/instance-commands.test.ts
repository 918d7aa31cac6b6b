import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { InstanceRecordSchema } from '../db/entities/instance-record.ts';
import { recordToInstance } from '../db/instance-mapping.ts';
import { instanceWorkflowId, snapshotQuery } from '../workflows/messages.ts';
import {
  containersOf,
  docker,
  httpdService,
  removeInstances,
  removeTenantLeftovers,
} from './support/docker.ts';
import { conclusionsByRequest, eventsOf } from './support/events.ts';
import { apiClient } from './support/http.ts';
import { type Stack, startStack, uniqueTenant } from './support/stack.ts';

// Real Temporal, PostgreSQL and Docker.
describe('every command through the API', () => {
  let stack: Stack;
  let api: ReturnType<typeof apiClient>;
  let tenantAdmin: ReturnType<typeof apiClient>;
  let operator: ReturnType<typeof apiClient>;
  const tenant = uniqueTenant('cmd');
  // The operator's token names a tenant of its own: it reaches this tenant's instances by id only.
  const operatorTenant = uniqueTenant('cmdops');
  const created: string[] = [];

  before(async () => {
    await removeTenantLeftovers('ten_cmd_');
    // No burst limit per second: the storm below sends 100 commands at once, to the workflow, not to the limiter.
    stack = await startStack({ env: { CTRLPLANE_RATE_LIMIT_BURST_PER_SECOND: '0' } });
    api = apiClient(stack.api.url, await stack.token(tenant));
    tenantAdmin = apiClient(stack.api.url, await stack.token(tenant, ['admin']));
    operator = apiClient(stack.api.url, await stack.token(operatorTenant, ['operator']));
  });

  after(async () => {
    await stack?.close();
    await removeInstances(created);
  });

  async function newInstance(name: string): Promise<{ id: string; containerId: string }> {
    const res = await api('POST', '/v1/instances?wait=30s', {
      name,
      services: [{ ...httpdService(name), resources: { cpu_millis: 0, memory_mb: 64, replicas: 1 } }],
    });
    assert.equal(res.body.state, 'running', JSON.stringify(res.body));
    created.push(res.body.id);
    const [container] = await containersOf(res.body.id);
    assert.ok(container);
    return { id: res.body.id, containerId: container.Id };
  }

  const running = async (containerId: string) =>
    (await docker.getContainer(containerId).inspect()).State.Running;

  it('walks restart, scale, suspend, unsuspend and rename through their states', async () => {
    const { id, containerId } = await newInstance('walker');
    const startedAt = (await docker.getContainer(containerId).inspect()).State.StartedAt;

    const restart = await api('POST', `/v1/instances/${id}/restart?wait=true`);
    assert.equal(restart.status, 200, JSON.stringify(restart.body));
    assert.equal(restart.body.state, 'running');
    assert.notEqual(
      (await docker.getContainer(containerId).inspect()).State.StartedAt,
      startedAt,
      'the container restarted',
    );

    const scale = await api('POST', `/v1/instances/${id}/scale?wait=true`, { memory_mb: 128 });
    assert.equal(scale.status, 200, JSON.stringify(scale.body));
    assert.equal(scale.body.services[0].resources.memory_mb, 128);
    const inspected = await docker.getContainer(containerId).inspect();
    assert.equal(inspected.HostConfig.Memory, 128 * 1024 * 1024, 'the running container got the new limit');
    assert.equal(inspected.Id, containerId, 'without being recreated');

    const badScale = await api('POST', `/v1/instances/${id}/scale`, { replicas: 0 });
    assert.equal(badScale.status, 400);
    const dockerReplicas = await api('POST', `/v1/instances/${id}/scale?wait=true`, { replicas: 2 });
    assert.equal(dockerReplicas.status, 400, JSON.stringify(dockerReplicas.body));
    assert.match(dockerReplicas.body.detail, /replica/);
    assert.equal(
      (await api('GET', `/v1/instances/${id}`)).body.state,
      'running',
      'a refused scale changes nothing',
    );

    for (const tenantCaller of [api, tenantAdmin]) {
      const refused = await tenantCaller('POST', `/v1/instances/${id}/suspend`, { reason: 'abuse' });
      assert.equal(refused.status, 403, 'the operator only, never the tenant (its admin neither)');
    }
    const suspend = await operator('POST', `/v1/instances/${id}/suspend?wait=true`, { reason: 'abuse' });
    assert.equal(suspend.status, 200, JSON.stringify(suspend.body));
    assert.equal(suspend.body.state, 'stopped');
    assert.equal(suspend.body.suspend_reason, 'abuse');
    assert.ok(suspend.body.suspended_at);
    assert.equal(await running(containerId), false);
    for (const command of ['start', 'restart']) {
      const refused = await api('POST', `/v1/instances/${id}/${command}`);
      assert.equal(refused.status, 409, command);
      assert.equal(refused.body.code, 'suspended');
    }
    assert.equal((await api('POST', `/v1/instances/${id}/scale`, { memory_mb: 64 })).body.code, 'suspended');
    // The tenant's admin cannot lift its own abuse suspension: 403, and the instance stays suspended.
    for (const body of [{}, undefined, { reason: 'abuse' }]) {
      const lift = await tenantAdmin('POST', `/v1/instances/${id}/unsuspend?wait=true`, body);
      assert.equal(lift.status, 403, JSON.stringify(lift.body));
      assert.equal(lift.body.code, 'forbidden');
    }
    const still = await api('GET', `/v1/instances/${id}`);
    assert.equal(still.body.state, 'stopped');
    assert.equal(still.body.suspend_reason, 'abuse');
    assert.equal(await running(containerId), false, 'still stopped');
    // Who suspended is on the event (and in the workflow's history): the operator's sub, not the billing sweep.
    const suspendedEvent = (await eventsOf(stack.orm, id)).find((e) => e.type === 'instance.suspended');
    assert.equal(suspendedEvent?.payload.actor, `user-${operatorTenant}`);
    assert.equal(suspendedEvent?.payload.reason, 'abuse');
    // and the workflow history keeps the command as accepted: the operator's sub, not the billing sweep's actor.
    const history = await stack.client.workflow.getHandle(instanceWorkflowId(id)).fetchHistory();
    const suspendRequests = (history.events ?? []).flatMap((e) => {
      const input = e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input;
      if (input?.name !== 'suspend') return [];
      return (input.args?.payloads ?? []).map((p) => JSON.parse(Buffer.from(p.data ?? []).toString('utf8')));
    });
    assert.deepEqual(
      suspendRequests.map((r) => [r.actor, r.reason]),
      [[`user-${operatorTenant}`, 'abuse']],
    );

    const unsuspend = await operator('POST', `/v1/instances/${id}/unsuspend?wait=true`);
    assert.equal(unsuspend.status, 200, JSON.stringify(unsuspend.body));
    assert.equal(unsuspend.body.state, 'running', 'back to the state it had when suspended');
    assert.equal(unsuspend.body.suspended_at, undefined);
    assert.equal(await running(containerId), true);

    const rename = await api('PATCH', `/v1/instances/${id}?wait=true`, {
      name: 'Walker Two',
      labels: { tier: 'gold' },
    });
    assert.equal(rename.status, 200, JSON.stringify(rename.body));
    assert.equal(rename.body.slug, 'walker-two');
    assert.deepEqual(rename.body.labels, { tier: 'gold' });

    const types = (await eventsOf(stack.orm, id)).map((e) => e.type);
    assert.deepEqual(types.slice(3), [
      'instance.stopping',
      'instance.stopped',
      'instance.starting',
      'instance.restarted',
      'instance.scaled',
      'instance.command_failed',
      'instance.stopping',
      'instance.suspended',
      'instance.starting',
      'instance.unsuspended',
      'instance.updated',
    ]);
  });

  it('suspends a stopped instance without a provider call and unsuspends it back to stopped', async () => {
    const { id } = await newInstance('sleeper');
    await api('POST', `/v1/instances/${id}/stop?wait=true`);
    const suspend = await operator('POST', `/v1/instances/${id}/suspend?wait=true`, { reason: 'billing' });
    assert.equal(suspend.body.state, 'stopped');
    const unsuspend = await operator('POST', `/v1/instances/${id}/unsuspend?wait=true`);
    assert.equal(unsuspend.body.state, 'stopped');
    assert.equal((await api('POST', `/v1/instances/${id}/unsuspend`)).status, 403);
    assert.equal(
      (await operator('POST', `/v1/instances/${id}/unsuspend`)).status,
      409,
      'not suspended any more',
    );
  });

  it('refuses a rename onto a slug another instance holds, and changes nothing', async () => {
    const { id } = await newInstance('first-name');
    await newInstance('taken-name');
    const clash = await api('PATCH', `/v1/instances/${id}?wait=true`, { name: 'Taken Name' });
    assert.equal(clash.status, 409, JSON.stringify(clash.body));
    assert.equal(clash.body.code, 'already_exists');
    assert.equal((await api('GET', `/v1/instances/${id}`)).body.name, 'first-name');
  });

  it('keeps order and state when 100 random commands arrive at once', async () => {
    const { id } = await newInstance('stormy');
    const commands = ['start', 'stop', 'restart', 'scale', 'patch'] as const;
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const sent = Array.from(
      { length: 100 },
      () => commands[Math.floor(random() * commands.length)] ?? 'stop',
    ).map(async (command, i) => {
      const key = `storm-${id}-${i}`;
      const headers = { 'Idempotency-Key': key };
      const send = () => {
        if (command === 'scale')
          return api('POST', `/v1/instances/${id}/scale`, { memory_mb: 64 + i }, headers);
        if (command === 'patch')
          return api('PATCH', `/v1/instances/${id}`, { labels: { i: String(i) } }, headers);
        return api('POST', `/v1/instances/${id}/${command}`, undefined, headers);
      };
      // A 503 says the command may still be applied and to send it again with its key, as a client would.
      let res = await send();
      for (let retry = 0; retry < 5 && res.status === 503 && res.headers.get('retry-after'); retry++) {
        await new Promise((r) => setTimeout(r, 1_000 * Number(res.headers.get('retry-after'))));
        res = await send();
      }
      return { key, res };
    });
    const answers = await Promise.all(sent);
    const statuses = new Map<number, number>();
    for (const { res } of answers) statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    for (const status of statuses.keys())
      assert.ok(
        [200, 202, 409, 429].includes(status),
        `unexpected ${status}: ${JSON.stringify([...statuses])}`,
      );
    const accepted = answers.filter((a) => a.res.status === 202 || a.res.status === 200);
    assert.ok(accepted.length > 0, `some accepted: ${JSON.stringify([...statuses])}`);

    const handle = stack.client.workflow.getHandle(instanceWorkflowId(id));
    // Drain: a final stop with wait returns after everything queued before it.
    let snapshot = await handle.query(snapshotQuery);
    for (let i = 0; i < 200 && snapshot.pending.length > 0; i++) {
      await new Promise((r) => setTimeout(r, 250));
      snapshot = await handle.query(snapshotQuery);
    }
    assert.equal(snapshot.pending.length, 0);
    assert.ok(
      ['running', 'stopped'].includes(snapshot.instance.state),
      `settled, not ${snapshot.instance.state}`,
    );

    const row = await stack.orm.em.fork().findOneOrFail(InstanceRecordSchema, { id });
    assert.deepEqual(
      recordToInstance(row),
      JSON.parse(JSON.stringify(snapshot.instance)),
      'the read model equals the snapshot',
    );

    const conclusions = conclusionsByRequest(await eventsOf(stack.orm, id));
    for (const { key } of accepted) {
      const concluded = [...conclusions.entries()]
        .filter(([requestId]) => requestId === key || requestId.endsWith(`:${key}`))
        .flatMap(([, e]) => e);
      assert.equal(concluded.length, 1, `${key} concluded exactly once`);
    }
  });
});
