import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { temporalCliPath } from '../scripts/temporal-cli.ts';
import { instanceWorkflowId } from '../workflows/messages.ts';
import {
  containersOf,
  docker,
  httpdService,
  removeInstances,
  removeTenantLeftovers,
} from './support/docker.ts';
import { conclusionsByRequest, eventsOf, type StoredEvent } from './support/events.ts';
import { apiClient, eventually } from './support/http.ts';
import { type Stack, startStack, uniqueTenant } from './support/stack.ts';

const run = promisify(execFile);

// Real Temporal (its CLI binary), PostgreSQL and Docker: an operator drives an instance from outside the API.
describe('a signal sent by hand from the Temporal CLI or a raw client', () => {
  let stack: Stack;
  let api: ReturnType<typeof apiClient>;
  const tenant = uniqueTenant('handsig');
  const created: string[] = [];

  before(async () => {
    await removeTenantLeftovers('ten_handsig_');
    stack = await startStack();
    api = apiClient(stack.api.url, await stack.token(tenant));
  });

  after(async () => {
    await stack?.close();
    await removeInstances(created);
  });

  async function newInstance(name: string): Promise<string> {
    const res = await api('POST', '/v1/instances?wait=30s', { name, services: [httpdService(name)] });
    assert.equal(res.body.state, 'running', JSON.stringify(res.body));
    created.push(res.body.id);
    return res.body.id;
  }

  /** `temporal workflow signal` as an operator types it, against the run's server and namespace. */
  async function cliSignal(id: string, name: string, input?: string): Promise<void> {
    await run(temporalCliPath(), [
      'workflow',
      'signal',
      '--address',
      stack.config.TEMPORAL_ADDRESS,
      '--namespace',
      stack.config.TEMPORAL_NAMESPACE,
      '--workflow-id',
      instanceWorkflowId(id),
      '--name',
      name,
      ...(input === undefined ? [] : ['--input', input]),
    ]);
  }

  async function settles(id: string, state: string): Promise<void> {
    await eventually(
      `${id} ${state}`,
      async () => (await api('GET', `/v1/instances/${id}`)).body.state === state,
      60_000,
    );
  }

  /** The concluding events of commands whose request id the workflow derived (none was sent). */
  async function derivedConclusions(id: string): Promise<StoredEvent[]> {
    const byRequest = conclusionsByRequest(await eventsOf(stack.orm, id));
    return [...byRequest]
      .filter(([requestId]) => requestId.startsWith('signal/'))
      .flatMap(([, events]) => events);
  }

  it('applies a CLI signal with no input, and one with {}, each once, and records them as commands', async () => {
    const id = await newInstance('cli');
    const [container] = await containersOf(id);
    assert.ok(container);

    await cliSignal(id, 'stop');
    await settles(id, 'stopped');
    assert.equal(
      (await docker.getContainer(container.Id).inspect()).State.Running,
      false,
      'the container stopped',
    );

    await cliSignal(id, 'start', '{}');
    await settles(id, 'running');
    assert.equal(
      (await docker.getContainer(container.Id).inspect()).State.Running,
      true,
      'and started again',
    );

    const concluded = await derivedConclusions(id);
    assert.deepEqual(
      concluded.map((e) => [e.type, e.payload.command, e.payload.conclusion]),
      [
        ['instance.stopped', 'stop', 'succeeded'],
        ['instance.started', 'start', 'succeeded'],
      ],
    );
    const ids = concluded.map((e) => String(e.payload.request_id));
    assert.equal(new Set(ids).size, 2, `two request ids: ${ids.join(', ')}`);
    const events = await api('GET', `/v1/instances/${id}/events`);
    assert.ok(
      events.body.items.some((e: { payload: { request_id?: string } }) => e.payload.request_id === ids[0]),
      'the API lists the event with its derived request id',
    );
  });

  it('rejects an invalid one visibly instead of dropping it, and applies a raw client signal without arguments', async () => {
    const id = await newInstance('raw');
    const handle = stack.client.workflow.getHandle(instanceWorkflowId(id));

    await cliSignal(id, 'scale', '{"replicas": "many"}');
    await eventually(
      'the scale is rejected',
      async () => (await derivedConclusions(id)).some((e) => e.payload.conclusion === 'rejected'),
      30_000,
    );
    const [rejected] = await derivedConclusions(id);
    assert.equal(rejected?.type, 'instance.command_rejected');
    assert.equal(rejected?.payload.code, 'invalid_request');
    assert.match(String(rejected?.payload.reason), /^replicas: /);

    // By name, with no payload at all: what a client that does not know the workflow's types sends.
    await handle.signal('stop');
    await settles(id, 'stopped');
    const stopped = (await derivedConclusions(id)).filter((e) => e.payload.command === 'stop');
    assert.deepEqual(
      stopped.map((e) => e.payload.conclusion),
      ['succeeded'],
    );
  });
});
