import { ApplicationFailure } from '@temporalio/activity';
import type { ReadModelProjection } from '../db/read-model-projection.ts';
import type { ReleaseStore } from '../db/release-store.ts';
import type { InstanceActivities } from './instance-activity-types.ts';

/** Projection of the workflow's transitions into the read model and the event outbox; its release reads. */
export function createReadModelActivities(
  projection: ReadModelProjection,
  releases: ReleaseStore,
): Pick<InstanceActivities, 'recordTransition' | 'reserveSlug' | 'loadRelease'> {
  return {
    loadRelease: async ({ instance_id, release }) => {
      const found = await releases.get(instance_id, release);
      if (!found) {
        const name = typeof release === 'number' ? `v${release}` : release;
        throw ApplicationFailure.nonRetryable(`the instance has no release ${name}`, 'not_found');
      }
      return found;
    },
    recordTransition: (record) => projection.record(record),
    reserveSlug: async ({ tenant_id, instance_id, slug }) => {
      if ((await projection.moveSlug(tenant_id, instance_id, slug)) === 'taken') {
        throw ApplicationFailure.nonRetryable(
          `an instance with slug ${slug} already exists in this tenant`,
          'already_exists',
        );
      }
    },
  };
}
