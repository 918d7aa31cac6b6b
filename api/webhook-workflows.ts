import type { Client } from '@temporalio/client';
import {
  WEBHOOK_DELIVERY_WORKFLOW_TYPE,
  type WebhookDeliveryInput,
  webhookWorkflowId,
} from '../workflows/webhook-messages.ts';
import { RetryableError } from './problem.ts';

/** Starts the delivery workflow of a webhook (one per webhook; starting it again when it runs does nothing). */
export class WebhookWorkflows {
  constructor(private readonly options: { client: Client; taskQueue: string; acceptTimeoutMs: number }) {}

  async ensure(webhookId: string): Promise<void> {
    const input: WebhookDeliveryInput = { webhook_id: webhookId };
    try {
      await Promise.race([
        this.options.client.workflow.start(WEBHOOK_DELIVERY_WORKFLOW_TYPE, {
          workflowId: webhookWorkflowId(webhookId),
          taskQueue: this.options.taskQueue,
          args: [input],
          workflowIdConflictPolicy: 'USE_EXISTING',
        }),
        new Promise((_, reject) =>
          setTimeout(() => reject(new Error('no answer in time')), this.options.acceptTimeoutMs).unref(),
        ),
      ]);
    } catch (err) {
      const detail = err instanceof Error ? err.message : String(err);
      throw new RetryableError(
        'temporal_unavailable',
        `the workflow service did not start the webhook's deliveries (${detail})`,
        1,
      );
    }
  }
}
