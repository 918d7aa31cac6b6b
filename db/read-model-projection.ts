import { UniqueConstraintViolationException } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { typeid } from 'typeid-js';
import type { Instance } from '../domain/instance.ts';
import type { Release } from '../domain/release.ts';
import type { Orm } from './database.ts';
import { InstanceEventRecordSchema } from './entities/instance-event-record.ts';
import { InstanceRecordSchema } from './entities/instance-record.ts';
import { ReleaseRecordSchema } from './entities/release-record.ts';
import { instanceToRecord } from './instance-mapping.ts';
import { releaseToRecord } from './release-mapping.ts';

/** One transition of an instance workflow, as the read model stores it. */
export interface ProjectedTransition {
  instance: Instance;
  /** The workflow's transition counter; a write that is not newer than the stored row leaves the row alone. */
  seq: number;
  event: { type: string; payload: Record<string, unknown> };
  /** Releases made or moved (a status change) by this transition; the snapshot may point at them. */
  releases?: Release[];
}

/** The workflows' writes to the read model: the instance row and its event outbox. */
export class ReadModelProjection {
  constructor(private readonly orm: Orm) {}

  /**
   * The row and its event in one statement (one round trip to PostgreSQL); a transition that makes or moves a
   * release writes it in the same transaction.
   */
  async record(transition: ProjectedTransition): Promise<void> {
    const em = this.orm.em.fork();
    if ((transition.releases ?? []).length === 0) {
      await writeRowAndEvent(em, transition);
      return;
    }
    await em.transactional((tx) => projectTransition(tx, transition));
  }

  /** Moves the instance's row to a new slug; `taken` when another live instance of the tenant holds it. */
  async moveSlug(tenantId: string, instanceId: string, slug: string): Promise<'moved' | 'taken'> {
    try {
      await this.orm.em
        .fork()
        .nativeUpdate(InstanceRecordSchema, { id: instanceId, tenant_id: tenantId }, { slug });
      return 'moved';
    } catch (err) {
      if (err instanceof UniqueConstraintViolationException) return 'taken';
      throw err;
    }
  }
}

/** Upserts the instance row unless a newer seq is already stored. */
function upsertRow(em: EntityManager, transition: ProjectedTransition) {
  const row = instanceToRecord(transition.instance, transition.seq);
  return em
    .createQueryBuilder(InstanceRecordSchema)
    .insert(row)
    .onConflict('id')
    .merge()
    .where({ seq: { $lt: transition.seq } });
}

/** Appends the transition's event once per seq. */
function appendEvent(em: EntityManager, transition: ProjectedTransition) {
  return em
    .createQueryBuilder(InstanceEventRecordSchema)
    .insert({
      id: typeid('evt').toString(),
      instance_id: transition.instance.id,
      tenant_id: transition.instance.tenant_id,
      seq: transition.seq,
      type: transition.event.type,
      payload: transition.event.payload,
      occurred_at: new Date(transition.instance.updated_at),
    })
    .onConflict(['instance_id', 'seq'])
    .ignore();
}

/** The row, its event and the releases the transition made or moved, in `em`'s transaction. */
export async function projectTransition(em: EntityManager, transition: ProjectedTransition): Promise<void> {
  await writeRowAndEvent(em, transition);
  for (const release of transition.releases ?? []) {
    // Written once per id; a later transition only moves its status (a retried one changes nothing).
    await em
      .createQueryBuilder(ReleaseRecordSchema)
      .insert(releaseToRecord(release, transition.seq))
      .onConflict('id')
      .merge(['status', 'error', 'status_seq'])
      .where({ status_seq: { $lt: transition.seq } })
      .execute();
  }
}

async function writeRowAndEvent(em: EntityManager, transition: ProjectedTransition): Promise<void> {
  const row = upsertRow(em, transition);
  const event = appendEvent(em, transition);
  await em
    .getConnection()
    .execute(
      `with row_written as (${row.getQuery()}) ${event.getQuery()}`,
      [...row.getParams(), ...event.getParams()],
      'run',
      em.getTransactionContext(),
    );
}
