/**
 * `npm test`: one real Temporal dev server (with its Web UI) and one fresh PostgreSQL database for the whole
 * run, the workflow code bundled once, then node's test runner over test/*.test.ts (or the files given). When
 * one of those files uses test/support/kubernetes.ts, a Kubernetes control plane too (startTestKubernetes).
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { TOOLS_BIN } from './kubernetes-cluster';
import { REPO_ROOT } from './temporal-cli';
import { startTestEnvironment } from './test-environment';

const started = Date.now();
const files = process.argv.slice(2).length
  ? process.argv.slice(2)
  : readdirSync(`${REPO_ROOT}test`)
      .filter((f) => f.endsWith('.test.ts'))
      .sort()
      .map((f) => `test/${f}`);

const kubernetes = files.some((f) =>
  /support\/kubernetes'/.test(readFileSync(resolve(REPO_ROOT, f), 'utf8')),
);
const environment = await startTestEnvironment({ kubernetes });
let tearingDown: Promise<void> | undefined;
const teardown = () => {
  tearingDown ??= environment.teardown();
  return tearingDown;
};
// The Kubernetes control plane runs in its own session: an interrupted run still stops it.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void teardown().finally(() => process.exit(130));
  });
}
console.log(
  `test setup: temporal ${environment.env.TEMPORAL_ADDRESS} (ui ${environment.env.TEMPORAL_UI_URL}), ` +
    (kubernetes ? `kubernetes ${environment.env.CTRLPLANE_TEST_KUBERNETES}, ` : '') +
    `${files.length} files, ready in ${((Date.now() - started) / 1000).toFixed(1)}s`,
);

/** Reads the spec reporter's closing `ℹ pass N` / `ℹ fail N` lines as they stream by. */
const tally = {
  pass: 0,
  fail: 0,
  pending: '',
  observe(text: string) {
    const lines = (this.pending + text).split('\n');
    this.pending = lines.pop() ?? '';
    for (const line of lines) {
      const match = /^\S*\s*(pass|fail) (\d+)\s*$/u.exec(stripVTControlCharacters(line));
      if (match) this[match[1] as 'pass' | 'fail'] = Number(match[2]);
    }
  },
};

let exitCode = 1;
try {
  exitCode = await new Promise<number>((resolve) => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '--test',
        '--test-reporter=spec',
        '--test-concurrency=1',
        '--test-force-exit',
        '--test-timeout=600000',
        ...files,
      ],
      {
        cwd: REPO_ROOT,
        stdio: ['inherit', 'pipe', 'inherit'],
        env: {
          ...process.env,
          ...environment.env,
          // helm and kubectl (kustomize) as setup built them.
          PATH: `${TOOLS_BIN}:${process.env.PATH ?? ''}`,
          LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
        },
      },
    );
    child.stdout.on('data', (chunk: Buffer) => {
      process.stdout.write(chunk);
      tally.observe(chunk.toString('utf8'));
    });
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
} finally {
  await teardown();
}
console.log(`tests finished in ${((Date.now() - started) / 1000).toFixed(1)}s`);
// The plain closing line CI reads, after the teardown output.
console.log(`tests: ${tally.pass} passed, ${tally.fail} failed`);
process.exit(exitCode);
