import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { containerName } from '../providers/docker/naming.ts';
import { docker, removeTenantLeftovers, TEST_IMAGE } from './support/docker.ts';
import { fetchText } from './support/docker-fixtures.ts';
import { apiClient, eventually } from './support/http.ts';
import { type Stack, startStack, uniqueTenant } from './support/stack.ts';
import { tenantRows, tenantWorkflowIds } from './support/tenant-footprint.ts';

/**
 * A tenant attacking the Docker host through the API, on the real engine with the operator's defaults (only the
 * default memory is lowered, so the memory hog needs little of the shared machine). The attacks are bounded —
 * the fork loop stops at 1500 processes, the hog at 300 MiB — so that a run against code without the limits
 * shows the failure without taking the machine down.
 */
describe('Docker: a tenant cannot take down the host', () => {
  const tenant = uniqueTenant('dockerattack');
  const created: string[] = [];
  let stack: Stack;
  let api: ReturnType<typeof apiClient>;

  const script = (name: string, sh: string) => ({
    name,
    image: TEST_IMAGE,
    command: ['/bin/sh', '-c', sh],
  });
  const httpd = (content: string) =>
    script('web', `mkdir -p /www && echo ${content} > /www/index.html && exec httpd -f -p 80 -h /www`);

  async function createRunning(name: string, services: unknown[]): Promise<string> {
    const res = await api('POST', '/v1/instances?wait=60s', { name, services });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    created.push(res.body.id);
    assert.equal(res.body.state, 'running', JSON.stringify(res.body));
    return res.body.id;
  }

  async function publicUrlOf(id: string): Promise<string> {
    const res = await api('GET', `/v1/instances/${id}`);
    const endpoint = (res.body.endpoints ?? []).find((e: { public: boolean }) => e.public);
    assert.ok(endpoint, `a public endpoint: ${JSON.stringify(res.body.endpoints)}`);
    return endpoint.url;
  }

  /** The engine, the API and a neighbour instance all answer, each within 5 s. */
  async function hostAnswers(neighbourUrl: string): Promise<number> {
    const started = Date.now();
    await docker.ping();
    assert.equal((await api('GET', '/healthz')).status, 200);
    assert.equal((await fetchText(neighbourUrl, 5_000)).trim(), 'neighbour');
    const took = Date.now() - started;
    assert.ok(took < 5_000, `the host answered in ${took} ms`);
    return took;
  }

  /** Runs refused requests and checks that they wrote nothing: no row, no event, no key, no workflow. */
  async function writesNothing(requests: () => Promise<void>): Promise<void> {
    const rows = await tenantRows(stack.orm, tenant);
    const workflows = await tenantWorkflowIds(stack.client, tenant);
    await requests();
    assert.deepEqual(await tenantRows(stack.orm, tenant), rows);
    assert.deepEqual(await tenantWorkflowIds(stack.client, tenant), workflows);
  }

  let neighbourUrl: string;

  before(async () => {
    await removeTenantLeftovers('ten_dockerattack_');
    stack = await startStack({ env: { CTRLPLANE_DOCKER_DEFAULT_MEMORY_MB: '64' } });
    api = apiClient(stack.api.url, await stack.token(tenant));
    const neighbour = await createRunning('neighbour', [
      { ...httpd('neighbour'), ports: [{ container: 80 }] },
    ]);
    neighbourUrl = await publicUrlOf(neighbour);
  });

  after(async () => {
    for (const id of created) await api('DELETE', `/v1/instances/${id}?wait=30s`).catch(() => {});
    await stack?.close();
    await removeTenantLeftovers('ten_dockerattack_');
  });

  it('keeps a fork bomb inside the pids limit (512 by default); the host and a neighbour keep answering', async (t) => {
    const id = await createRunning('forkbomb', [
      {
        // 512 of these processes hold about 63 MiB (kernel stacks and page tables): under the 64 MiB default of
        // this stack the memory limit, not the pids limit, stopped the loop at 27 or 81 processes in some runs.
        resources: { memory_mb: 256, cpu_millis: 0, replicas: 1 },
        ...script(
          'main',
          // ash gives up its loop at the first fork that fails: the loop runs in a subshell, the main shell goes on.
          // The process limit it runs under is printed first: RLIMIT_NPROC counts the user's processes on the
          // whole host, so an engine started under a low one makes the loop fail early, whatever the pids limit.
          "grep 'Max processes' /proc/self/limits; " +
            '(i=0; while [ $i -lt 1500 ]; do sleep 600 & i=$((i+1)); done) 2>/dev/null; echo spawned; exec sleep 3600',
        ),
      },
    ]);
    const name = containerName(id, 'main');
    const output = await eventually(
      'the fork loop to finish',
      async () => {
        const text = (await docker.getContainer(name).logs({ stdout: true })).toString();
        return text.includes('spawned') ? text : undefined;
      },
      60_000,
    );
    const nproc = /Max processes.*/.exec(output)?.[0]?.replace(/\s+/g, ' ') ?? 'no Max processes line';
    // The engine's count of the container's processes (its pids cgroup); a sample taken under load can come
    // back without it, so it is asked again until it has one.
    const current = await eventually(
      'a stats sample with the process count',
      async () => {
        const stats = (await docker.getContainer(name).stats({ stream: false })) as unknown as {
          pids_stats?: { current?: number };
        };
        return stats.pids_stats?.current || undefined;
      },
      30_000,
    );
    const listed = (await docker.getContainer(name).top()).Processes?.length ?? 0;
    t.diagnostic(
      `processes in the container after the fork loop: ${current} (engine top lists ${listed}; ${nproc})`,
    );
    assert.ok(listed <= 512, `at most 512 processes listed by the engine, not ${listed}`);
    assert.ok(current > 100, `the loop did fork (${current} processes; ${nproc})`);
    assert.ok(current <= 512, `at most 512 processes in the container, not ${current}`);
    assert.equal((await docker.getContainer(name).inspect()).HostConfig.PidsLimit, 512);
    t.diagnostic(`engine, API and neighbour answered in ${await hostAnswers(neighbourUrl)} ms`);
  });

  it('OOM-kills a memory hog inside its default memory limit (spec memory_mb 0); host and neighbour answer', async (t) => {
    const since = Math.floor(Date.now() / 1000) - 1;
    const id = await createRunning('memhog', [
      script('main', 'head -c 300m /dev/zero | tail > /dev/null; echo "hog exited $?"; exec sleep 3600'),
    ]);
    const name = containerName(id, 'main');
    const inspected = await docker.getContainer(name).inspect();
    const log = await eventually(
      'the hog to end',
      async () => {
        const text = (await docker.getContainer(name).logs({ stdout: true })).toString();
        return /hog exited \d+/.exec(text)?.[0];
      },
      60_000,
    );
    assert.equal(log, 'hog exited 137', 'the hog was killed (SIGKILL), not allowed its 300 MiB');
    assert.equal(inspected.HostConfig.Memory, 64 * 1024 * 1024, 'memory_mb 0 is the default, not unlimited');
    const events = await engineEvents(inspected.Id, since);
    assert.ok(
      events.includes('oom'),
      `the engine reported an OOM kill for the container: ${events.join(', ')}`,
    );
    t.diagnostic(`engine, API and neighbour answered in ${await hostAnswers(neighbourUrl)} ms`);
  });

  it('refuses a memory_mb above the ceiling with a 400 naming the field; nothing is written', async () => {
    await writesNothing(async () => {
      const res = await api('POST', '/v1/instances', {
        name: 'too-big',
        services: [
          { ...script('main', 'sleep 1'), resources: { memory_mb: 16_777_216, cpu_millis: 0, replicas: 1 } },
        ],
      });
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.equal(res.headers.get('content-type'), 'application/problem+json; charset=utf-8');
      assert.equal(res.body.code, 'invalid_request');
      assert.equal(res.body.errors?.[0]?.field, 'services[0].resources.memory_mb', JSON.stringify(res.body));
      assert.match(res.body.errors[0].message, /at most 8192/);
      const cpu = await api('POST', '/v1/instances', {
        name: 'too-many-cpus',
        services: [
          { ...script('main', 'sleep 1'), resources: { memory_mb: 0, cpu_millis: 1_000_000, replicas: 1 } },
        ],
      });
      assert.equal(cpu.status, 400, JSON.stringify(cpu.body));
      assert.equal(cpu.body.errors?.[0]?.field, 'services[0].resources.cpu_millis');
    });
  });

  it('refuses a scale above the ceiling with a 400 naming the field', async () => {
    const id = created[0] as string;
    const res = await api('POST', `/v1/instances/${id}/scale`, { memory_mb: 100_000 });
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.equal(res.body.errors?.[0]?.field, 'memory_mb');
  });

  it('refuses host ports below 1024 or outside the operator range with a 400 naming the field', async () => {
    await writesNothing(async () => {
      for (const host of [80, 22, 8080, 40000]) {
        const res = await api('POST', '/v1/instances', {
          name: `port-${host}`,
          services: [{ ...httpd('x'), ports: [{ container: 80 }, { container: 81, host }] }],
        });
        assert.equal(res.status, 400, `host port ${host}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.errors?.[0]?.field, 'services[0].ports[1].host');
        assert.match(res.body.errors[0].message, /30000-32767/);
      }
      const patched = await api('PATCH', `/v1/instances/${created[0]}`, {
        services: [{ ...httpd('x'), ports: [{ container: 80, host: 443 }] }],
      });
      assert.equal(patched.status, 400, JSON.stringify(patched.body));
      assert.equal(patched.body.errors?.[0]?.field, 'services[0].ports[0].host');
    });
  });

  it('publishes ports on the configured address only, from the operator range', async () => {
    const neighbour = await docker.getContainer(containerName(created[0] as string, 'web')).inspect();
    const bindings = neighbour.NetworkSettings.Ports['80/tcp'] ?? [];
    assert.ok(bindings.length > 0);
    for (const binding of bindings) {
      assert.equal(binding.HostIp, '127.0.0.1');
      const port = Number(binding.HostPort);
      assert.ok(port >= 30000 && port <= 32767, `host port ${port} is in the range`);
    }
    assert.deepEqual(neighbour.HostConfig.SecurityOpt, ['no-new-privileges:true']);
    assert.deepEqual(neighbour.HostConfig.LogConfig, {
      Type: 'json-file',
      Config: { 'max-file': '3', 'max-size': '10m' },
    });
  });

  it('refuses a volume size_mb it cannot enforce with a 400 naming the field', async () => {
    await writesNothing(async () => {
      const res = await api('POST', '/v1/instances', {
        name: 'sized-volume',
        services: [
          { ...script('main', 'sleep 1'), volumes: [{ name: 'data', mount_path: '/data', size_mb: 100 }] },
        ],
      });
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.equal(res.body.errors?.[0]?.field, 'services[0].volumes[0].size_mb');
      assert.match(res.body.errors[0].message, /cannot be enforced/);
    });
  });
});

/** The engine's event actions for a container since a time (seconds), e.g. `oom`, `die`. */
async function engineEvents(containerId: string, since: number): Promise<string[]> {
  const stream = (await docker.getEvents({
    since,
    until: Math.ceil(Date.now() / 1000),
    filters: { container: [containerId] },
  })) as unknown as NodeJS.ReadableStream;
  let text = '';
  for await (const chunk of stream) text += chunk.toString();
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => (JSON.parse(l) as { Action?: string; status?: string }).Action ?? '');
}
