import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import proto from '@temporalio/proto';
import { OPERATOR_ROLE } from '../api/roles.ts';
import { dockerClient } from '../providers/docker/docker-client.ts';
import { tenantNamespace } from '../providers/kubernetes/index.ts';
import { OwnDockerd } from '../scripts/chaos/own-stack.ts';
import { type LocalKubernetes, startLocalKubernetes } from '../scripts/kubernetes-cluster.ts';
import { REPO_ROOT } from '../scripts/temporal-cli.ts';
import { instanceWorkflowId, pendingCommandsQuery } from '../workflows/messages.ts';
import { docker, httpdService, removeInstances } from './support/docker.ts';
import { conclusionsByRequest, eventsOf } from './support/events.ts';
import { apiClient, eventually } from './support/http.ts';
import { Cluster } from './support/kubernetes.ts';
import { replayHistory } from './support/replay.ts';
import { type Stack, startStack, uniqueTenant } from './support/stack.ts';
import { spawnAgent, type WorkerProcess } from './support/worker-process.ts';

// What runs for real: Temporal, PostgreSQL, TWO Docker engines (the machine's, and a second dockerd started for
// this file in its own network namespace, with its own socket, data root, exec root, bridge and address pool)
// and TWO Kubernetes control planes (the run's, and a second one started for this file: etcd, kube-apiserver,
// controllers; kwok plays each one's node, so pods are scheduled and reported Running but no container runs).
// Each of the four providers has its own agent: a separate process running the production entry
// `worker/main.ts --provider NAME`. The workflows and the read model's activities run on the shared worker in
// this process, whose registry has no provider the agents drive.
const PROVIDERS = ['docker-a', 'docker-b', 'k8s-a', 'k8s-b'] as const;
type ProviderName = (typeof PROVIDERS)[number];

describe('a fleet of two Docker engines and two Kubernetes clusters, each driven by its own agent', () => {
  let stack: Stack;
  let api: ReturnType<typeof apiClient>;
  let engineB: OwnDockerd;
  let clusterB: LocalKubernetes;
  let kubeA: Cluster;
  let kubeB: Cluster;
  let agentEnv: Record<string, string>;
  const agents = new Map<ProviderName, WorkerProcess>();
  const tenant = uniqueTenant('fleet');
  const prefix = `fleet-${randomBytes(3).toString('hex')}`;
  const system = `${prefix}-system`;
  const ns = tenantNamespace(prefix, tenant);
  /** Instance id → the provider placement chose. */
  const placed = new Map<string, ProviderName>();

  const queueOf = (provider: ProviderName) => `${stack.config.CTRLPLANE_TASK_QUEUE}/${provider}`;
  const instancesOn = (provider: ProviderName) =>
    [...placed].filter(([, p]) => p === provider).map(([id]) => id);

  async function startAgent(provider: ProviderName): Promise<void> {
    const agent = spawnAgent(provider, agentEnv);
    agents.set(provider, agent);
    await agent.waitForLine(/"msg":"agent polling"/, 120_000);
  }

  before(async () => {
    const octet = 230 + (process.pid % 20);
    [engineB, clusterB] = await Promise.all([
      OwnDockerd.create(String(process.pid), octet, join(tmpdir(), `fleet-dockerd-${process.pid}.log`)),
      startLocalKubernetes(`${REPO_ROOT}.data/test/k8s-fleet-${process.pid}`),
    ]);
    kubeA = new Cluster();
    const kcB = new KubeConfig();
    kcB.loadFromFile(clusterB.kubeconfig);
    kubeB = new Cluster(kcB);

    const capacity = { instances: 2, memory_mb: 1024 };
    const fleet = {
      providers: {
        'docker-a': { kind: 'docker', docker_host: 'unix:///var/run/docker.sock', capacity },
        'docker-b': {
          kind: 'docker',
          docker_host: engineB.dockerHost,
          network_pool: `10.${octet}.128.0/17`,
          capacity,
        },
        'k8s-a': { kind: 'kubernetes', kubeconfig: kubeA.kubeconfigPath, capacity },
        'k8s-b': { kind: 'kubernetes', kubeconfig: clusterB.kubeconfig, capacity },
      },
    };
    const file = join(mkdtempSync(join(tmpdir(), 'fleet-')), 'providers.yaml');
    writeFileSync(file, JSON.stringify(fleet, null, 2));
    const env = {
      CTRLPLANE_PROVIDERS_FILE: file,
      CTRLPLANE_K8S_NAMESPACE_PREFIX: prefix,
      CTRLPLANE_K8S_SYSTEM_NAMESPACE: system,
    };
    stack = await startStack({ env });
    api = apiClient(stack.api.url, await stack.token(tenant));
    agentEnv = {
      ...env,
      CTRLPLANE_TASK_QUEUE: stack.config.CTRLPLANE_TASK_QUEUE,
      CTRLPLANE_SPEC_HASH_KEY: stack.config.CTRLPLANE_SPEC_HASH_KEY ?? '',
      CTRLPLANE_DOCKER_ALLOWED_IMAGES: 'docker.io/ctrlplane-test/*',
      CTRLPLANE_DOCKER_STOP_TIMEOUT: '2',
      CTRLPLANE_PROVIDER_WATCH: 'false',
      LOG_LEVEL: 'info', // for its 'agent polling' line
    };
    await Promise.all(PROVIDERS.map(startAgent));
  });

  after(async () => {
    for (const agent of agents.values()) await agent.kill();
    await stack?.close();
    await removeInstances(instancesOn('docker-a'));
    await engineB?.destroy();
    await clusterB?.stop({ removeState: true });
    for (const name of [ns, system]) await kubeA?.delete('v1', 'Namespace', name);
    for (const kind of ['ValidatingAdmissionPolicyBinding', 'ValidatingAdmissionPolicy']) {
      await kubeA?.delete('admissionregistration.k8s.io/v1', kind, `${system}-service-exposure`);
    }
  });

  const service = (name: string) => ({
    ...httpdService(name),
    resources: { cpu_millis: 100, memory_mb: 256, replicas: 1 },
  });

  it('places creates that name no provider on the one with the most free capacity, and refuses a full fleet before writing anything', async () => {
    for (let i = 0; i < 8; i++) {
      const res = await api('POST', '/v1/instances?wait=90s', {
        name: `fleet-${i}`,
        services: [service(`f${i}`)],
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      assert.equal(res.body.state, 'running', JSON.stringify(res.body));
      assert.match(
        res.body.placement,
        new RegExp(`^placed on ${res.body.provider_name}, the eligible provider with the most free capacity`),
      );
      placed.set(res.body.id, res.body.provider_name);
    }
    // Equal limits: each create goes to the emptiest, so the eight spread two to each provider.
    for (const provider of PROVIDERS)
      assert.equal(instancesOn(provider).length, 2, `${provider}: ${[...placed]}`);

    // Each instance is where the read model says it is, and nowhere else.
    const engineBClient = dockerClient(engineB.dockerHost);
    const containersOn = async (engine: typeof docker, id: string) =>
      (await engine.listContainers({ all: true, filters: { label: [`ctrlplane.instance=${id}`] } })).length;
    for (const id of instancesOn('docker-a')) {
      assert.equal(await containersOn(docker, id), 1);
      assert.equal(await containersOn(engineBClient, id), 0);
    }
    for (const id of instancesOn('docker-b')) {
      assert.equal(await containersOn(engineBClient, id), 1);
      assert.equal(await containersOn(docker, id), 0);
    }
    for (const id of instancesOn('k8s-a')) {
      assert.equal((await kubeA.pods(ns, id)).length, 1);
      assert.equal((await kubeB.pods(ns, id)).length, 0);
    }
    for (const id of instancesOn('k8s-b')) {
      assert.equal((await kubeB.pods(ns, id)).length, 1);
      assert.equal((await kubeA.pods(ns, id)).length, 0);
    }

    const full = await api('POST', '/v1/instances', { name: 'one-too-many', services: [service('x')] });
    assert.equal(full.status, 503, JSON.stringify(full.body));
    assert.equal(full.body.code, 'capacity_exhausted');
    for (const provider of PROVIDERS)
      assert.match(full.body.detail, new RegExp(`${provider}: it holds 2 instances, its limit is 2`));
    assert.ok(full.headers.get('retry-after'));
    const listed = await api('GET', '/v1/instances?limit=100');
    assert.equal(listed.body.items.length, 8, 'the refused create wrote no row');
  });

  it("ran every provider call of an instance on its provider's task queue, by its provider's agent", async () => {
    assert.equal(placed.size, 8);
    for (const [id, provider] of placed) {
      const history = await stack.client.workflow.getHandle(instanceWorkflowId(id)).fetchHistory();
      const scheduled = new Map<string, { activity: string; queue: string }>();
      const ran: { activity: string; queue: string; identity: string }[] = [];
      for (const event of history.events ?? []) {
        const s = event.activityTaskScheduledEventAttributes;
        if (s)
          scheduled.set(String(event.eventId), {
            activity: s.activityType?.name ?? '',
            queue: s.taskQueue?.name ?? '',
          });
        const started = event.activityTaskStartedEventAttributes;
        if (started) {
          const of = scheduled.get(String(started.scheduledEventId));
          assert.ok(of);
          ran.push({ ...of, identity: started.identity ?? '' });
        }
      }
      const providerCalls = ran.filter(
        (r) =>
          r.activity !== 'recordTransition' && r.activity !== 'reserveSlug' && r.activity !== 'loadRelease',
      );
      assert.deepEqual(
        providerCalls.map((r) => r.activity),
        ['provisionInstance', 'startInstance'],
      );
      for (const call of providerCalls) {
        assert.equal(call.queue, queueOf(provider), `${id} ${call.activity}`);
        assert.match(call.identity, new RegExp(`^agent:${provider}@`), `${id} ${call.activity}`);
      }
      for (const write of ran.filter((r) => r.activity === 'recordTransition')) {
        assert.equal(
          write.queue,
          stack.config.CTRLPLANE_TASK_QUEUE,
          'the read model is written by the shared worker',
        );
      }
    }
  });

  it("an agent killed stalls only its host's commands, which complete exactly once when it returns", async () => {
    const [onB] = instancesOn('docker-b');
    const [onA] = instancesOn('docker-a');
    const [onK8sB] = instancesOn('k8s-b');
    assert.ok(onA && onB && onK8sB);
    await agents.get('docker-b')?.kill('SIGKILL');

    // The stop of the instance on docker-b waits; the API's answer says for what.
    const waiting = await api('POST', `/v1/instances/${onB}/stop?wait=25s`, undefined, {
      'Idempotency-Key': `stop-${onB}`,
    });
    assert.equal(waiting.status, 202, JSON.stringify(waiting.body));
    assert.equal(waiting.body.state, 'stopping');
    assert.equal(waiting.body.waiting_for?.provider_name, 'docker-b', JSON.stringify(waiting.body));
    assert.equal(waiting.body.waiting_for.task_queue, queueOf('docker-b'));
    assert.equal(waiting.body.waiting_for.activity, 'stopInstance');
    const pending = await stack.client.workflow
      .getHandle(instanceWorkflowId(onB))
      .query(pendingCommandsQuery);
    assert.equal(pending[0]?.name, 'stop');
    assert.match(pending[0]?.waiting_for?.message ?? '', /waiting for the agent of provider docker-b/);

    // The other hosts are untouched: their commands complete while docker-b's agent is away.
    for (const id of [onA, onK8sB]) {
      const stopped = await api('POST', `/v1/instances/${id}/stop?wait=60s`);
      assert.equal(stopped.status, 200, JSON.stringify(stopped.body));
      assert.equal(stopped.body.state, 'stopped');
    }
    // The operator sees each provider's limits, use and agent; the agents that run have polled just now.
    const operator = apiClient(stack.api.url, await stack.token(uniqueTenant('fleetops'), [OPERATOR_ROLE]));
    const capacity = await operator('GET', '/v1/admin/capacity');
    assert.equal(capacity.status, 200, JSON.stringify(capacity.body));
    for (const provider of PROVIDERS) {
      const entry = capacity.body.fleet[provider];
      assert.deepEqual(entry.limits, { instances: 2, memory_mb: 1024 });
      assert.equal(entry.used.instances, 2, provider);
      assert.equal(entry.agent.task_queue, queueOf(provider));
      if (provider === 'docker-b') continue;
      assert.ok(
        entry.agent.pollers.some((p: { identity: string }) => p.identity.startsWith(`agent:${provider}@`)),
        `${provider}: ${JSON.stringify(entry.agent)}`,
      );
    }

    const engineBClient = dockerClient(engineB.dockerHost);
    const [containerB] = await engineBClient.listContainers({
      filters: { label: [`ctrlplane.instance=${onB}`] },
    });
    assert.equal(
      containerB?.State,
      'running',
      'nothing touched the instance on docker-b while its agent was down',
    );

    await startAgent('docker-b');
    await eventually(
      'the waiting stop to complete',
      async () => (await api('GET', `/v1/instances/${onB}`)).body.state === 'stopped',
      120_000,
    );
    const [after] = await engineBClient.listContainers({
      all: true,
      filters: { label: [`ctrlplane.instance=${onB}`] },
    });
    assert.notEqual(after?.State, 'running');
    const stops = conclusionsByRequest(await eventsOf(stack.orm, onB)).get(`stop:stop-${onB}`) ?? [];
    assert.equal(stops.length, 1, 'the stop concluded exactly once');
    assert.equal(stops[0]?.payload.conclusion, 'succeeded');

    // Its history holds the wait (a stop scheduled, not picked up in time, scheduled again) and replays.
    const history = await stack.client.workflow.getHandle(instanceWorkflowId(onB)).fetchHistory();
    const notPickedUp = (history.events ?? []).filter(
      (e) =>
        e.activityTaskTimedOutEventAttributes?.failure?.timeoutFailureInfo?.timeoutType ===
        proto.temporal.api.enums.v1.TimeoutType.TIMEOUT_TYPE_SCHEDULE_TO_START,
    );
    assert.ok(notPickedUp.length >= 1, 'the stop timed out in the queue at least once');
    await replayHistory(history, instanceWorkflowId(onB));
  });

  it('a create naming no provider skips a host that is down and goes to the next with room', async () => {
    // docker-b gets the most room (both its instances deleted) and docker-a the next (one deleted); the
    // clusters stay full. Then docker-b's engine stops.
    for (const id of [...instancesOn('docker-b'), ...instancesOn('docker-a').slice(0, 1)]) {
      const deleted = await api('DELETE', `/v1/instances/${id}?wait=60s`);
      assert.equal(deleted.status, 204, JSON.stringify(deleted.body));
      placed.delete(id);
    }
    await engineB.stop();
    const res = await api('POST', '/v1/instances?wait=90s', {
      name: 'past-a-dead-host',
      services: [service('p')],
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.body.provider_name, 'docker-a');
    assert.match(res.body.placement, /^placed on docker-a, /);
    assert.equal(res.body.state, 'running');
    placed.set(res.body.id, res.body.provider_name);
    // Named, the dead host is refused as before: the caller asked for it.
    const named = await api('POST', '/v1/instances', {
      name: 'on-b',
      provider_name: 'docker-b',
      services: [service('b')],
    });
    assert.equal(named.status, 503, JSON.stringify(named.body));
    assert.equal(named.body.code, 'provider_unavailable');
  });
});
