import { ActivityFailure, continueAsNew, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { InstanceBatch, WebhookActivities } from '../activities/webhook-activities.ts';
import type { WebhookDeliveryInput } from './webhook-messages.ts';

const DEFAULT_MAX_BATCHES_PER_RUN = 200;
const DEFAULT_WAIT_MS = 30_000;

/** Reading the outbox and moving the cursor: PostgreSQL away must never skip an event, so these retry forever. */
const outbox = proxyActivities<
  Pick<WebhookActivities, 'nextWebhookEvents' | 'advanceWebhookCursor' | 'failWebhookDelivery'>
>({
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: '10 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds' },
});

/**
 * One delivery, retried with backoff (1 s, 2 s, 4 s … capped at 10 min) for 24 h, then given up. The attempt
 * heartbeats while it waits for the receiver, so a worker killed mid-delivery is noticed after 10 s and the
 * attempt is made again by another worker (the receiver deduplicates by event id).
 */
const delivery = proxyActivities<Pick<WebhookActivities, 'deliverWebhookEvent'>>({
  startToCloseTimeout: '1 minute',
  heartbeatTimeout: '10 seconds',
  scheduleToCloseTimeout: '24 hours',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '10 minutes' },
});

/** What one run has done: it continues as new after enough batches (an idle wait counts as one). */
class DeliveryRun {
  batches = 0;
  constructor(private readonly maxBatches: number) {}

  get full(): boolean {
    return this.batches >= this.maxBatches || workflowInfo().continueAsNewSuggested;
  }
}

/**
 * Delivers a webhook's events in stream order: each batch's instances concurrently, each instance's events one
 * after another, and the next batch only once the batch is done. The cursor is the webhook's row, moved after
 * each batch; a delivery already made is not made again, so a batch read twice sends nothing twice. Ends when the
 * webhook is deleted.
 */
export async function webhookDeliveryWorkflow(input: WebhookDeliveryInput): Promise<void> {
  const run = new DeliveryRun(input.max_batches_per_run ?? DEFAULT_MAX_BATCHES_PER_RUN);
  const { webhook_id } = input;
  while (!run.full) {
    const next = await outbox.nextWebhookEvents({ webhook_id, wait_ms: input.wait_ms ?? DEFAULT_WAIT_MS });
    if (next.kind === 'gone') return;
    if (next.kind === 'events') {
      await Promise.all(next.instances.map((batch) => deliverInOrder(webhook_id, batch)));
      await outbox.advanceWebhookCursor({ webhook_id, from: next.from, to: next.to });
    }
    run.batches += 1;
  }
  await continueAsNew<typeof webhookDeliveryWorkflow>(input);
}

async function deliverInOrder(webhook_id: string, batch: InstanceBatch): Promise<void> {
  for (const event_id of batch.event_ids) {
    try {
      if ((await delivery.deliverWebhookEvent({ webhook_id, event_id })) === 'gone') return;
    } catch (err) {
      if (!(err instanceof ActivityFailure)) throw err;
      const error = err.cause instanceof Error ? err.cause.message : err.message;
      await outbox.failWebhookDelivery({ webhook_id, event_id, error });
    }
  }
}
