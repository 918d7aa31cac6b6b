/**
 * One run of node's test runner over the given files: the spec reporter to our stdout, and the tally reporter to a
 * file that this module counts. Every result that is not a pass counts as failed: a failed, cancelled or timed-out
 * test, a file that failed to load or crashed, a file that exited before it reported any test, and a runner that
 * exited non-zero with nothing else failed.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/** One line of the tally reporter (scripts/test-tally-reporter.mjs). */
export type TallyLine = TallyResult | TallyMark;

/** A test or suite started ('start') or ended ('end'), whatever its outcome. */
interface TallyMark {
  outcome: 'start' | 'end';
  key: string;
  name: string;
  file: string | undefined;
}

interface TallyResult {
  outcome: 'pass' | 'fail' | 'skip';
  name: string;
  file: string | undefined;
  /** A result for a whole file, not one of its tests: node reports one when the file failed or ran no test. */
  whole_file: boolean;
  /** Why it failed: node's failureType (testCodeFailure, cancelledByParent, testTimeoutFailure, hookFailure …). */
  failure?: string;
  message?: string;
}

export interface NodeTestRunOptions {
  files: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Where the tally file goes (a fresh file per run). */
  workDir: string;
  /** Per-test timeout. Node 22 and later keep a child process whose test never settles waiting until it. */
  testTimeoutMs: number;
  /** How long a test file may take to exit after its tests ended (scripts/test-exit-guard.mjs); default 60 s. */
  exitGraceMs?: number;
  /** Receives the spec reporter's output as it streams. */
  onOutput?: (chunk: Buffer) => void;
}

export interface Tally {
  passed: number;
  failed: number;
  skipped: number;
  /** One line per failure: where, what, why. */
  failures: string[];
  exitCode: number;
}

export async function runNodeTests(options: NodeTestRunOptions): Promise<Tally> {
  mkdirSync(options.workDir, { recursive: true });
  const tallyFile = join(options.workDir, `tally-${process.pid}-${Date.now()}.jsonl`);
  const exitCode = await new Promise<number>((resolve) => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '--import',
        join(import.meta.dirname, 'test-exit-guard.mjs'),
        '--test',
        '--test-reporter=spec',
        '--test-reporter-destination=stdout',
        `--test-reporter=${join(import.meta.dirname, 'test-tally-reporter.mjs')}`,
        `--test-reporter-destination=${tallyFile}`,
        '--test-concurrency=1',
        `--test-timeout=${options.testTimeoutMs}`,
        ...options.files,
      ],
      {
        cwd: options.cwd,
        stdio: ['inherit', 'pipe', 'inherit'],
        env: {
          ...topLevel(options.env),
          ...(options.exitGraceMs ? { CTRLPLANE_TEST_EXIT_GRACE_MS: String(options.exitGraceMs) } : {}),
        },
      },
    );
    child.stdout.on('data', (chunk: Buffer) => options.onOutput?.(chunk));
    child.on('error', () => resolve(1));
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
  let text = '';
  try {
    text = readFileSync(tallyFile, 'utf8');
  } catch {
    // No tally at all: counted below as a runner failure.
  }
  rmSync(tallyFile, { force: true });
  return { ...countTally(parseTally(text), exitCode), exitCode };
}

/** Without node's marker of a child of a test run, which would make this run report to that one instead. */
function topLevel(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { NODE_TEST_CONTEXT: _, ...rest } = env;
  return rest;
}

function parseTally(text: string): TallyLine[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as TallyLine);
}

export function countTally(lines: TallyLine[], exitCode: number): Omit<Tally, 'exitCode'> {
  const tally = { passed: 0, failed: 0, skipped: 0, failures: [] as string[] };
  const fail = (what: string) => {
    tally.failed++;
    tally.failures.push(what);
  };
  const unfinished = new Map<string, TallyMark[]>();
  for (const line of lines) {
    if (line.outcome === 'start') unfinished.set(line.key, [...(unfinished.get(line.key) ?? []), line]);
    else if (line.outcome === 'end') unfinished.get(line.key)?.pop();
  }
  for (const line of [...unfinished.values()].flat()) {
    fail(
      `${line.file ? `${line.file}: ` : ''}${line.name}: started and never finished (the file died or exited)`,
    );
  }
  const results = lines.filter((l): l is TallyResult => l.outcome !== 'start' && l.outcome !== 'end');
  const filesWithTests = new Set(results.filter((l) => !l.whole_file).map((l) => l.file));
  for (const line of results) {
    const where = line.file ? `${line.file}: ` : '';
    if (line.whole_file) {
      if (line.outcome === 'fail') fail(`${line.name}: the file failed (${line.failure}): ${line.message}`);
      else if (!filesWithTests.has(line.file))
        fail(`${line.name}: the file exited before it reported a test`);
      continue;
    }
    if (line.outcome === 'pass') tally.passed++;
    else if (line.outcome === 'skip') tally.skipped++;
    else fail(`${where}${line.name} (${line.failure}): ${line.message}`);
  }
  if (exitCode !== 0 && tally.failed === 0) fail(`the test runner exited with code ${exitCode}`);
  if (tally.passed === 0 && tally.failed === 0) fail('no test ran');
  return tally;
}
