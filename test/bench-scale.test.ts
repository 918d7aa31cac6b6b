import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { describe, it } from 'node:test';
import { REPO_ROOT } from '../scripts/temporal-cli.ts';

/**
 * The scale bench (`npm run bench -- --scale`) at a tiny size, as a user would run it: it finishes, every
 * lifecycle it started completed, every idle instance came up, every listing was measured. No timing is
 * asserted: the figures are the bench's to print. It starts its own dev server and database, like the bench.
 */
describe('npm run bench -- --scale (tiny)', () => {
  it('completes every lifecycle and brings every idle instance up with the no-I/O provider', async () => {
    const dir = mkdtempSync(`${os.tmpdir()}/bench-scale-`);
    const out = `${dir}/scale.json`;
    try {
      const args = [
        '--import',
        'tsx',
        'scripts/bench.ts',
        '--scale',
        '--clients',
        '3',
        '--lifecycles-seconds',
        '3',
      ];
      args.push('--instances', '12', '--idle-seconds', '2', '--list-tenants', '3', '--list-rows', '300');
      args.push('--list-iterations', '3', '--out', out);
      const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.on('data', (c: Buffer) => (output += c.toString()));
      child.stderr.on('data', (c: Buffer) => (output += c.toString()));
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      assert.equal(code, 0, output);
      const result = JSON.parse(readFileSync(out, 'utf8'));
      assert.equal(result.lifecycles.failed, 0, output);
      assert.ok(result.lifecycles.completed > 0, 'at least one full lifecycle in 3 s');
      assert.equal(result.idle.running, 12);
      assert.deepEqual(
        result.list.cases.map((c: { api: { n: number } }) => c.api.n),
        [3, 3, 3, 3, 3, 3],
      );
      assert.match(output, /lifecycles: \d+ completed, 0 failed/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
