import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runNodeTests } from '../scripts/node-test-run.ts';
import { REPO_ROOT } from '../scripts/temporal-cli.ts';

/**
 * The runner behind `npm test`, run for real (node's test runner in a child process) over small files in
 * test/fixtures/runner: its closing line must count every test that did not pass as failed.
 */
async function run(fixture: string, exitGraceMs?: number) {
  return runNodeTests({
    ...(exitGraceMs ? { exitGraceMs } : {}),
    files: [`test/fixtures/runner/${fixture}.fixture.ts`],
    cwd: REPO_ROOT,
    env: process.env,
    workDir: `${REPO_ROOT}.data/test`,
    // Long enough for a file to load; node 22+ waits this long on a test that never settles.
    testTimeoutMs: 20_000,
  });
}

describe('npm test counts every test that did not pass as failed', () => {
  it('a test that awaits a promise that never settles: 0 passed, 1 failed', async () => {
    const tally = await run('never-settles');
    assert.deepEqual([tally.passed, tally.failed], [0, 1], tally.failures.join('\n'));
    assert.match(tally.failures[0] ?? '', /awaits a promise that never settles/);
    assert.notEqual(tally.exitCode, 0);
  });

  it('a file that fails to load counts as failed', async () => {
    const tally = await run('fails-to-load');
    assert.deepEqual([tally.passed, tally.failed], [0, 1], tally.failures.join('\n'));
    assert.match(tally.failures[0] ?? '', /fails-to-load\.fixture\.ts: the file failed/);
  });

  it('a file that exits in the middle counts as failed', async () => {
    const tally = await run('exits-early');
    assert.equal(tally.passed, 0);
    assert.ok(tally.failed >= 1, tally.failures.join('\n'));
  });

  it('a file that exits after some of its tests passed counts as failed', async () => {
    const tally = await run('exits-after-a-pass');
    assert.ok(tally.failed >= 1, tally.failures.join('\n'));
    assert.match(tally.failures.join('\n'), /started and never finished/);
  });

  it('a file of 2000 fast tests reports all 2000 (node --test-force-exit dropped the last of them)', async () => {
    const tally = await run('many-fast-tests');
    assert.deepEqual([tally.passed, tally.failed], [2000, 0], tally.failures.join('\n'));
  });

  it('a file that keeps a handle open after its tests fails once the exit grace is over', async () => {
    const tally = await run('keeps-a-handle-open', 2_000);
    assert.equal(tally.passed, 1);
    assert.equal(tally.failed, 1, tally.failures.join('\n'));
    assert.match(tally.failures[0] ?? '', /keeps-a-handle-open\.fixture\.ts: the file failed/);
    assert.notEqual(tally.exitCode, 0);
  });

  it('a passing file: its passes and skips, no failure', async () => {
    const tally = await run('passes');
    assert.deepEqual([tally.passed, tally.failed, tally.skipped], [1, 0, 1], tally.failures.join('\n'));
    assert.equal(tally.exitCode, 0);
  });
});
