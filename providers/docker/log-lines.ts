/**
 * Lines of a non-TTY container's logs as the daemon returns them without `follow`: frames of an 8-byte header
 * (byte 0 = stream, bytes 4–7 = big-endian payload length) and the payload. Text that is not framed is split as-is.
 */
export function logLines(raw: Buffer | string): string[] {
  const buf = typeof raw === 'string' ? Buffer.from(raw) : raw;
  const chunks: Buffer[] = [];
  let offset = 0;
  let framed = true;
  while (offset < buf.length) {
    const stream = buf[offset];
    if (offset + 8 > buf.length || (stream !== 0 && stream !== 1 && stream !== 2)) {
      framed = false;
      break;
    }
    const length = buf.readUInt32BE(offset + 4);
    chunks.push(buf.subarray(offset + 8, offset + 8 + length));
    offset += 8 + length;
  }
  const text = framed ? Buffer.concat(chunks).toString('utf8') : buf.toString('utf8');
  return text
    .split('\n')
    .map((line) => line.replace(/\r$/, ''))
    .filter((line) => line.length > 0);
}
