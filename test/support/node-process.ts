import { type ChildProcess, spawn } from 'node:child_process';
import { REPO_ROOT } from '../../scripts/temporal-cli.ts';

export interface NodeProcess {
  process: ChildProcess;
  /** Every stdout line so far. */
  lines: string[];
  /** Resolves with the first stdout line matching `pattern`; rejects if the process exits first. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Sends `signal` and resolves with the exit code (null when a signal ended it). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Runs a JavaScript file with plain node (this node binary, no loader: NODE_OPTIONS is cleared), as the
 * production image does; stdout is kept for assertions, stderr goes to the test's output.
 */
export function spawnPlainNode(file: string, args: string[], env: Record<string, string>): NodeProcess {
  const { NODE_OPTIONS: _dropped, ...inherited } = process.env;
  const child = spawn(process.execPath, [file, ...args], {
    cwd: REPO_ROOT,
    env: { ...inherited, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  let pending = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    const parts = (pending + chunk.toString('utf8')).split('\n');
    pending = parts.pop() ?? '';
    lines.push(...parts);
    for (const wake of [...waiters]) wake();
  });
  child.once('exit', () => {
    for (const wake of [...waiters]) wake();
  });
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  return {
    process: child,
    lines,
    waitForLine(pattern, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => finish(new Error(`${file} never printed ${pattern}`)), timeoutMs);
        const finish = (error?: Error, line?: string) => {
          clearTimeout(timer);
          waiters.delete(check);
          if (error) reject(error);
          else resolve(line ?? '');
        };
        const check = () => {
          const line = lines.find((l) => pattern.test(l));
          if (line !== undefined) finish(undefined, line);
          else if (exited())
            finish(
              new Error(
                `${file} exited (${child.exitCode ?? child.signalCode}): ${lines.slice(-5).join('\n')}`,
              ),
            );
        };
        waiters.add(check);
        check();
      });
    },
    stop(signal = 'SIGTERM') {
      if (exited()) return Promise.resolve(child.exitCode);
      return new Promise((resolve) => {
        child.once('exit', (code) => resolve(code));
        child.kill(signal);
      });
    },
  };
}
