import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { InstanceRecordSchema } from '../db/entities/instance-record.ts';
import { recordToInstance } from '../db/instance-mapping.ts';
import { commandMessages, instanceWorkflowId, snapshotQuery } from '../workflows/messages.ts';
import { httpdService, removeInstances, removeTenantLeftovers } from './support/docker.ts';
import { conclusionsByRequest, eventsOf } from './support/events.ts';
import { apiClient } from './support/http.ts';
import { type Stack, startStack, uniqueTenant } from './support/stack.ts';

// Real Temporal, PostgreSQL and Docker. Commands go straight to the workflow (the API wraps the same updates).
describe('continue-as-new keeps every command', () => {
  let stack: Stack;
  const tenant = uniqueTenant('can');
  const created: string[] = [];

  before(async () => {
    await removeTenantLeftovers('ten_can_');
    stack = await startStack({ env: { CTRLPLANE_MAX_COMMANDS_PER_RUN: '40' } });
  });

  after(async () => {
    await stack?.close();
    await removeInstances(created);
  });

  it('applies 300 commands across several runs, each exactly once, with the state intact', async () => {
    const api = apiClient(stack.api.url, await stack.token(tenant));
    const res = await api('POST', '/v1/instances?wait=30s', {
      name: 'long-lived',
      services: [httpdService('long')],
    });
    assert.equal(res.body.state, 'running');
    const id = res.body.id;
    created.push(id);
    const handle = stack.client.workflow.getHandle(instanceWorkflowId(id));

    const requestIds: string[] = [];
    for (let batch = 0; batch < 30; batch++) {
      // Ten at a time (nine updates and a signal): the server admits ten in-flight updates per workflow.
      await Promise.all(
        Array.from({ length: 10 }, async (_, i) => {
          const n = batch * 10 + i;
          const request_id = `label-${n}-${randomUUID()}`;
          requestIds.push(request_id);
          if (i === 9) {
            // One in ten as a signal: fire and forget, applied in order all the same.
            await handle.signal(commandMessages.update.signal, { request_id, labels: { n: String(n) } });
          } else {
            await handle.executeUpdate(commandMessages.update.update, {
              args: [{ request_id, labels: { n: String(n) } }],
            });
          }
        }),
      );
    }
    // A repeated request id is not applied twice, even after the run that saw it has ended.
    const repeated = requestIds[5] ?? '';
    await handle.executeUpdate(commandMessages.update.update, {
      args: [{ request_id: repeated, labels: { n: 'again' } }],
    });

    const stop = await api('POST', `/v1/instances/${id}/stop?wait=true`);
    assert.equal(stop.status, 200, JSON.stringify(stop.body));

    const snapshot = await handle.query(snapshotQuery);
    assert.equal(snapshot.instance.state, 'stopped');
    assert.notEqual(snapshot.instance.labels?.n, 'again');
    assert.equal(snapshot.pending.length, 0);

    const runs: string[] = [];
    for await (const wf of stack.client.workflow.list({ query: `WorkflowId="${instanceWorkflowId(id)}"` }))
      runs.push(wf.runId);
    assert.ok(runs.length >= 7, `300 commands at 40 per run span at least 7 runs, saw ${runs.length}`);

    const conclusions = conclusionsByRequest(await eventsOf(stack.orm, id));
    for (const request_id of requestIds) {
      assert.equal(conclusions.get(request_id)?.length, 1, `${request_id} concluded exactly once`);
      assert.equal(conclusions.get(request_id)?.[0]?.payload.conclusion, 'succeeded');
    }

    const row = await stack.orm.em.fork().findOneOrFail(InstanceRecordSchema, { id });
    assert.deepEqual(
      recordToInstance(row),
      JSON.parse(JSON.stringify(snapshot.instance)),
      'read model equals the snapshot',
    );
    assert.equal(row.seq, snapshot.seq);
  });
});
