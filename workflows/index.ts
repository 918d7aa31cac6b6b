export { billingSweepWorkflow } from './billing-sweep-workflow';
export { instanceWorkflow } from './instance-workflow';
