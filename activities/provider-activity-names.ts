/**
 * The activities that call a provider. With a host agent they run on its task queue (the instance workflow
 * routes them there, workflows/activity-proxies.ts) and they are all an agent runs (worker/agent-worker.ts).
 * No imports: the workflow bundle uses this list too.
 */
export const PROVIDER_ACTIVITY_NAMES = [
  'provisionInstance',
  'startInstance',
  'stopInstance',
  'restartInstance',
  'restartService',
  'scaleInstance',
  'deprovisionInstance',
  'observeInstance',
] as const;

export type ProviderActivityName = (typeof PROVIDER_ACTIVITY_NAMES)[number];
