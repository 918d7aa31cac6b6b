import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { instanceWorkflowId } from '../workflows/messages.ts';
import { httpdService, removeInstances, removeTenantLeftovers } from './support/docker.ts';
import { apiClient, eventually } from './support/http.ts';
import { type Stack, startStack, uniqueTenant } from './support/stack.ts';

// Real Temporal dev server with its Web UI (started by scripts/run-tests.ts), PostgreSQL and Docker.
describe('operators find instances in Temporal', () => {
  let stack: Stack;
  let api: ReturnType<typeof apiClient>;
  const tenant = uniqueTenant('vis');
  const created: string[] = [];

  before(async () => {
    await removeTenantLeftovers('ten_vis_');
    stack = await startStack();
    api = apiClient(stack.api.url, await stack.token(tenant));
  });

  after(async () => {
    await stack?.close();
    await removeInstances(created);
  });

  it('lists the workflow in the Web UI and finds it by CtrlplaneState and CtrlplaneTenantId', async () => {
    const res = await api('POST', '/v1/instances?wait=30s', {
      name: 'visible',
      services: [httpdService('visible')],
    });
    assert.equal(res.body.state, 'running');
    const id = res.body.id;
    created.push(id);
    const workflowId = instanceWorkflowId(id);

    const query = `CtrlplaneState="running" AND CtrlplaneTenantId="${tenant}"`;
    const found = await eventually('the visibility query to find the instance', async () => {
      const ids: string[] = [];
      for await (const wf of stack.client.workflow.list({ query })) ids.push(wf.workflowId);
      return ids.length > 0 ? ids : undefined;
    });
    assert.deepEqual(found, [workflowId]);

    const description = await stack.client.workflow.getHandle(workflowId).describe();
    assert.deepEqual(description.memo, { tenant_id: tenant, name: 'visible', provider: 'docker' });

    const uiUrl = process.env.TEMPORAL_UI_URL;
    assert.ok(uiUrl, 'scripts/run-tests.ts starts the dev server with its UI');
    const page = await fetch(uiUrl);
    assert.equal(page.status, 200, 'the Web UI serves its page');
    const listed = await eventually('the UI to list the workflow', async () => {
      const r = await fetch(
        `${uiUrl}/api/v1/namespaces/default/workflows?query=${encodeURIComponent(`WorkflowId="${workflowId}"`)}`,
      );
      const body = (await r.json()) as {
        executions?: { execution: { workflowId: string }; type: { name: string } }[];
      };
      return body.executions?.length ? body.executions : undefined;
    });
    assert.equal(listed[0]?.execution.workflowId, workflowId);
    assert.equal(listed[0]?.type.name, 'instanceWorkflow');

    await api('POST', `/v1/instances/${id}/stop?wait=true`);
    const stopped = await eventually('the stopped state to be searchable', async () => {
      const ids: string[] = [];
      for await (const wf of stack.client.workflow.list({
        query: `CtrlplaneState="stopped" AND CtrlplaneTenantId="${tenant}"`,
      })) {
        ids.push(wf.workflowId);
      }
      return ids.length ? ids : undefined;
    });
    assert.deepEqual(stopped, [workflowId]);
    assert.equal((await api('DELETE', `/v1/instances/${id}?wait=true`)).status, 204);
  });
});
