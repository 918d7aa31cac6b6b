import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { REPO_ROOT } from '../scripts/temporal-cli.ts';
import { replayHistory } from './support/replay.ts';

// Replays real recorded histories (scripts/record-histories.ts) with the current workflow code: a change that
// would make running instances non-deterministic fails here. No server is needed for a replay.
// test/histories/v1 holds histories recorded before the restart-through-provider patch: they must keep
// replaying through the old branch of patched(), as instances started back then would.
describe('recorded instance histories replay with the current workflow code', () => {
  const dir = `${REPO_ROOT}test/histories`;
  const files = readdirSync(dir, { recursive: true })
    .map(String)
    .filter((f) => f.endsWith('.json'))
    .sort();
  const paths = ['drift.json', 'every-command.json', 'failed-provision-and-rejected-signal.json'];

  it('has a recorded history for each lifecycle path, from before and after the last patch', () => {
    assert.deepEqual(files, [...paths, ...paths.map((p) => `v1/${p}`)].sort());
  });

  for (const file of files) {
    it(`replays ${file}`, async () => {
      const history = historyFromJSON(JSON.parse(readFileSync(`${dir}/${file}`, 'utf8')));
      assert.ok((history.events?.length ?? 0) > 10, 'a real history');
      await replayHistory(history, `replay-${file}`);
    });
  }
});
