/**
 * The environment variable that holds one tenant's secret in the `env` secret store, by an encoding that is
 * one-to-one, so no two (tenant, key) pairs share a variable:
 *
 *   <prefix><tenant>__<segment>__<segment>…      e.g. tenant acme, key db/password → CTRLPLANE_SECRET_ACME__DB__PASSWORD
 *
 * Each part is encoded byte by byte (UTF-8): `a`–`z` become `A`–`Z`, `0`–`9` stay, and every other byte,
 * upper-case letters, `-`, `.` and `_` included, becomes `_` and two upper-case hex digits (`-` → `_2D`,
 * `_` → `_5F`, `.` → `_2E`, `A` → `_41`). So tenant `acme-labs` with key `db/password` is
 * `CTRLPLANE_SECRET_ACME_2DLABS__DB__PASSWORD`, and tenant `acme` with key `labs/db/password` is
 * `CTRLPLANE_SECRET_ACME__LABS__DB__PASSWORD`.
 *
 * Why it cannot collide: an encoded part is a sequence of tokens (a letter or digit, or `_` and two hex
 * digits); a token never ends in `_`, so `__` never occurs inside a part and only ever separates parts; and
 * within a part each `_` starts a token of exactly three characters, so a part decodes one way only.
 * `npm run secret-env-name -- <tenant> <key>` prints the name.
 */
export function secretEnvName(prefix: string, tenantId: string, keySegments: readonly string[]): string {
  return prefix + [tenantId, ...keySegments].map(encodeEnvPart).join('__');
}

export function encodeEnvPart(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const isLower = byte >= 0x61 && byte <= 0x7a;
    const isDigit = byte >= 0x30 && byte <= 0x39;
    if (isLower) out += String.fromCharCode(byte - 0x20);
    else if (isDigit) out += String.fromCharCode(byte);
    else out += `_${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** The inverse of encodeEnvPart, for tests and tools; undefined for a string no part encodes to. */
export function decodeEnvPart(encoded: string): string | undefined {
  const bytes: number[] = [];
  for (let i = 0; i < encoded.length; ) {
    const c = encoded[i]!;
    if (c >= 'A' && c <= 'Z') {
      bytes.push(c.toLowerCase().charCodeAt(0));
      i += 1;
    } else if (c >= '0' && c <= '9') {
      bytes.push(c.charCodeAt(0));
      i += 1;
    } else if (c === '_' && /^[0-9A-F]{2}$/.test(encoded.slice(i + 1, i + 3))) {
      const byte = Number.parseInt(encoded.slice(i + 1, i + 3), 16);
      const isLower = byte >= 0x61 && byte <= 0x7a;
      const isDigit = byte >= 0x30 && byte <= 0x39;
      if (isLower || isDigit) return undefined; // never escaped: a second spelling would break one-to-one
      bytes.push(byte);
      i += 3;
    } else {
      return undefined;
    }
  }
  const text = Buffer.from(bytes).toString('utf8');
  return encodeEnvPart(text) === encoded ? text : undefined;
}
