import { UniqueConstraintViolationException } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { ApplicationFailure } from '@temporalio/activity';
import { typeid } from 'typeid-js';
import type { Orm } from '../db/database.ts';
import { InstanceEventRecordSchema } from '../db/entities/instance-event-record.ts';
import { InstanceRecordSchema } from '../db/entities/instance-record.ts';
import { instanceToRecord } from '../db/instance-mapping.ts';
import type { InstanceActivities, TransitionRecord } from './instance-activity-types.ts';

/** Projection of the workflow's transitions into the read model and the event outbox. */
export function createReadModelActivities(
  orm: Orm,
): Pick<InstanceActivities, 'recordTransition' | 'reserveSlug'> {
  return {
    recordTransition: (record) => orm.em.fork().transactional((em) => projectTransition(em, record)),
    reserveSlug: async ({ tenant_id, instance_id, slug }) => {
      try {
        await orm.em.fork().nativeUpdate(InstanceRecordSchema, { id: instance_id, tenant_id }, { slug });
      } catch (err) {
        if (err instanceof UniqueConstraintViolationException) {
          throw ApplicationFailure.nonRetryable(
            `an instance with slug ${slug} already exists in this tenant`,
            'already_exists',
          );
        }
        throw err;
      }
    },
  };
}

/** Upserts the instance row unless a newer seq is already stored, and appends the event once per seq. */
export async function projectTransition(em: EntityManager, record: TransitionRecord): Promise<void> {
  const row = instanceToRecord(record.instance, record.seq);
  await em
    .createQueryBuilder(InstanceRecordSchema)
    .insert(row)
    .onConflict('id')
    .merge()
    .where({ seq: { $lt: record.seq } })
    .execute();
  await em
    .createQueryBuilder(InstanceEventRecordSchema)
    .insert({
      id: typeid('evt').toString(),
      instance_id: record.instance.id,
      tenant_id: record.instance.tenant_id,
      seq: record.seq,
      type: record.event.type,
      payload: record.event.payload,
      occurred_at: new Date(record.instance.updated_at),
    })
    .onConflict(['instance_id', 'seq'])
    .ignore()
    .execute();
}
