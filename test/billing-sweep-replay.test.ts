import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { REPO_ROOT } from '../scripts/temporal-cli.ts';
import { replayHistory } from './support/replay.ts';

// Replays recorded billing sweeps (scripts/record-billing-history.ts) with the current workflow code; no server.
// before-billing-policy-patch.json was recorded with the sweep that left the decision to suspend to its
// sendBillingCommand activity: it must keep replaying through the old branch of patched('billing-policy-in-workflow').
describe('recorded billing sweep histories replay with the current workflow code', () => {
  const dir = `${REPO_ROOT}test/billing-histories`;
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort();

  it('has a sweep recorded before and after the billing policy moved into the workflow', () => {
    assert.deepEqual(files, ['before-billing-policy-patch.json', 'billing-policy-in-workflow.json']);
  });

  for (const file of files) {
    it(`replays ${file}`, async () => {
      const history = historyFromJSON(JSON.parse(readFileSync(`${dir}/${file}`, 'utf8')));
      assert.ok((history.events?.length ?? 0) > 20, 'a real history');
      await replayHistory(history, `replay-${file}`);
    });
  }
});
