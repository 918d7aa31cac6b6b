import { Writable } from 'node:stream';

/** Keeps the first `limit` bytes written to it, counts the rest and drops it. */
export class CappedSink extends Writable {
  private readonly chunks: Buffer[] = [];
  private kept = 0;
  private truncated = false;

  constructor(private readonly limit: number) {
    super();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: () => void): void {
    const room = this.limit - this.kept;
    if (chunk.length > room) this.truncated = true;
    if (room > 0) {
      const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
      this.chunks.push(Buffer.from(part));
      this.kept += part.length;
    }
    done();
  }

  result<K extends 'stdout' | 'stderr'>(key: K): Record<K, string> & Record<`${K}_truncated`, boolean> {
    return {
      [key]: Buffer.concat(this.chunks).toString('utf8'),
      [`${key}_truncated`]: this.truncated,
    } as Record<K, string> & Record<`${K}_truncated`, boolean>;
  }
}
