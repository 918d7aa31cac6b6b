export { instanceWorkflow } from './instance-workflow';
