import { ApplicationFailure, Context } from '@temporalio/activity';
import type { EventStream, StreamCursor } from '../db/event-stream.ts';
import type { WebhookStore } from '../db/webhook-store.ts';
import { eventMessage } from '../domain/event-message.ts';
import { type HostLookup, RefusedAddressError } from '../webhooks/address.ts';
import { postWebhook } from '../webhooks/post.ts';
import { SIGNATURE_HEADER, signatureHeader } from '../webhooks/signature.ts';

/** Events of one instance in a batch, in their order. */
export interface InstanceBatch {
  instance_id: string;
  event_ids: string[];
}

/** What the delivery workflow sends next. */
export type NextWebhookEvents =
  | { kind: 'gone' }
  | { kind: 'idle' }
  | { kind: 'events'; from: StreamCursor; to: StreamCursor; instances: InstanceBatch[] };

export type DeliveryResult = 'delivered' | 'gone';

export interface WebhookActivities {
  /** The webhook's next events after its cursor (queued as pending deliveries); waits up to wait_ms for some. */
  nextWebhookEvents(input: { webhook_id: string; wait_ms: number }): Promise<NextWebhookEvents>;
  /** One attempt to deliver the event; throws (and counts the attempt) when the receiver did not take it. */
  deliverWebhookEvent(input: { webhook_id: string; event_id: string }): Promise<DeliveryResult>;
  failWebhookDelivery(input: { webhook_id: string; event_id: string; error: string }): Promise<void>;
  advanceWebhookCursor(input: { webhook_id: string; from: StreamCursor; to: StreamCursor }): Promise<void>;
}

export interface WebhookActivityDeps {
  webhooks: WebhookStore;
  stream: EventStream;
  /** CTRLPLANE_WEBHOOK_ALLOW_PRIVATE: loopback, private and link-local receivers allowed. */
  allowPrivate: boolean;
  lookup: HostLookup;
  /** How long one attempt waits for the receiver's answer. */
  timeoutMs: number;
}

const BATCH = 100;
const POLL_MS = 1_000;
/** Not retried: the webhook's host is refused, and will be on every attempt. */
export const REFUSED_ADDRESS_FAILURE = 'RefusedAddress';

export function createWebhookActivities(deps: WebhookActivityDeps): WebhookActivities {
  const { webhooks, stream } = deps;
  return {
    async nextWebhookEvents({ webhook_id, wait_ms }) {
      const context = Context.current();
      const deadline = Date.now() + wait_ms;
      for (;;) {
        const target = await webhooks.target(webhook_id);
        if (!target) return { kind: 'gone' };
        if (target.enabled) {
          const events = await stream.page(
            { tenant_id: target.tenant_id },
            target.cursor,
            target.event_types.length > 0 ? { types: target.event_types } : {},
            BATCH,
          );
          const last = events.at(-1);
          if (last) {
            await webhooks.queue(webhook_id, events);
            const instances = new Map<string, string[]>();
            for (const e of events)
              instances.set(e.instance_id, [...(instances.get(e.instance_id) ?? []), e.id]);
            return {
              kind: 'events',
              from: target.cursor,
              to: last.cursor,
              instances: [...instances].map(([instance_id, event_ids]) => ({ instance_id, event_ids })),
            };
          }
        }
        if (Date.now() >= deadline) return { kind: 'idle' };
        context.heartbeat();
        await context.sleep(Math.min(POLL_MS, Math.max(deadline - Date.now(), 0)));
      }
    },

    async deliverWebhookEvent({ webhook_id, event_id }) {
      const context = Context.current();
      const target = await webhooks.target(webhook_id);
      if (!target) return 'gone';
      const status = await webhooks.deliveryStatus(webhook_id, event_id);
      if (status === undefined) return 'gone';
      if (status === 'delivered') return 'delivered';
      if (!target.enabled) throw ApplicationFailure.retryable('the webhook is disabled', 'WebhookDisabled');
      const event = await stream.event(event_id);
      if (!event) return 'gone';
      const body = JSON.stringify(eventMessage(event));
      const timestamp = Math.floor(Date.now() / 1000);
      const beat = setInterval(() => context.heartbeat(), 1_000);
      let code: number;
      try {
        code = await postWebhook(
          {
            url: target.url,
            body,
            headers: {
              'Content-Type': 'application/json',
              'User-Agent': 'ctrlplane-webhooks',
              'X-Ctrlplane-Event-Id': event.id,
              'X-Ctrlplane-Event-Type': event.type,
              [SIGNATURE_HEADER]: signatureHeader(target.secret, timestamp, body),
            },
            timeoutMs: deps.timeoutMs,
            signal: context.cancellationSignal,
          },
          { allowPrivate: deps.allowPrivate, lookup: deps.lookup },
        );
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        await webhooks.recordAttempt(webhook_id, event_id, {
          kind: 'refused',
          response_code: null,
          error: message,
        });
        if (err instanceof RefusedAddressError) {
          throw ApplicationFailure.nonRetryable(message, REFUSED_ADDRESS_FAILURE);
        }
        throw ApplicationFailure.retryable(`the receiver did not answer: ${message}`, 'ReceiverUnreachable');
      } finally {
        clearInterval(beat);
      }
      if (code >= 200 && code < 300) {
        await webhooks.recordAttempt(webhook_id, event_id, { kind: 'delivered', response_code: code });
        return 'delivered';
      }
      const error = `the receiver answered ${code}`;
      await webhooks.recordAttempt(webhook_id, event_id, { kind: 'refused', response_code: code, error });
      throw ApplicationFailure.retryable(error, 'ReceiverRefused');
    },

    async failWebhookDelivery({ webhook_id, event_id, error }) {
      await webhooks.markFailed(webhook_id, event_id, error);
    },

    async advanceWebhookCursor({ webhook_id, from, to }) {
      await webhooks.advance(webhook_id, from, to);
    },
  };
}
