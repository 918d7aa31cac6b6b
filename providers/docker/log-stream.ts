import type { LogLine } from '../provider.ts';

type Stream = LogLine['stream'];

/** The RFC3339Nano token the daemon puts before each message when asked for `timestamps=true`. */
const TIMESTAMP = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2}))(?: |$)/;
const RFC3339 = /^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$/;
const NEWLINE = 0x0a;

/** Splits a leading timestamp token off a message; `ts` is '' when there is none. */
function splitTimestamp(message: Buffer): { ts: string; rest: Buffer } {
  const head = message.subarray(0, 40).toString('latin1');
  const match = TIMESTAMP.exec(head);
  if (!match?.[1]) return { ts: '', rest: message };
  return { ts: match[1], rest: message.subarray(match[0].length) };
}

interface Pending {
  ts: string;
  parts: Buffer[];
}

/**
 * Turns the body of `GET /containers/{id}/logs?timestamps=true` into LogLines, chunk by chunk, in order.
 *
 * A non-TTY container's log is a sequence of frames: an 8-byte header (byte 0 = stream, 2 meaning stderr and
 * anything else stdout; bytes 4–7 = big-endian payload length) and a payload, which is one log message prefixed
 * with its timestamp. Messages are split on '\n' (a message without one, e.g. a long line the log driver cut,
 * continues in the stream's next frame and keeps its first timestamp); empty lines are skipped, as in the
 * reference. A TTY container's log is raw text, read as stdout.
 */
export class LogDemuxer {
  private buffer: Buffer = Buffer.alloc(0);
  private mode: 'unknown' | 'framed' | 'raw' = 'unknown';
  private readonly pending: Record<Stream, Pending | undefined> = { stdout: undefined, stderr: undefined };

  /** The complete lines the chunk finishes. Throws on a malformed frame. */
  push(chunk: Buffer): LogLine[] {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const out: LogLine[] = [];
    if (this.mode === 'unknown') {
      if (this.buffer.length < 4) return out;
      const b = this.buffer;
      this.mode =
        b[0] !== undefined && b[0] <= 2 && b[1] === 0 && b[2] === 0 && b[3] === 0 ? 'framed' : 'raw';
    }
    if (this.mode === 'raw') {
      this.takeRaw(out);
      return out;
    }
    let offset = 0;
    while (this.buffer.length - offset >= 8) {
      const type = this.buffer[offset] ?? 0;
      if (
        type > 2 ||
        this.buffer[offset + 1] !== 0 ||
        this.buffer[offset + 2] !== 0 ||
        this.buffer[offset + 3] !== 0
      ) {
        throw new Error(`malformed log frame header at byte ${offset}`);
      }
      const length = this.buffer.readUInt32BE(offset + 4);
      if (this.buffer.length - offset - 8 < length) break;
      const payload = this.buffer.subarray(offset + 8, offset + 8 + length);
      offset += 8 + length;
      this.message(type === 2 ? 'stderr' : 'stdout', payload, out);
    }
    this.buffer = offset === 0 ? this.buffer : Buffer.from(this.buffer.subarray(offset));
    return out;
  }

  /** The lines left when the stream ends (a last line without '\n', or a truncated raw tail). */
  end(): LogLine[] {
    const out: LogLine[] = [];
    if (this.mode !== 'framed' && this.buffer.length > 0) {
      this.mode = 'raw';
      this.buffer = Buffer.concat([this.buffer, Buffer.from('\n')]);
      this.takeRaw(out);
    }
    this.buffer = Buffer.alloc(0);
    for (const stream of ['stdout', 'stderr'] as const) {
      const pending = this.pending[stream];
      this.pending[stream] = undefined;
      if (pending) emit(out, stream, pending.ts, Buffer.concat(pending.parts));
    }
    return out;
  }

  private message(stream: Stream, payload: Buffer, out: LogLine[]): void {
    const { ts, rest } = splitTimestamp(payload);
    let start = 0;
    for (let i = rest.indexOf(NEWLINE); i >= 0; i = rest.indexOf(NEWLINE, start)) {
      const piece = rest.subarray(start, i);
      const pending = this.pending[stream];
      this.pending[stream] = undefined;
      if (pending) emit(out, stream, pending.ts, Buffer.concat([...pending.parts, piece]));
      else emit(out, stream, ts, piece);
      start = i + 1;
    }
    if (start < rest.length) {
      const pending = this.pending[stream] ?? { ts, parts: [] };
      pending.parts.push(Buffer.from(rest.subarray(start)));
      this.pending[stream] = pending;
    }
  }

  private takeRaw(out: LogLine[]): void {
    let start = 0;
    for (let i = this.buffer.indexOf(NEWLINE); i >= 0; i = this.buffer.indexOf(NEWLINE, start)) {
      const { ts, rest } = splitTimestamp(this.buffer.subarray(start, i));
      emit(out, 'stdout', ts, rest);
      start = i + 1;
    }
    this.buffer = Buffer.from(this.buffer.subarray(start));
  }
}

function emit(out: LogLine[], stream: Stream, ts: string, bytes: Buffer): void {
  const line = bytes.toString('utf8').replace(/\r$/, '');
  if (line.length > 0) out.push({ ts, stream, line });
}

/** All lines of a complete (non-follow) log body. */
export function demuxAll(raw: Buffer | string): LogLine[] {
  const demuxer = new LogDemuxer();
  const lines = demuxer.push(typeof raw === 'string' ? Buffer.from(raw) : raw);
  return [...lines, ...demuxer.end()];
}

/**
 * An RFC 3339 time (any precision up to nanoseconds) as the daemon's `since`: `<seconds>.<nanoseconds>`.
 * Throws on anything else.
 */
export function dockerSince(since: string): string {
  const match = RFC3339.exec(since.trim());
  if (!match) throw new Error(`"${since}" is not an RFC 3339 time`);
  const [, date, time, fraction = '', zone = 'Z'] = match;
  const ms = Date.parse(`${date}T${time}${zone.toUpperCase()}`);
  if (Number.isNaN(ms)) throw new Error(`"${since}" is not an RFC 3339 time`);
  const seconds = Math.floor(ms / 1000);
  if (seconds < 0) return '0.000000000';
  return `${seconds}.${fraction.padEnd(9, '0')}`;
}

/** An RFC 3339 time as nanoseconds since the epoch (for comparing the daemon's RFC3339Nano timestamps). */
export function timestampNanos(ts: string): bigint {
  const [seconds, nanos] = dockerSince(ts).split('.');
  return BigInt(seconds ?? '0') * 1_000_000_000n + BigInt(nanos ?? '0');
}
