import type { Instance, InstanceEvent } from '../clients/typescript/client.ts';
import { eventLine } from './output.ts';

/**
 * The live progress of a create or command on stderr: each transition and lifecycle event on its own line as it
 * is seen, and, on a terminal, a last line rewritten in place with the current state and the time so far.
 */
export class ProgressLine {
  private readonly started = Date.now();
  private state: string | undefined;
  private readonly tty = process.stderr.isTTY === true;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly instanceId: string) {
    if (this.tty) {
      this.timer = setInterval(() => this.redraw(), 200);
      this.timer.unref();
    }
  }

  /** Prints the state when it changed: `inst_… provisioning → starting (1.2s)`. */
  observe(instance: Pick<Instance, 'state'>): void {
    if (instance.state === this.state) return;
    const from = this.state;
    this.state = instance.state;
    this.print(`${this.instanceId}  ${from ? `${from} → ` : ''}${instance.state}  (${this.elapsed()})`);
  }

  event(event: InstanceEvent): void {
    this.print(`  ${eventLine(event)}`);
  }

  done(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.tty) process.stderr.write('\r\x1b[2K');
  }

  private print(line: string): void {
    process.stderr.write(this.tty ? `\r\x1b[2K${line}\n` : `${line}\n`);
    this.redraw();
  }

  private redraw(): void {
    if (!this.tty || !this.state) return;
    process.stderr.write(`\r\x1b[2K  … ${this.state} (${this.elapsed()})`);
  }

  private elapsed(): string {
    return `${((Date.now() - this.started) / 1000).toFixed(1)}s`;
  }
}
