/**
 * Regenerates test/histories/*.json: real histories of each lifecycle path, recorded against a fresh dev
 * server, PostgreSQL database and the Docker engine. test/workflow-replay.test.ts replays them with the
 * current workflow code, so a change that would break running instances (non-determinism) fails the suite.
 *
 *   scripts/node --import tsx scripts/record-histories.ts      (after `npm run setup`)
 */
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { containersOf, docker, httpdService, removeInstances } from '../test/support/docker.ts';
import { apiClient, eventually } from '../test/support/http.ts';
import { startStack } from '../test/support/stack.ts';
import { commandMessages, instanceWorkflowId } from '../workflows/messages.ts';
import { REPO_ROOT } from './temporal-cli.ts';
import { startTestEnvironment } from './test-environment.ts';

const environment = await startTestEnvironment();
Object.assign(process.env, environment.env, { LOG_LEVEL: 'warn' });
const stack = await startStack({
  env: { CTRLPLANE_DRIFT_CHECK_INTERVAL_MS: '1000', CTRLPLANE_MAX_COMMANDS_PER_RUN: '6' },
});
const api = apiClient(stack.api.url, await stack.token(`ten_histories_${randomUUID().slice(0, 8)}`));
const created: string[] = [];

async function create(name: string, services: unknown[]): Promise<string> {
  const res = await api('POST', '/v1/instances', { name, services });
  if (res.status !== 201) throw new Error(`create ${name}: ${res.status} ${JSON.stringify(res.body)}`);
  created.push(res.body.id);
  return res.body.id;
}

async function settled(id: string, state: string): Promise<void> {
  await eventually(
    `${id} ${state}`,
    async () => (await api('GET', `/v1/instances/${id}`)).body.state === state,
    60_000,
  );
}

function send<N extends keyof typeof commandMessages>(
  id: string,
  name: N,
  args: Record<string, unknown> = {},
) {
  const handle = stack.client.workflow.getHandle(instanceWorkflowId(id));
  const update = commandMessages[name].update as (typeof commandMessages)['update']['update'];
  return handle.executeUpdate(update, { args: [{ request_id: randomUUID(), ...args }] });
}

async function save(name: string, id: string): Promise<void> {
  const handle = stack.client.workflow.getHandle(instanceWorkflowId(id));
  await handle.result().catch(() => undefined);
  // The first run of the workflow: with a low continue-as-new threshold it ends in ContinueAsNew.
  const first = stack.client.workflow.getHandle(instanceWorkflowId(id), (await firstRunId(id)) ?? undefined);
  const history = await first.fetchHistory();
  writeFileSync(`${REPO_ROOT}test/histories/${name}.json`, `${historyToJSON(history)}\n`);
  console.log(`recorded ${name}: ${history.events?.length ?? 0} events`);
}

async function firstRunId(id: string): Promise<string | undefined> {
  const runs: { runId: string; startTime: Date }[] = [];
  for await (const wf of stack.client.workflow.list({ query: `WorkflowId="${instanceWorkflowId(id)}"` }))
    runs.push(wf);
  return runs.sort((a, b) => a.startTime.getTime() - b.startTime.getTime())[0]?.runId;
}

try {
  // Every command, in one instance's life (it continues as new after six commands).
  const life = await create('history-life', [httpdService('life')]);
  await settled(life, 'running');
  await send(life, 'stop');
  await send(life, 'start');
  await send(life, 'restart');
  await send(life, 'scale', { memory_mb: 96 });
  await send(life, 'suspend', { reason: 'billing' });
  await send(life, 'unsuspend', { reason: 'billing' });
  await send(life, 'update', { labels: { team: 'a' }, name: 'history-life-renamed' });
  await send(life, 'delete');
  await save('every-command', life);

  // A provision that fails for good, then a delete from failed; and a rejected signal on the way.
  const broken = await create('history-broken', [{ name: 'web', image: 'ctrlplane-test/does-not-exist:1' }]);
  await settled(broken, 'failed');
  await stack.client.workflow
    .getHandle(instanceWorkflowId(broken))
    .signal(commandMessages.stop.signal, { request_id: randomUUID() });
  await send(broken, 'delete');
  await save('failed-provision-and-rejected-signal', broken);

  // Drift: a container killed from outside, seen by the periodic check, then started again by a command.
  const drifter = await create('history-drift', [httpdService('drift')]);
  await settled(drifter, 'running');
  const [container] = await containersOf(drifter);
  if (!container) throw new Error('no container');
  await docker.getContainer(container.Id).kill();
  await settled(drifter, 'failed');
  await send(drifter, 'start');
  await send(drifter, 'delete');
  await save('drift', drifter);
} finally {
  await stack.close();
  await removeInstances(created);
  await environment.teardown();
}
