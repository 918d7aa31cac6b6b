import { rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A unix socket that forwards to the real Docker engine until it is cut: lets a test take "the engine" away
 * from one stack and give it back, without stopping the engine everyone else uses.
 */
export class DockerSocketProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(
    readonly path: string,
    private readonly target = '/var/run/docker.sock',
  ) {}

  get dockerHost(): string {
    return `unix://${this.path}`;
  }

  async open(): Promise<void> {
    if (this.server) return;
    rmSync(this.path, { force: true });
    this.server = createServer((client) => {
      const upstream = connect(this.target);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => s.destroy());
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => this.server?.listen(this.path, resolve));
  }

  /** Refuses new connections and drops the open ones, as a dead engine would. */
  async cut(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server = undefined;
  }
}
