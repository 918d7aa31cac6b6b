import type { InstanceActivities } from '../activities/instance-activity-types.ts';
import { isServicesSource } from '../domain/sources/deployment-source.ts';

/**
 * One line per activity, as the Temporal UI shows it on the activity in an instance's history (its summary):
 * what the step does for the lifecycle, so that a create, stop, start or delete reads plainly among them.
 */
export const ACTIVITY_SUMMARIES: {
  readonly [K in keyof InstanceActivities]: (input: Parameters<InstanceActivities[K]>[0]) => string;
} = {
  provisionInstance: (i) =>
    `provision "${i.request.name}" on ${i.provider_name}: ${
      !i.source || isServicesSource(i.source.type)
        ? `${i.request.services.length} service(s)`
        : `${i.source.type} source`
    }`,
  startInstance: (i) => `start the instance's workloads on ${i.provider_name}`,
  stopInstance: (i) => `stop the instance's workloads on ${i.provider_name}`,
  restartInstance: (i) => `restart the instance's workloads on ${i.provider_name}`,
  restartService: (i) => `restart the service ${i.service} on ${i.provider_name}`,
  scaleInstance: (i) =>
    `scale on ${i.provider_name} to ${[
      i.resources.cpu_millis !== undefined ? `${i.resources.cpu_millis}m CPU` : '',
      i.resources.memory_mb !== undefined ? `${i.resources.memory_mb} MB` : '',
      i.resources.replicas !== undefined ? `${i.resources.replicas} replica(s)` : '',
    ]
      .filter(Boolean)
      .join(', ')}`,
  deprovisionInstance: (i) => `remove everything the instance has on ${i.provider_name}`,
  observeInstance: (i) => `drift check: ask ${i.provider_name} how the instance is`,
  recordTransition: ({ seq, event }) => {
    const p = event.payload;
    const move = typeof p.from === 'string' && p.from !== p.to ? ` ${p.from} → ${p.to}` : '';
    const who = `${String(p.command)}${typeof p.actor === 'string' ? ` by ${p.actor}` : ''}`;
    const end = typeof p.conclusion === 'string' ? ` · ${p.conclusion}` : '';
    const error = typeof p.error === 'string' ? `: ${p.error}` : '';
    return `#${seq} ${event.type}${move} (${who})${end}${error}`.slice(0, 200);
  },
  reserveSlug: (i) => `reserve the name "${i.slug}" in the tenant`,
  loadRelease: (i) => `read release ${i.release} of the instance`,
};
