import type { z } from 'zod';
import { CtrlplaneError, type FieldIssue } from '../domain/errors.ts';

/** Parses input with a schema; a failure is a 400 naming every offending field. */
export function parseInput<S extends z.ZodType>(
  schema: S,
  input: unknown,
  where: 'body' | 'query' | 'path',
): z.infer<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issues: FieldIssue[] = result.error.issues.map((issue) => {
    const path = [...issue.path];
    if (issue.code === 'unrecognized_keys') {
      return {
        field: fieldName(where, [...path, issue.keys[0] ?? '']),
        message: `unknown field(s): ${issue.keys.join(', ')}`,
      };
    }
    return { field: fieldName(where, path), message: issue.message };
  });
  const first = issues[0];
  throw new CtrlplaneError(
    'invalid_request',
    first ? `${first.field}: ${first.message}` : 'invalid input',
    issues,
  );
}

function fieldName(where: 'body' | 'query' | 'path', path: PropertyKey[]): string {
  if (path.length === 0) return where;
  return path
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`))
    .join('');
}
