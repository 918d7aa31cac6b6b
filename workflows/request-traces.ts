import { type Context, context } from '@opentelemetry/api';

/**
 * The trace each queued request arrived in: its update or signal handler runs inside the span the caller's
 * headers continue, but the loop runs the command later, outside it. Running the command inside the context
 * remembered here puts its activities (and the provider calls in them) in the trace of the request that asked
 * for it, not in the trace of the create that started the workflow. Without tracing installed the context is
 * the empty one and nothing changes. Not carried across continue-as-new: a command carried over runs untraced.
 */
export class RequestTraces {
  private readonly byRequestId = new Map<string, Context>();

  remember(requestId: string): void {
    this.byRequestId.set(requestId, context.active());
  }

  /** Runs `work` in the trace `requestId` arrived in (if it is known), and forgets it. */
  within<T>(requestId: string, work: () => Promise<T>): Promise<T> {
    const arrivedIn = this.byRequestId.get(requestId);
    this.byRequestId.delete(requestId);
    return arrivedIn ? context.with(arrivedIn, work) : work();
  }
}
