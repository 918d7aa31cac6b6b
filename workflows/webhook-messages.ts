/** The webhook delivery workflow's public surface, shared by the API (which starts it) and the workflow. */
export const WEBHOOK_DELIVERY_WORKFLOW_TYPE = 'webhookDeliveryWorkflow';

export interface WebhookDeliveryInput {
  webhook_id: string;
  /** Batches one run handles before it continues as new (keeps each run's history small). */
  max_batches_per_run?: number;
  /** How long one wait for new events lasts before the workflow looks again (default 30 s). */
  wait_ms?: number;
}

/** One workflow per webhook. */
export function webhookWorkflowId(webhookId: string): string {
  return `webhook-${webhookId}`;
}
