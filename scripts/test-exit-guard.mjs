/**
 * Loaded (--import) into every test file's process by scripts/node-test-run.ts. Node's own way to end a file
 * whose handles stay open, --test-force-exit, calls process.exit before the file's last results have gone down
 * the pipe to the runner, and silently drops them (nodejs/node#64833: a file of fast tests lost its last 20 of 47
 * results here, exit code 0). Without it a file that leaves a socket or timer open would keep `npm test` waiting
 * until CI's deadline. So instead: once the file's tests are done, a file that has not exited within the grace
 * fails, naming what it left open. By then its results have long been sent.
 */
import { after } from 'node:test';

const graceMs = Number(process.env.CTRLPLANE_TEST_EXIT_GRACE_MS || 60_000);

// Node runs the root's after hooks in the order they were registered, so this one starts before the file's
// own: the grace covers the file's cleanup hooks as well as what they leave behind. Only in a test file's own
// process (node marks it with NODE_TEST_CONTEXT), not in the runner that spawns them.
if (process.env.NODE_TEST_CONTEXT)
  after(() => {
    setTimeout(() => {
      const open = process.getActiveResourcesInfo();
      process.stderr.write(
        `test file did not exit within ${graceMs} ms after its tests ended; still open: ${open.join(', ') || 'nothing named'}\n`,
      );
      process.exit(1);
    }, graceMs).unref();
  });
