import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { REPO_ROOT } from '../temporal-cli.ts';

type RunChild = ChildProcess & { killedByRun?: boolean };

/**
 * The API or a worker as its own process (`node --import tsx api/main.ts`), as in production: killed with
 * SIGKILL and started again by the chaos run; one that exits by itself is started again too (and counted).
 * Output goes to one log file across restarts.
 */
export class AppProcess {
  private child: RunChild | undefined;
  private readonly log: WriteStream;
  private stopping = false;
  starts = 0;
  /** Exits the run did not cause (each is followed by a restart a second later). */
  unexpectedExits = 0;

  constructor(
    readonly name: string,
    private readonly entry: string,
    private readonly readyLine: RegExp,
    private readonly env: NodeJS.ProcessEnv,
    logPath: string,
  ) {
    this.log = createWriteStream(logPath, { flags: 'a' });
  }

  /** Up and past its ready line. */
  get ready(): boolean {
    return this.up && this.readyChild === this.child;
  }

  private readyChild: ChildProcess | undefined;

  get up(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts it and resolves once it printed its ready line. */
  start(timeoutMs = 120_000): Promise<void> {
    const child: RunChild = spawn(process.execPath, ['--import', 'tsx', this.entry], {
      cwd: REPO_ROOT,
      env: this.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.starts += 1;
    this.log.write(`--- ${new Date().toISOString()} start #${this.starts} (pid ${child.pid})\n`);
    child.stderr?.pipe(this.log, { end: false });
    return new Promise((resolve, reject) => {
      let seen = '';
      const timer = setTimeout(
        () => reject(new Error(`${this.name} did not print ${this.readyLine} within ${timeoutMs / 1000}s`)),
        timeoutMs,
      );
      child.stdout?.on('data', (chunk: Buffer) => {
        this.log.write(chunk);
        if (seen === 'ready') return;
        seen = (seen + chunk.toString('utf8')).slice(-4096);
        if (this.readyLine.test(seen)) {
          seen = 'ready';
          this.readyChild = child;
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code, signal) => {
        this.log.write(`--- ${new Date().toISOString()} exit ${code ?? signal}\n`);
        if (!this.stopping && this.child === child && !child.killedByRun) {
          this.unexpectedExits += 1;
          setTimeout(() => {
            if (!this.stopping && this.child === child) this.start().catch(() => {});
          }, 1_000);
        }
        if (seen !== 'ready') {
          clearTimeout(timer);
          reject(new Error(`${this.name} exited (${code ?? signal}) before it was ready`));
        }
      });
    });
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL', timeoutMs = 30_000): Promise<void> {
    const child = this.child;
    if (!child || !this.up) return;
    child.killedByRun = true;
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.once('exit', () => {
        clearTimeout(force);
        resolve();
      });
      child.kill(signal);
    });
  }

  /** Graceful stop (SIGTERM, SIGKILL after 30 s) and the log closed. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.kill('SIGTERM');
    await new Promise<void>((resolve) => this.log.end(resolve));
  }
}
