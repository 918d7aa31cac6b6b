import { RE2JS, RE2JSSyntaxException } from 're2js';

/**
 * A variable's `pattern`: a tenant-supplied regular expression, so it runs on RE2 (re2js, a pure JavaScript port
 * of Go's regexp), whose matching time is linear in the input whatever the pattern. Never JavaScript's RegExp,
 * which backtracks: `^(a|aa)+$` against 41 characters held the event loop for seconds there.
 *
 * Semantics are Go's: RE2 syntax (`(?i)`, `(?P<name>…)`, `\pN`, `[[:alpha:]]`, `\z`), and `test` is MatchString,
 * an unanchored find.
 */
export interface CompiledPattern {
  readonly source: string;
  /** Whether `value` contains a match (Go's MatchString). */
  test(value: string): boolean;
}

export const MAX_PATTERN_LENGTH = 1024;

const cache = new Map<string, CompiledPattern>();
const MAX_CACHED = 1000;

/** Compiles `pattern`; an Error whose message says what RE2 refused (lookaround and backreferences by name). */
export function compilePattern(pattern: string): CompiledPattern {
  const cached = cache.get(pattern);
  if (cached) return cached;
  if (pattern.length > MAX_PATTERN_LENGTH) throw new Error(`longer than ${MAX_PATTERN_LENGTH} characters`);
  let re: RE2JS;
  try {
    re = RE2JS.compile(pattern);
  } catch (err) {
    if (err instanceof RE2JSSyntaxException) throw new Error(syntaxMessage(err));
    throw err;
  }
  const compiled: CompiledPattern = { source: pattern, test: (value) => re.test(value) };
  if (cache.size >= MAX_CACHED) cache.clear();
  cache.set(pattern, compiled);
  return compiled;
}

/** RE2's parse error, with the constructs people bring from other engines named. */
function syntaxMessage(err: RE2JSSyntaxException): string {
  const at = err.input ?? '';
  if (at.startsWith('(?=') || at.startsWith('(?!') || at.startsWith('(?<=') || at.startsWith('(?<!')) {
    return `lookaround assertions are not supported (RE2 syntax): ${at}`;
  }
  if (at.startsWith('\\') && '123456789k'.includes(at[1] ?? ' '))
    return `backreferences are not supported (RE2 syntax): ${at}`;
  return err.message.replace(/^error parsing regexp: /, '');
}
