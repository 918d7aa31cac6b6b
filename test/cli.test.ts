import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { EXIT } from '../cli/exit-codes.ts';
import { REPO_ROOT } from '../scripts/temporal-cli.ts';
import { removeInstances, removeTenantLeftovers, TEST_IMAGE } from './support/docker.ts';
import { type Stack, startStack, uniqueTenant } from './support/stack.ts';

/** One stderr or stdout line and when it arrived (ms since the process started). */
interface TimedLine {
  at: number;
  text: string;
}

interface CliRun {
  child: ChildProcess;
  stdout: TimedLine[];
  stderr: TimedLine[];
  exited: Promise<number | null>;
  /** Resolves once a line of `stream` matches. */
  line(stream: 'stdout' | 'stderr', pattern: RegExp, timeoutMs?: number): Promise<TimedLine>;
}

/** `ctrlplane …` as a user runs it: its own process, bin/ctrlplane.mjs on plain node, the two variables set. */
function ctrlplane(args: string[], env: Record<string, string | undefined>): CliRun {
  const { NODE_OPTIONS: _dropped, CTRLPLANE_TOKEN: _t, CTRLPLANE_URL: _u, ...inherited } = process.env;
  const started = Date.now();
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin/ctrlplane.mjs'), ...args], {
    cwd: REPO_ROOT,
    env: Object.fromEntries(Object.entries({ ...inherited, ...env }).filter(([, v]) => v !== undefined)),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const streams = { stdout: [] as TimedLine[], stderr: [] as TimedLine[] };
  const wakers = new Set<() => void>();
  for (const name of ['stdout', 'stderr'] as const) {
    let pending = '';
    child[name]?.on('data', (chunk: Buffer) => {
      const parts = (pending + chunk.toString('utf8')).split('\n');
      pending = parts.pop() ?? '';
      for (const text of parts) streams[name].push({ at: Date.now() - started, text });
      for (const wake of [...wakers]) wake();
    });
  }
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    ...streams,
    exited,
    line(stream, pattern, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => done(new Error(`no ${stream} line ${pattern}: ${dump()}`)), timeoutMs);
        const dump = () =>
          JSON.stringify({
            stdout: streams.stdout.map((l) => l.text),
            stderr: streams.stderr.map((l) => l.text),
          });
        const done = (err?: Error, found?: TimedLine) => {
          clearTimeout(timer);
          wakers.delete(check);
          if (err) reject(err);
          else resolve(found as TimedLine);
        };
        const check = () => {
          const found = streams[stream].find((l) => pattern.test(l.text));
          if (found) done(undefined, found);
          else if (child.exitCode !== null)
            done(new Error(`exited ${child.exitCode} before ${pattern}: ${dump()}`));
        };
        wakers.add(check);
        child.once('exit', check);
        check();
      });
    },
  };
}

async function run(args: string[], env: Record<string, string | undefined>) {
  const cli = ctrlplane(args, env);
  const code = await cli.exited;
  const text = (lines: TimedLine[]) => lines.map((l) => l.text).join('\n');
  return { code, stdout: text(cli.stdout), stderr: text(cli.stderr), lines: cli };
}

describe('the ctrlplane CLI, run as a process against the real stack', () => {
  const tenant = uniqueTenant('cli');
  const created: string[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'ctrlplane-cli-'));
  const specPath = join(dir, 'spec.yaml');
  let stack: Stack;
  let env: Record<string, string>;
  let id: string;

  before(async () => {
    await removeTenantLeftovers('ten_cli_');
    stack = await startStack({ env: { CTRLPLANE_RATE_LIMIT_PER_MINUTE: '0' } });
    env = { CTRLPLANE_URL: stack.api.url, CTRLPLANE_TOKEN: await stack.token(tenant) };
    writeFileSync(
      specPath,
      stringify({
        // No published port: the host's port range is shared with other engines on this machine.
        name: 'cli-web',
        labels: { team: 'cli' },
        services: [
          {
            name: 'web',
            image: TEST_IMAGE,
            command: [
              '/bin/sh',
              '-c',
              'echo hello-from-cli; mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 80 -h /www',
            ],
          },
        ],
      }),
    );
  });

  after(async () => {
    await stack?.close();
    await removeInstances(created);
    rmSync(dir, { recursive: true, force: true });
  });

  it('create -f spec.yaml --wait shows each transition as it happens and ends 0 once running', async () => {
    const cli = ctrlplane(['instances', 'create', '-f', specPath, '--wait'], env);
    const first = await cli.line('stderr', /^inst_\S+ {2}provisioning/);
    const running = await cli.line('stderr', /→ running/);
    const code = await cli.exited;
    assert.equal(code, EXIT.ok, JSON.stringify(cli.stderr));
    id = /^(inst_\S+)/.exec(first.text)?.[1] ?? '';
    created.push(id);
    assert.ok(running.at > first.at, 'the progress came line by line, not all at the end');
    const transitions = cli.stderr.filter((l) => l.text.startsWith(id)).map((l) => l.text.split(/\s{2}/)[1]);
    assert.match(transitions.at(-1) ?? '', /→ running$/, JSON.stringify(transitions));
    // Every transition is a lifecycle event: each is shown, in order, even one quicker than the polling.
    const events = cli.stderr.map((l) => /\s(instance\.\w+)/.exec(l.text)?.[1]).filter(Boolean);
    assert.deepEqual(
      events.filter((e) => e === 'instance.starting' || e === 'instance.created'),
      ['instance.starting', 'instance.created'],
      JSON.stringify(cli.stderr),
    );
    assert.match(
      cli.stdout.map((l) => l.text).join('\n'),
      new RegExp(`^${id}\\s+cli-web\\s+running\\s+docker`, 'm'),
    );
  });

  it('list, get and events answer as a table or as JSON', async () => {
    const table = await run(['instances', 'list'], env);
    assert.equal(table.code, EXIT.ok, table.stderr);
    assert.match(table.stdout, /^ID\s+NAME\s+STATE\s+PROVIDER\s+ENDPOINTS\s+CREATED$/m);
    assert.match(table.stdout, new RegExp(`^${id}\\s+cli-web\\s+running`, 'm'));

    const json = await run(['-o', 'json', 'instances', 'list', '--label', 'team=cli'], env);
    assert.equal(json.code, EXIT.ok, json.stderr);
    assert.deepEqual(
      JSON.parse(json.stdout).map((i: { id: string; state: string }) => [i.id, i.state]),
      [[id, 'running']],
    );
    const got = await run(['instances', 'get', id, '-o', 'json'], env);
    assert.equal(JSON.parse(got.stdout).id, id);

    const events = await run(['instances', 'events', id, '-o', 'json'], env);
    assert.equal(events.code, EXIT.ok, events.stderr);
    assert.ok(JSON.parse(events.stdout).some((e: { type: string }) => e.type === 'instance.created'));
  });

  it('logs --service prints the service output; logs -f follows until interrupted', async () => {
    const logs = await run(['instances', 'logs', id, '--service', 'web'], env);
    assert.equal(logs.code, EXIT.ok, logs.stderr);
    assert.match(logs.stdout, /^hello-from-cli$/m);
    const follow = ctrlplane(['instances', 'logs', id, '-f', '--service', 'web'], env);
    await follow.line('stdout', /^hello-from-cli$/);
    assert.equal(follow.child.exitCode, null, 'still following');
    follow.child.kill('SIGINT');
    assert.equal(await follow.exited, EXIT.ok);
  });

  it('stop, start, restart and scale with --wait; events -f sees the transitions live', async () => {
    const events = ctrlplane(['instances', 'events', id, '-f'], env);
    await events.line('stdout', /instance\.created/);

    const stopped = await run(['instances', 'stop', id, '--wait', '-o', 'json'], env);
    assert.equal(stopped.code, EXIT.ok, stopped.stderr);
    assert.equal(JSON.parse(stopped.stdout).state, 'stopped');
    await events.line('stdout', /instance\.stopped/, 15_000);

    const again = await run(['instances', 'stop', id], env);
    assert.equal(again.code, EXIT.refused, 'stopping a stopped instance is refused');
    assert.match(again.stderr, /409 invalid_state/);

    const started = await run(['instances', 'start', id, '--wait', '-o', 'json'], env);
    assert.equal(JSON.parse(started.stdout).state, 'running', started.stderr);
    const restarted = await run(['instances', 'restart', id, '--wait', '-o', 'json'], env);
    assert.equal(JSON.parse(restarted.stdout).state, 'running', restarted.stderr);
    await events.line('stdout', /instance\.restarted/, 15_000);

    const scaled = await run(['instances', 'scale', id, '--memory-mb', '96', '--wait', '-o', 'json'], env);
    assert.equal(scaled.code, EXIT.ok, scaled.stderr);
    assert.equal(JSON.parse(scaled.stdout).services[0].resources.memory_mb, 96);
    events.child.kill('SIGINT');
    assert.equal(await events.exited, EXIT.ok);
  });

  it('releases lists what ran, release shows its spec, rollback --wait goes back as a new release', async () => {
    // The create made v1, the scale above v2.
    const listed = await run(['instances', 'releases', id], env);
    assert.equal(listed.code, EXIT.ok, listed.stderr);
    assert.match(listed.stdout, /^\*\s+v2\s+rel_\S+\s+deployed\s/m, listed.stdout);
    assert.match(listed.stdout, /^\s+v1\s+rel_\S+\s+deployed\s/m, listed.stdout);

    const v1 = await run(['instances', 'release', id, '1', '-o', 'json'], env);
    assert.equal(v1.code, EXIT.ok, v1.stderr);
    const v1Memory = JSON.parse(v1.stdout).spec.services[0].resources?.memory_mb;
    assert.notEqual(v1Memory, 96, 'v1 is the spec from before the scale');

    const rolled = await run(['instances', 'rollback', id, '1', '--wait', '-o', 'json'], env);
    assert.equal(rolled.code, EXIT.ok, rolled.stderr);
    const instance = JSON.parse(rolled.stdout);
    assert.equal(instance.state, 'running');
    assert.equal(instance.services[0].resources?.memory_mb, v1Memory, "v1's spec runs again");

    const after = await run(['-o', 'json', 'instances', 'releases', id], env);
    const [newest] = JSON.parse(after.stdout);
    assert.deepEqual(
      [newest.number, newest.current, newest.description, newest.rollback_of],
      [3, true, 'rollback to v1', 1],
    );
    const missing = await run(['instances', 'rollback', id, '99'], env);
    assert.equal(missing.code, EXIT.notFound, missing.stderr);
  });

  it('exit codes a script can trust', async () => {
    assert.equal(
      (await run(['instances', 'list'], { ...env, CTRLPLANE_TOKEN: undefined })).code,
      EXIT.unauthorized,
    );
    assert.equal(
      (await run(['instances', 'list'], { ...env, CTRLPLANE_TOKEN: 'not-a-token' })).code,
      EXIT.unauthorized,
    );
    assert.equal(
      (await run(['instances', 'get', 'inst_01h455vb4pex5vsknk084sn02q'], env)).code,
      EXIT.notFound,
    );
    assert.equal((await run(['instances', 'frobnicate'], env)).code, EXIT.usage);
    assert.equal((await run(['instances', 'create'], env)).code, EXIT.usage, 'no -f');
    assert.equal((await run(['instances', 'create', '-f', join(dir, 'missing.yaml')], env)).code, EXIT.usage);

    const badSpec = join(dir, 'bad.yaml');
    writeFileSync(badSpec, stringify({ name: 'bad', services: [{ name: 'web' }] }));
    const refused = await run(['instances', 'create', '-f', badSpec], env);
    assert.equal(refused.code, EXIT.refused);
    assert.match(refused.stderr, /services\[0\]\.image/, 'the field is named');

    const timedOut = await run(['instances', 'wait', id, '--state', 'stopped', '--timeout', '1s'], env);
    assert.equal(timedOut.code, EXIT.timeout, timedOut.stderr);
    const reached = await run(['instances', 'wait', id, '--state', 'running'], env);
    assert.equal(reached.code, EXIT.ok, reached.stderr);

    const down = await run(['instances', 'list'], { ...env, CTRLPLANE_URL: 'http://127.0.0.1:9' });
    assert.equal(down.code, EXIT.unavailable, down.stderr);
  });

  it('delete --wait ends 0 once destroyed', async () => {
    const deleted = await run(['instances', 'delete', id, '--wait'], env);
    assert.equal(deleted.code, EXIT.ok, deleted.stderr);
    assert.match(deleted.stdout, new RegExp(`^${id} destroyed$`, 'm'));
    const got = await run(['instances', 'get', id, '-o', 'json'], env);
    assert.equal(JSON.parse(got.stdout).state, 'destroyed');
  });
});
