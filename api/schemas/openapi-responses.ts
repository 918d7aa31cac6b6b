import type { ResponseConfig } from '@asteasolutions/zod-to-openapi';
import type { ZodType } from 'zod';
import { problemSchema } from './instance-responses.ts';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** A JSON response of the OpenAPI document. */
export function json(
  schema: ZodType,
  description: string,
  headers?: ResponseConfig['headers'],
): ResponseConfig {
  return { description, content: { 'application/json': { schema } }, ...(headers ? { headers } : {}) };
}

/** A problem+json response of the OpenAPI document. */
export function problemResponse(description: string): ResponseConfig {
  return { description, content: { [PROBLEM_CONTENT_TYPE]: { schema: problemSchema } } };
}

/**
 * The problem+json responses of a route that needs a role (`admin` or `operator`): the usual ones plus `texts`
 * (which may override them).
 */
export function roleProblems(
  role: 'admin' | 'operator',
  texts: Record<number, string>,
): Record<number, ResponseConfig> {
  const all: Record<number, string> = {
    400: 'Invalid request: the offending fields are named in `errors`',
    401: 'Missing, invalid or expired token',
    403: `The caller lacks the ${role} role`,
    429: 'Rate limited; see Retry-After',
    500: 'Unexpected error (logged)',
    ...texts,
  };
  return Object.fromEntries(Object.entries(all).map(([status, text]) => [status, problemResponse(text)]));
}
