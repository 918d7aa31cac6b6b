/**
 * A secret variable's `secret.key` names a secret of the caller's own tenant: it is relative to the tenant's
 * scope by construction, and the store puts the tenant in front of it (see providers/secret-store.ts). The
 * tenant never appears in the key, so `othertenant/db/password` is just a key `othertenant/db/password` of the
 * caller. Anything that could point elsewhere (an absolute path, `.` or `..`, an empty segment, a scheme, a
 * backslash, whitespace) is not a key at all. Plain TS: the API checks keys at create time, the activity again.
 */

/** Segments of letters, digits, `.`, `_` and `-` separated by single `/`; no `.` or `..` segment. */
const SEGMENT_CHARS = /^[A-Za-z0-9._-]+$/;
export const MAX_SECRET_KEY_LENGTH = 512;

export const SECRET_KEY_RULE =
  'a secret key is relative to your tenant: segments of letters, digits, ".", "_" and "-" separated by "/" ' +
  '(no leading or trailing "/", no empty, "." or ".." segment)';

/** The key's segments, or why it is not a key of the caller's tenant. */
export function secretKeySegments(key: string): { segments: string[] } | { problem: string } {
  if (key.length === 0) return { problem: 'is empty' };
  if (key.length > MAX_SECRET_KEY_LENGTH)
    return { problem: `is longer than ${MAX_SECRET_KEY_LENGTH} characters` };
  if (key.startsWith('/')) return { problem: 'is absolute (starts with "/")' };
  const segments = key.split('/');
  for (const segment of segments) {
    if (segment === '') return { problem: 'has an empty segment' };
    if (segment === '.' || segment === '..') return { problem: `has a ${JSON.stringify(segment)} segment` };
    if (!SEGMENT_CHARS.test(segment)) {
      return {
        problem: `has a segment ${JSON.stringify(segment)} with characters other than A-Z a-z 0-9 . _ -`,
      };
    }
  }
  return { segments };
}
