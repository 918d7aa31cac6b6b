import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  COMMAND_RULES,
  commandRefusal,
  type InstanceView,
  pathOf,
  viewAfter,
} from '../domain/command-rules.ts';
import { COMMAND_NAMES, type Command, type CommandName, parseCommand } from '../domain/commands.ts';
import { INSTANCE_STATES, type InstanceState } from '../domain/instance-state.ts';
import { canTransition } from '../domain/state-machine.ts';

// Pure: no Temporal, no PostgreSQL, no Docker. Every (state, command) pair against the rules table, with the
// expected answers written out here by hand, so that a change to the rules shows up as a change to this table.

/** The arguments each command is judged with. */
const ARGS: { [N in CommandName]: unknown } = {
  start: {},
  stop: {},
  restart: {},
  scale: { replicas: 2 },
  suspend: { reason: 'billing' },
  unsuspend: {},
  update: { labels: { team: 'a' } },
  delete: {},
  rollback: { release: 1 },
  restart_service: { service: 'web' },
  record_exec: { service: 'web', argv: ['ls'], exit_code: 0, timed_out: false },
};

function command(name: CommandName, args: unknown = ARGS[name]): Command {
  const parsed = parseCommand(name, args);
  if (!parsed.ok) throw new Error(`${name}: ${parsed.message}`);
  return parsed.command;
}

type Expected = 'ok' | 'invalid_state' | 'suspended' | 'invalid_request';
const ok = 'ok' as const;
const no = 'invalid_state' as const;
const susp = 'suspended' as const;
const req = 'invalid_request' as const;

/** Columns: start, stop, restart, scale, suspend, unsuspend, update, delete, rollback, restart_service, record_exec. */
const NOT_SUSPENDED: Record<InstanceState, Expected[]> = {
  provisioning: [ok, no, no, no, no, no, ok, ok, no, no, ok],
  starting: [no, no, no, no, no, no, ok, no, no, no, ok],
  running: [no, ok, ok, ok, ok, no, ok, ok, ok, ok, ok],
  stopping: [no, no, no, no, no, no, ok, no, no, no, ok],
  stopped: [ok, no, no, ok, ok, no, ok, ok, ok, no, ok],
  failed: [ok, no, no, no, ok, no, ok, ok, ok, no, ok],
  destroying: [no, no, no, no, no, no, no, no, no, no, no],
  destroyed: [no, no, no, no, no, no, no, no, no, no, no],
};

/** Suspended (for billing): start, restart and scale are refused as such; unsuspend applies in every state. */
const SUSPENDED: Record<InstanceState, Expected[]> = {
  provisioning: [susp, no, susp, susp, no, ok, ok, ok, no, susp, ok],
  starting: [susp, no, susp, susp, no, ok, ok, no, no, susp, ok],
  running: [susp, ok, susp, susp, ok, ok, ok, ok, ok, susp, ok],
  stopping: [susp, no, susp, susp, no, ok, ok, no, no, susp, ok],
  stopped: [susp, no, susp, susp, ok, ok, ok, ok, ok, susp, ok],
  failed: [susp, no, susp, susp, ok, ok, ok, ok, ok, susp, ok],
  destroying: [susp, no, susp, susp, no, ok, no, no, no, susp, no],
  destroyed: [susp, no, susp, susp, no, ok, no, no, no, susp, no],
};

/** A helm source: the engine runs it, so start, stop, restart and scale never apply. */
const HELM: Record<InstanceState, Expected[]> = {
  provisioning: [req, req, req, req, no, no, ok, ok, no, req, ok],
  starting: [req, req, req, req, no, no, ok, no, no, req, ok],
  running: [req, req, req, req, ok, no, ok, ok, ok, req, ok],
  stopping: [req, req, req, req, no, no, ok, no, no, req, ok],
  stopped: [req, req, req, req, ok, no, ok, ok, ok, req, ok],
  failed: [req, req, req, req, ok, no, ok, ok, ok, req, ok],
  destroying: [req, req, req, req, no, no, no, no, no, req, no],
  destroyed: [req, req, req, req, no, no, no, no, no, req, no],
};

function answer(name: CommandName, view: InstanceView): Expected {
  return commandRefusal(command(name), view)?.code ?? 'ok';
}

describe('command rules: every (state, command) pair', () => {
  const tables: [string, Record<InstanceState, Expected[]>, (state: InstanceState) => InstanceView][] = [
    ['a services source, not suspended', NOT_SUSPENDED, (state) => ({ state, source_type: 'services' })],
    [
      'a suspended one',
      SUSPENDED,
      (state) => ({ state, source_type: 'services', suspend_reason: 'billing', resume_state: 'running' }),
    ],
    ['a helm source', HELM, (state) => ({ state, source_type: 'helm' })],
  ];
  for (const [title, table, viewIn] of tables) {
    it(`answers as the table says for ${title}`, () => {
      const got = Object.fromEntries(
        INSTANCE_STATES.map((state) => [state, COMMAND_NAMES.map((name) => answer(name, viewIn(state)))]),
      );
      assert.deepEqual(got, table);
    });
  }

  it('treats a missing or empty source type as services', () => {
    for (const source_type of [undefined, '']) {
      assert.equal(
        answer('stop', { state: 'running', ...(source_type === undefined ? {} : { source_type }) }),
        ok,
      );
    }
  });

  it('walks every accepted command along moves the transition table allows, to the state it leaves', () => {
    for (const [, , viewIn] of tables) {
      for (const state of INSTANCE_STATES) {
        for (const name of COMMAND_NAMES) {
          const view = viewIn(state);
          if (answer(name, view) !== ok) continue;
          const path = pathOf(command(name), view);
          let at = state;
          for (const next of path) {
            assert.ok(canTransition(at, next), `${name} from ${state}: ${at} → ${next} is not in the table`);
            at = next;
          }
          assert.equal(viewAfter(command(name), view).state, at, `${name} from ${state} leaves ${at}`);
        }
      }
    }
  });

  it('names the reason a refusal is for', () => {
    assert.equal(
      commandRefusal(command('stop'), { state: 'stopped' })?.message,
      'stop is not allowed while the instance is stopped (cannot transition from stopped to stopping)',
    );
    assert.equal(
      commandRefusal(command('start'), { state: 'stopped', suspend_reason: 'abuse' })?.message,
      'start is refused: the instance is suspended (abuse)',
    );
    assert.deepEqual(
      commandRefusal(command('unsuspend', { reason: 'billing' }), {
        state: 'stopped',
        suspend_reason: 'abuse',
      }),
      {
        code: 'invalid_state',
        message: 'unsuspend: the instance is suspended for abuse, not billing',
      },
    );
  });
});

describe('command rules: what the queue leaves', () => {
  function after(view: InstanceView, ...names: CommandName[]): InstanceView {
    return names.reduce((v, name) => viewAfter(command(name), v), view);
  }

  it('judges a command against the commands queued before it', () => {
    const running: InstanceView = { state: 'running', source_type: 'services' };
    assert.equal(answer('start', after(running, 'stop')), ok);
    assert.equal(answer('start', after(running, 'suspend')), susp);
    assert.equal(answer('start', after(running, 'suspend', 'unsuspend')), no, 'unsuspend restarts it');
    assert.equal(answer('update', after(running, 'delete')), no);
  });

  it('remembers the state a suspension returns to, across a second suspension', () => {
    const once = after({ state: 'running' }, 'suspend');
    assert.deepEqual(once, { state: 'stopped', suspend_reason: 'billing', resume_state: 'running' });
    const twice = viewAfter(command('suspend', { reason: 'abuse' }), once);
    assert.deepEqual(twice, { state: 'stopped', suspend_reason: 'abuse', resume_state: 'running' });
    assert.deepEqual(after(twice, 'unsuspend'), { state: 'running' });
    assert.deepEqual(after({ state: 'failed' }, 'suspend', 'unsuspend'), { state: 'failed' });
  });

  it('lists, for each command, whether it is for services sources and refused while suspended', () => {
    const flags = Object.fromEntries(
      COMMAND_NAMES.map((n) => [
        n,
        [COMMAND_RULES[n].servicesSourceOnly, COMMAND_RULES[n].refusedWhileSuspended],
      ]),
    );
    assert.deepEqual(flags, {
      start: [true, true],
      stop: [true, false],
      restart: [true, true],
      scale: [true, true],
      suspend: [false, false],
      unsuspend: [false, false],
      update: [false, false],
      delete: [false, false],
      rollback: [false, false],
      restart_service: [true, true],
      record_exec: [false, false],
    });
  });
});

describe('command arguments: one schema per command, for the API and the workflow alike', () => {
  const refused = (name: CommandName, args: unknown) => {
    const parsed = parseCommand(name, args);
    assert.equal(parsed.ok, false, `${name} ${JSON.stringify(args)} is refused`);
    return parsed.ok ? '' : parsed.message;
  };

  it('takes no arguments for start, stop, restart and delete, and names an unknown one', () => {
    for (const name of ['start', 'stop', 'restart', 'delete'] as const) {
      assert.deepEqual(parseCommand(name, undefined), { ok: true, command: { name, args: {} } });
      assert.match(refused(name, { force: true }), /force/);
    }
  });

  it('caps scale and names the field', () => {
    assert.match(refused('scale', {}), /give at least one of cpu_millis, memory_mb, replicas/);
    assert.match(refused('scale', { replicas: 0 }), /^replicas: /);
    assert.match(refused('scale', { replicas: 1001 }), /^replicas: /);
    assert.match(refused('scale', { memory_mb: 16_777_217 }), /^memory_mb: /);
    assert.match(refused('scale', { cpu_millis: 1.5 }), /^cpu_millis: /);
    assert.match(refused('scale', { cpu_millis: '500' }), /^cpu_millis: /);
    assert.deepEqual(parseCommand('scale', { memory_mb: 96 }), {
      ok: true,
      command: { name: 'scale', args: { memory_mb: 96 } },
    });
  });

  it('wants a reason to suspend, trimmed, and none or one to unsuspend', () => {
    assert.match(refused('suspend', {}), /^reason: /);
    assert.match(refused('suspend', { reason: '   ' }), /^reason: is required/);
    assert.match(refused('suspend', { reason: 'x'.repeat(201) }), /^reason: /);
    assert.deepEqual(parseCommand('suspend', { reason: ' abuse ' }), {
      ok: true,
      command: { name: 'suspend', args: { reason: 'abuse' } },
    });
    assert.equal(parseCommand('unsuspend', {}).ok, true);
    assert.match(refused('unsuspend', { reason: 7 }), /^reason: /);
  });

  it('validates an update as the API does: something to change, a name, labels and services', () => {
    assert.match(refused('update', {}), /give at least one of name, services, labels/);
    assert.match(refused('update', { name: '' }), /^name: is required/);
    assert.match(refused('update', { labels: { 'bad key!': 'x' } }), /^labels\.bad key!: /);
    assert.match(refused('update', { services: [] }), /^services: at least one service is required/);
    const parsed = parseCommand('update', { services: [{ name: 'web', image: 'nginx:1' }] });
    assert.deepEqual(parsed.ok && parsed.command.args, {
      services: [{ name: 'web', image: 'nginx:1', resources: { cpu_millis: 0, memory_mb: 0, replicas: 1 } }],
    });
    assert.match(refused('update', { labels: {}, rollback_on_failure: 'no' }), /^rollback_on_failure: /);
  });

  it('wants a release to roll back to: a number from 1, or a rel_ id', () => {
    assert.match(refused('rollback', {}), /^release: /);
    assert.match(refused('rollback', { release: 0 }), /^release: /);
    assert.match(refused('rollback', { release: 1.5 }), /^release: /);
    assert.match(refused('rollback', { release: 'v3' }), /^release: /);
    assert.match(refused('rollback', { release: 'inst_01h455vb4pex5vsknk084sn02q' }), /^release: /);
    assert.match(refused('rollback', { release: 3, extra: true }), /extra/);
    for (const release of [3, 'rel_01h455vb4pex5vsknk084sn02q']) {
      const parsed = parseCommand('rollback', { release, rollback_on_failure: false });
      assert.deepEqual(parsed.ok && parsed.command.args, { release, rollback_on_failure: false });
    }
  });

  it('rolls back a running, stopped or failed instance only, suspended or not, and leaves its state', () => {
    const rollback = command('rollback');
    assert.equal(
      commandRefusal(rollback, { state: 'starting' })?.message,
      'rollback is not allowed while the instance is starting (only a running, stopped or failed instance rolls back)',
    );
    assert.equal(commandRefusal(rollback, { state: 'stopped', suspend_reason: 'billing' }), undefined);
    assert.deepEqual(pathOf(rollback, { state: 'running' }), []);
    assert.deepEqual(viewAfter(rollback, { state: 'failed' }), { state: 'failed' });
  });
});
