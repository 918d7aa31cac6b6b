import { RetryableError } from './problem.ts';

/**
 * True for a failure after which the work may still have happened: Temporal did not confirm a workflow start or
 * a command within the deadline, yet the server may have applied it. Such a request is neither done nor
 * undone, so its Idempotency-Key stays bound to it (and a create keeps its row and reserved id): the retry with
 * the same key finishes that very request instead of doing the work a second time.
 */
export function isInDoubt(err: unknown): boolean {
  return err instanceof RetryableError && err.code === 'temporal_unavailable';
}
