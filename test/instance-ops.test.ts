import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EXEC_LIMITS } from '../domain/schemas/exec-command.ts';
import {
  containersOf,
  docker,
  httpdService,
  removeInstances,
  removeTenantLeftovers,
  TEST_IMAGE,
} from './support/docker.ts';
import { eventsOf } from './support/events.ts';
import { apiClient, eventually } from './support/http.ts';
import { type Stack, startStack, uniqueTenant } from './support/stack.ts';

// Real Temporal, PostgreSQL and Docker: per-service restart, exec and stop options through the API.
// The stack's configured Docker stop timeout is 2 s (CTRLPLANE_DOCKER_STOP_TIMEOUT in support/stack.ts).

/** An image whose STOPSIGNAL is SIGUSR2, committed from the test image (the allowlist takes ctrlplane-test/*). */
const STOPSIGNAL_IMAGE = 'ctrlplane-test/stopsignal-usr2:1';

/** A sidecar whose shell reports the signal it got in its log, then exits 0; it waits `graceSeconds` first. */
function signalReporter(name: string, graceSeconds = 0, image = TEST_IMAGE) {
  const report = (sig: string) =>
    `trap '${graceSeconds ? `sleep ${graceSeconds}; ` : ''}echo got-${sig}; exit 0' ${sig}`;
  return {
    name,
    image,
    role: 'sidecar',
    command: [
      '/bin/sh',
      '-c',
      `${['TERM', 'USR1', 'USR2', 'HUP'].map(report).join('; ')}; echo ready; sleep 3600 & wait`,
    ],
  };
}

describe('per-service restart, exec and stop options (Docker)', () => {
  let stack: Stack;
  let api: ReturnType<typeof apiClient>;
  let intruder: ReturnType<typeof apiClient>;
  const tenant = uniqueTenant('ops');
  const otherTenant = uniqueTenant('opsx');
  const created: string[] = [];

  before(async () => {
    await removeTenantLeftovers('ten_ops');
    // Built (not committed: Docker before 23 takes no STOPSIGNAL change on commit) from the local test image.
    const context = mkdtempSync(join(tmpdir(), 'ops-image-'));
    writeFileSync(join(context, 'Dockerfile'), `FROM ${TEST_IMAGE}\nSTOPSIGNAL SIGUSR2\n`);
    const build = await docker.buildImage({ context, src: ['Dockerfile'] }, { t: STOPSIGNAL_IMAGE });
    await new Promise((resolve, reject) =>
      docker.modem.followProgress(build, (err, out) => (err ? reject(err) : resolve(out))),
    );
    rmSync(context, { recursive: true, force: true });
    const built = (await docker.getImage(STOPSIGNAL_IMAGE).inspect()).Config as { StopSignal?: string };
    assert.equal(built.StopSignal, 'SIGUSR2');
    // No per-second burst limit: the refusal tests send a dozen bad requests back to back from one tenant.
    stack = await startStack({ env: { CTRLPLANE_RATE_LIMIT_BURST_PER_SECOND: '0' } });
    api = apiClient(stack.api.url, await stack.token(tenant));
    intruder = apiClient(stack.api.url, await stack.token(otherTenant));
  });

  after(async () => {
    await stack?.close();
    await removeInstances(created);
    await docker
      .getImage(STOPSIGNAL_IMAGE)
      .remove({ force: true })
      .catch(() => {});
  });

  async function newInstance(name: string, sidecars: object[] = []): Promise<string> {
    const res = await api('POST', '/v1/instances?wait=60s', {
      name,
      services: [
        { ...httpdService(name), resources: { cpu_millis: 0, memory_mb: 64, replicas: 1 } },
        ...sidecars,
      ],
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.body.state, 'running', JSON.stringify(res.body));
    created.push(res.body.id);
    return res.body.id;
  }

  async function container(instanceId: string, service: string) {
    const found = (await containersOf(instanceId)).find((c) => c.Labels?.['ctrlplane.service'] === service);
    assert.ok(found, `container of ${service}`);
    return docker.getContainer(found.Id);
  }

  async function logOf(instanceId: string, service: string): Promise<string> {
    const res = await api('GET', `/v1/instances/${instanceId}/logs?service=${service}`);
    assert.equal(res.status, 200);
    // NDJSON: a body of one line parses as JSON.
    return typeof res.body === 'string' ? res.body : JSON.stringify(res.body ?? '');
  }

  describe('per-service restart', () => {
    it('restarts only the named service, recorded as an event with who asked', async () => {
      const id = await newInstance('restart-one', [signalReporter('side')]);
      const web = await container(id, 'web');
      const side = await container(id, 'side');
      const webStarted = (await web.inspect()).State.StartedAt;
      const sideStarted = (await side.inspect()).State.StartedAt;

      const res = await api('POST', `/v1/instances/${id}/services/side/restart?wait=true`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.state, 'running');
      const sideAfter = await side.inspect();
      assert.notEqual(sideAfter.State.StartedAt, sideStarted, 'the sidecar restarted');
      assert.equal(sideAfter.State.Running, true);
      assert.equal((await web.inspect()).State.StartedAt, webStarted, 'the main service was left alone');

      const event = (await eventsOf(stack.orm, id)).find((e) => e.type === 'instance.service_restarted');
      assert.equal(event?.payload.service, 'side');
      assert.equal(event?.payload.actor, `user-${tenant}`);
      assert.equal(event?.payload.conclusion, 'succeeded');
    });

    it('answers 404 naming the service for one the instance does not have, and 409 unless running', async () => {
      const id = await newInstance('restart-refusals');
      const unknown = await api('POST', `/v1/instances/${id}/services/nope/restart`);
      assert.equal(unknown.status, 404, JSON.stringify(unknown.body));
      assert.deepEqual(
        unknown.body.errors.map((e: { field: string }) => e.field),
        ['service'],
      );
      const bad = await api('POST', `/v1/instances/${id}/services/Not_A_Name/restart`);
      assert.equal(bad.status, 400, JSON.stringify(bad.body));
      assert.equal(bad.body.errors[0].field, 'service');

      assert.equal((await api('POST', `/v1/instances/${id}/stop?wait=true`)).status, 200);
      const stopped = await api('POST', `/v1/instances/${id}/services/web/restart`);
      assert.equal(stopped.status, 409, JSON.stringify(stopped.body));
      assert.equal(stopped.body.code, 'invalid_state');
      assert.equal((await (await container(id, 'web')).inspect()).State.Running, false, 'nothing started');
    });
  });

  describe('stop options', () => {
    it('refuses unknown signals and out-of-range timeouts with 400 naming the field, writing nothing', async () => {
      const id = await newInstance('stop-validation');
      const before = (await eventsOf(stack.orm, id)).length;
      for (const [body, field] of [
        [{ signal: 'SIGFOO' }, 'signal'],
        [{ signal: 'SIGCHLD' }, 'signal'],
        [{ signal: 15 }, 'signal'],
        [{ timeout: -1 }, 'timeout'],
        [{ timeout: 3601 }, 'timeout'],
        [{ timeout: 1.5 }, 'timeout'],
        [{ timeout: '10' }, 'timeout'],
        [{ force: true }, 'force'],
      ] as const) {
        const res = await api('POST', `/v1/instances/${id}/stop?wait=true`, body);
        assert.equal(res.status, 400, `${JSON.stringify(body)}: ${JSON.stringify(res.body)}`);
        assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
        assert.equal(res.body.errors[0].field, field, JSON.stringify(body));
      }
      assert.equal((await eventsOf(stack.orm, id)).length, before, 'no command was sent');
      assert.equal((await (await container(id, 'web')).inspect()).State.Running, true);
    });

    it('sends the signal it is given; without one, the image STOPSIGNAL', async () => {
      const id = await newInstance('stop-signal', [
        signalReporter('given'),
        signalReporter('own', 0, STOPSIGNAL_IMAGE),
      ]);
      await eventually(
        'the sidecars to be ready',
        async () =>
          (await logOf(id, 'given')).includes('ready') && (await logOf(id, 'own')).includes('ready'),
      );
      const res = await api('POST', `/v1/instances/${id}/stop?wait=true`, { signal: 'SIGUSR1' });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.state, 'stopped');
      assert.match(await logOf(id, 'given'), /got-USR1/);
      assert.equal((await (await container(id, 'given')).inspect()).State.ExitCode, 0, 'it exited by itself');

      const stopped = (await eventsOf(stack.orm, id)).find((e) => e.type === 'instance.stopping');
      assert.equal(stopped?.payload.signal, 'SIGUSR1', 'the event says how it was stopped');

      assert.equal((await api('POST', `/v1/instances/${id}/start?wait=true`)).body.state, 'running');
      await eventually(
        'the sidecars to be ready again',
        async () => ((await logOf(id, 'own')).match(/ready/g) ?? []).length >= 2,
      );
      assert.equal((await api('POST', `/v1/instances/${id}/stop?wait=true`)).status, 200);
      const own = await logOf(id, 'own');
      assert.match(own, /got-USR2/, "no signal given: the image's STOPSIGNAL");
      assert.doesNotMatch(own, /got-TERM/);
      assert.match(await logOf(id, 'given'), /got-TERM/, 'and SIGTERM where the image names none');
    });

    it('waits the timeout it is given before killing; without one, the configured 2 s', async () => {
      // The handler takes 5 s: the configured timeout kills it first, a 30 s one lets it finish.
      const id = await newInstance('stop-timeout', [signalReporter('slow', 5)]);
      await eventually('the sidecar to be ready', async () => (await logOf(id, 'slow')).includes('ready'));
      assert.equal((await api('POST', `/v1/instances/${id}/stop?wait=60s`)).status, 200);
      const killed = (await (await container(id, 'slow')).inspect()).State;
      assert.equal(killed.ExitCode, 137, 'killed after the configured timeout');
      assert.doesNotMatch(await logOf(id, 'slow'), /got-TERM/);

      assert.equal((await api('POST', `/v1/instances/${id}/start?wait=true`)).body.state, 'running');
      await eventually(
        'the sidecar to be ready again',
        async () => ((await logOf(id, 'slow')).match(/ready/g) ?? []).length >= 2,
      );
      const res = await api('POST', `/v1/instances/${id}/stop?wait=60s`, { timeout: 30 });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(
        (await (await container(id, 'slow')).inspect()).State.ExitCode,
        0,
        'it finished its handler',
      );
      assert.match(await logOf(id, 'slow'), /got-TERM/);
    });
  });

  describe('exec', () => {
    let id: string;
    before(async () => {
      id = await newInstance('exec', [
        {
          name: 'side',
          image: TEST_IMAGE,
          role: 'sidecar',
          command: ['sleep', '3600'],
          env: { WHO: 'side' },
        },
      ]);
    });

    const exec = (body: object, caller = api) => caller('POST', `/v1/instances/${id}/exec`, body);

    it('answers exit code, stdout and stderr apart; stdin; another service by name', async () => {
      const res = await exec({ command: ['sh', '-c', 'echo out; echo err >&2; exit 3'] });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.deepEqual(res.body, {
        exit_code: 3,
        stdout: 'out\n',
        stderr: 'err\n',
        stdout_truncated: false,
        stderr_truncated: false,
        timed_out: false,
        service: 'web',
      });
      const cat = await exec({ command: ['cat'], stdin: 'from stdin' });
      assert.equal(cat.body.stdout, 'from stdin');
      assert.equal(cat.body.exit_code, 0);
      const side = await exec({ service: 'side', command: ['sh', '-c', 'echo $WHO'] });
      assert.equal(side.body.stdout, 'side\n');
      assert.equal(side.body.service, 'side');
      const missing = await exec({ command: ['/no/such/program'] });
      assert.equal(missing.status, 200, JSON.stringify(missing.body));
      assert.notEqual(missing.body.exit_code, 0);
    });

    it('cuts output at the cap and says so; ends a command at its timeout', async () => {
      const big = await exec({
        command: ['sh', '-c', 'head -c 3000000 /dev/zero | tr "\\000" a; echo done >&2'],
      });
      assert.equal(big.status, 200);
      assert.equal(big.body.stdout.length, EXEC_LIMITS.maxOutputBytes);
      assert.equal(big.body.stdout_truncated, true);
      assert.equal(big.body.stderr, 'done\n');
      assert.equal(big.body.stderr_truncated, false);
      assert.equal(big.body.exit_code, 0);

      const slow = await exec({ command: ['sleep', '30'], timeout: 1 });
      assert.equal(slow.status, 200, JSON.stringify(slow.body));
      assert.equal(slow.body.timed_out, true);
      assert.equal(slow.body.exit_code, null);
    });

    it('records every exec as an event: who, which command, the exit code, never the output', async () => {
      const marker = `secret-output-${Date.now()}`;
      const res = await exec({ command: ['sh', '-c', 'echo "$0"; exit 7', marker] });
      assert.equal(res.body.exit_code, 7);
      assert.equal(res.body.stdout, `${marker}\n`);
      const event = await eventually('the exec event', async () =>
        (await eventsOf(stack.orm, id)).find(
          (e) => e.type === 'instance.exec' && (e.payload.argv as string[]).includes(marker),
        ),
      );
      assert.equal(event.payload.actor, `user-${tenant}`);
      assert.equal(event.payload.exit_code, 7);
      assert.equal(event.payload.service, 'web');
      assert.equal(event.payload.timed_out, false);
      assert.deepEqual(event.payload.argv, ['sh', '-c', 'echo "$0"; exit 7', marker]);
      const serialized = JSON.stringify(event.payload);
      assert.ok(!serialized.includes(`${marker}\\n`), 'the output is not in the event');
      assert.equal((await api('GET', `/v1/instances/${id}`)).body.state, 'running', 'the state stays');
    });

    it("runs as the container's own user and capabilities, never privileged, without a TTY", async () => {
      const main = await exec({
        command: ['sh', '-c', 'grep -E "^(Uid|CapEff|CapBnd|NoNewPrivs)" /proc/1/status'],
      });
      const self = await exec({
        command: ['sh', '-c', 'grep -E "^(Uid|CapEff|CapBnd|NoNewPrivs)" /proc/self/status'],
      });
      assert.equal(self.body.exit_code, 0, JSON.stringify(self.body));
      assert.equal(
        self.body.stdout,
        main.body.stdout,
        'the same user and capabilities as the container process',
      );
      assert.match(self.body.stdout, /NoNewPrivs:\s+1/, 'no-new-privileges holds for exec too');
      const tty = await exec({ command: ['sh', '-c', 'test -t 0 || test -t 1; echo $?'] });
      assert.equal(tty.body.stdout, '1\n', 'no terminal');
      // The request cannot ask for more: user, privileged, tty, env and workdir are not fields of it.
      for (const field of ['user', 'privileged', 'tty', 'env', 'workdir']) {
        const res = await exec({ command: ['id'], [field]: field === 'user' ? 'root' : true });
        assert.equal(res.status, 400, field);
        assert.equal(res.body.errors[0].field, field);
      }
    });

    it('refuses bad input with 400 naming the field', async () => {
      const long = 'a'.repeat(EXEC_LIMITS.maxArgBytes + 1);
      for (const [body, field] of [
        [{}, 'command'],
        [{ command: [] }, 'command'],
        [{ command: '' }, 'command'],
        [{ command: 'ls -l' }, 'command'],
        [{ command: [''] }, 'command[0]'],
        [{ command: [long] }, 'command[0]'],
        [{ command: Array(EXEC_LIMITS.maxArgs + 1).fill('x') }, 'command'],
        [{ command: Array(10).fill('a'.repeat(2000)) }, 'command'],
        // The API refuses a NUL anywhere in a JSON body before any schema (json-body.ts).
        [{ command: ['a\0b'] }, 'body'],
        [{ command: ['ls'], timeout: 61 }, 'timeout'],
        [{ command: ['ls'], timeout: 0 }, 'timeout'],
        [{ command: ['ls'], service: 'nope' }, 'service'],
        [{ command: ['ls'], stdin: 'x'.repeat(EXEC_LIMITS.maxStdinBytes + 1) }, 'stdin'],
      ] as const) {
        const res = await exec(body);
        assert.equal(res.status, 400, `${JSON.stringify(body).slice(0, 80)}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.errors[0].field, field, JSON.stringify(body).slice(0, 80));
      }
    });

    it("attack: another tenant cannot exec in this tenant's instance (404, nothing runs, nothing recorded)", async () => {
      const before = (await eventsOf(stack.orm, id)).length;
      const attack = await exec({ command: ['touch', '/tmp/pwned'] }, intruder);
      assert.equal(attack.status, 404, JSON.stringify(attack.body));
      assert.equal(attack.body.code, 'not_found');
      const look = await exec({ command: ['ls', '/tmp/pwned'] });
      assert.notEqual(look.body.exit_code, 0, 'the file was not created');
      const events = await eventsOf(stack.orm, id);
      const added = events.slice(before).filter((e) => e.type === 'instance.exec');
      assert.ok(
        added.every((e) => e.payload.actor === `user-${tenant}`),
        'only the owner’s exec was recorded',
      );
    });

    it('is refused (409) unless the instance is running', async () => {
      const stoppedId = await newInstance('exec-stopped');
      assert.equal((await api('POST', `/v1/instances/${stoppedId}/stop?wait=true`)).status, 200);
      const res = await api('POST', `/v1/instances/${stoppedId}/exec`, { command: ['ls'] });
      assert.equal(res.status, 409, JSON.stringify(res.body));
      assert.equal(res.body.code, 'invalid_state');
      assert.equal(
        (await eventsOf(stack.orm, stoppedId)).filter((e) => e.type === 'instance.exec').length,
        0,
      );
    });
  });
});
