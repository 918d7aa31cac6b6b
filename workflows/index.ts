export { billingSweepWorkflow } from './billing-sweep-workflow.ts';
export { instanceWorkflow } from './instance-workflow.ts';
export { providerWatchWorkflow } from './provider-watch-workflow.ts';
export { webhookDeliveryWorkflow } from './webhook-delivery-workflow.ts';
