import type { Request } from 'express';
import { CtrlplaneError } from '../domain/errors.ts';

/**
 * An instance's version is the read model's `seq` (the workflow's transition counter): each transition the
 * workflow records makes a new representation, so the ETag is strong.
 */
export function etagOf(row: { seq: number }): string {
  return `"${row.seq}"`;
}

/**
 * If-Match on PATCH and commands: the caller's ETag must name the current version (`*` matches any).
 * The read model may lag the workflow by a transition; this guards against clients acting on stale reads,
 * the workflow still decides whether the command is allowed.
 */
export function checkIfMatch(req: Request, row: { seq: number }): void {
  const header = req.get('If-Match');
  if (header === undefined) return;
  const tags = header.split(',').map((t) => t.trim());
  const current = etagOf(row);
  if (tags.includes('*') || tags.includes(current)) return;
  throw new CtrlplaneError(
    'precondition_failed',
    `If-Match ${JSON.stringify(header.slice(0, 100))} does not name the current version ${current}`,
    [{ field: 'If-Match', message: `the current ETag is ${current}` }],
  );
}
