export const INSTANCE_STATES = [
  'provisioning',
  'starting',
  'running',
  'stopping',
  'stopped',
  'failed',
  'destroying',
  'destroyed',
] as const;

export type InstanceState = (typeof INSTANCE_STATES)[number];

export function isInstanceState(value: unknown): value is InstanceState {
  return typeof value === 'string' && (INSTANCE_STATES as readonly string[]).includes(value);
}
