import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { temporal } from '@temporalio/proto';
import { instanceWorkflowId } from '../workflows/messages.ts';
import { httpdService, removeInstances, removeTenantLeftovers } from './support/docker.ts';
import { apiClient } from './support/http.ts';
import { type Stack, startStack, uniqueTenant } from './support/stack.ts';

/** A user-metadata payload as the Temporal UI shows it: JSON text. */
function text(payload: temporal.api.common.v1.IPayload | null | undefined): string | undefined {
  return payload?.data ? (JSON.parse(Buffer.from(payload.data).toString('utf8')) as string) : undefined;
}

// Real Temporal, PostgreSQL and Docker: the history of an instance as the Temporal UI lists it.
describe("an instance's workflow history", () => {
  let stack: Stack;
  let api: ReturnType<typeof apiClient>;
  const tenant = uniqueTenant('history');
  const created: string[] = [];

  before(async () => {
    await removeTenantLeftovers('ten_history_');
    stack = await startStack();
    api = apiClient(stack.api.url, await stack.token(tenant));
  });

  after(async () => {
    await stack?.close();
    await removeInstances(created);
  });

  it('reads as its lifecycle: each step of create, stop, start and delete is named on its activity', async () => {
    const res = await api('POST', '/v1/instances?wait=60s', {
      name: 'readable',
      services: [httpdService('readable')],
    });
    assert.equal(res.body.state, 'running', JSON.stringify(res.body));
    const id = res.body.id;
    created.push(id);
    for (const command of ['stop', 'start']) {
      assert.equal((await api('POST', `/v1/instances/${id}/${command}?wait=true`)).status, 200);
    }
    assert.equal((await api('DELETE', `/v1/instances/${id}?wait=true`)).status, 204);

    const handle = stack.client.workflow.getHandle(instanceWorkflowId(id));
    const described = await handle.describe();
    assert.equal(await described.staticSummary(), `Instance "readable" (${id}) of ${tenant} on docker`);
    const history = (await handle.fetchHistory()).events ?? [];
    const steps = history
      .filter((e) => e.activityTaskScheduledEventAttributes)
      .map((e) => text(e.userMetadata?.summary));
    const actor = `user-${tenant}`;
    assert.deepEqual(steps, [
      '#1 instance.provisioning (provision)',
      'provision "readable" on docker: 1 service(s)',
      '#2 instance.starting provisioning → starting (provision)',
      "start the instance's workloads on docker",
      '#3 instance.created starting → running (provision) · succeeded',
      `#4 instance.stopping running → stopping (stop by ${actor})`,
      "stop the instance's workloads on docker",
      `#5 instance.stopped stopping → stopped (stop by ${actor}) · succeeded`,
      `#6 instance.starting stopped → starting (start by ${actor})`,
      "start the instance's workloads on docker",
      `#7 instance.started starting → running (start by ${actor}) · succeeded`,
      `#8 instance.destroying running → destroying (delete by ${actor})`,
      'remove everything the instance has on docker',
      `#9 instance.deleted destroying → destroyed (delete by ${actor}) · succeeded`,
    ]);
    assert.equal(history.filter((e) => e.timerStartedEventAttributes).length, 0, 'no timer among them');
  });
});
