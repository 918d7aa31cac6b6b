import { ApplicationFailure } from '@temporalio/activity';
import type { ReadModelProjection } from '../db/read-model-projection.ts';
import type { InstanceActivities } from './instance-activity-types.ts';

/** Projection of the workflow's transitions into the read model and the event outbox. */
export function createReadModelActivities(
  projection: ReadModelProjection,
): Pick<InstanceActivities, 'recordTransition' | 'reserveSlug'> {
  return {
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
