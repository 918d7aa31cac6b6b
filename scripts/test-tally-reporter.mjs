/**
 * A node:test reporter that writes one JSON line per test result (suites left out), for scripts/node-test-run.ts
 * to count (the TallyLine type there describes a line). The spec reporter's own summary keeps cancelled tests
 * apart from failed ones, and shows a test file that crashes or exits early as a single line; counted from these
 * lines instead, every result that is not a pass is a failure. Plain JavaScript: node loads reporters before the
 * --import hooks that would compile TypeScript.
 */
import { resolve } from 'node:path';

export default async function* tallyReporter(source) {
  for await (const event of source) {
    const data = event.data;
    // Every test and suite that starts must end: one that never does was in a file that died or exited.
    if (event.type === 'test:start') {
      yield `${JSON.stringify({ outcome: 'start', key: keyOf(data), name: data.name, file: data.file })}\n`;
      continue;
    }
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    yield `${JSON.stringify({ outcome: 'end', key: keyOf(data), name: data.name, file: data.file })}\n`;
    if (data.details.type === 'suite') continue;
    const line = {
      outcome: event.type === 'test:fail' ? 'fail' : data.skip || data.todo ? 'skip' : 'pass',
      name: data.name,
      file: data.file,
      // Node 20 names a file's own result by its absolute path, node 24 by the path it was given.
      whole_file: data.nesting === 0 && data.file !== undefined && resolve(data.name) === data.file,
    };
    if (event.type === 'test:fail') {
      const error = data.details.error ?? {};
      line.failure = error.failureType ?? 'unknown';
      line.message = String(
        error.cause instanceof Error ? error.cause.message : (error.cause ?? error.message),
      );
    }
    yield `${JSON.stringify(line)}\n`;
  }
}

function keyOf(data) {
  return `${data.file}:${data.line}:${data.column}:${data.nesting}:${data.name}`;
}
