/**
 * A minimal in-memory tar (POSIX ustar, with a PAX header for long paths) of regular files, enough for Docker's
 * `PUT /containers/{id}/archive`. The daemon creates missing parent directories (mode 0755) when it extracts.
 */

export interface TarFile {
  /** Path inside the archive, relative (no leading '/'), '/'-separated. */
  path: string;
  content: Buffer;
  /** Permission bits; default 0o644. */
  mode?: number;
  /** Seconds since the epoch; default 0 so equal inputs give equal archives. */
  mtime?: number;
}

const BLOCK = 512;

function octal(value: number, width: number): string {
  // width includes the terminating NUL.
  return value.toString(8).padStart(width - 1, '0');
}

function writeString(header: Buffer, value: string, offset: number, width: number): void {
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length > width) throw new Error(`tar: "${value}" does not fit in ${width} bytes`);
  bytes.copy(header, offset);
}

function header(
  name: string,
  size: number,
  mode: number,
  mtime: number,
  type: '0' | 'x',
  prefix = '',
): Buffer {
  const h = Buffer.alloc(BLOCK, 0);
  writeString(h, name, 0, 100);
  writeString(h, octal(mode & 0o7777, 8), 100, 8);
  writeString(h, octal(0, 8), 108, 8); // uid
  writeString(h, octal(0, 8), 116, 8); // gid
  writeString(h, octal(size, 12), 124, 12);
  writeString(h, octal(Math.max(0, Math.floor(mtime)), 12), 136, 12);
  h.fill(0x20, 148, 156); // checksum is computed with its own field as spaces
  writeString(h, type, 156, 1);
  writeString(h, 'ustar\u0000', 257, 6);
  writeString(h, '00', 263, 2);
  writeString(h, 'root', 265, 32);
  writeString(h, 'root', 297, 32);
  writeString(h, prefix, 345, 155);
  let sum = 0;
  for (const byte of h) sum += byte;
  writeString(h, `${octal(sum, 7)}\u0000 `, 148, 8);
  return h;
}

function padded(content: Buffer): Buffer[] {
  const rest = content.length % BLOCK;
  return rest === 0 ? [content] : [content, Buffer.alloc(BLOCK - rest, 0)];
}

/** A PAX record `"<len> path=<value>\n"`, where <len> counts the whole record including itself. */
function paxRecord(key: string, value: string): Buffer {
  const body = ` ${key}=${value}\n`;
  const bodyLength = Buffer.byteLength(body);
  let length = bodyLength + 1;
  while (String(length).length + bodyLength !== length) length = String(length).length + bodyLength;
  return Buffer.from(`${length}${body}`, 'utf8');
}

/** Splits a path into ustar's prefix (≤155 bytes) and name (≤100 bytes) at a '/', if possible. */
function splitUstar(path: string): { prefix: string; name: string } | undefined {
  if (Buffer.byteLength(path) <= 100) return { prefix: '', name: path };
  for (let i = path.indexOf('/'); i >= 0; i = path.indexOf('/', i + 1)) {
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100 && name.length > 0) {
      return { prefix, name };
    }
  }
  return undefined;
}

export function tarArchive(files: readonly TarFile[]): Buffer {
  const parts: Buffer[] = [];
  for (const file of files) {
    const path = file.path.replace(/^\/+/, '');
    if (!path) throw new Error('tar: empty path');
    const mode = file.mode ?? 0o644;
    const mtime = file.mtime ?? 0;
    const split = splitUstar(path);
    if (split) {
      parts.push(header(split.name, file.content.length, mode, mtime, '0', split.prefix));
    } else {
      const pax = paxRecord('path', path);
      parts.push(header('PaxHeader', pax.length, 0o644, mtime, 'x'), ...padded(pax));
      // The ustar name is a fallback for readers without PAX support.
      parts.push(header('ctrlplane-long-path', file.content.length, mode, mtime, '0'));
    }
    parts.push(...padded(file.content));
  }
  parts.push(Buffer.alloc(BLOCK * 2, 0));
  return Buffer.concat(parts);
}
