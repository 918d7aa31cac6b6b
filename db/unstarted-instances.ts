import type { EntityManager } from '@mikro-orm/postgresql';

/**
 * Rows an API inserted for a create whose workflow it then never started (the process died between the two
 * writes, or Temporal never confirmed the start): still at seq 0 and `provisioning` long after `created_at`,
 * and no live request holds an Idempotency-Key reserved for them (that request may still start the workflow).
 */
export async function unstartedInstanceIds(
  em: EntityManager,
  olderThanMs: number,
  limit: number,
): Promise<string[]> {
  const rows: { id: string }[] = await em.execute(
    `select i.id from instances i
      where i.seq = 0 and i.state = 'provisioning'
        and i.created_at < now() - ? * interval '1 millisecond'
        and not exists (
          select 1 from idempotency_keys k
           where k.resource_id = i.id and k.status is null and k.locked_until >= now())
      order by i.created_at
      limit ?`,
    [olderThanMs, limit],
  );
  return rows.map((r) => r.id);
}

/**
 * Removes an unstarted instance's row (only while it is still unstarted) and the unfinished Idempotency-Key
 * reserved for it, so a retry with that key creates afresh. Returns whether a row was removed.
 */
export async function removeUnstartedInstance(em: EntityManager, id: string): Promise<boolean> {
  return em.transactional(async (tx) => {
    const removed: { id: string }[] = await tx.execute(
      `delete from instances where id = ? and seq = 0 and state = 'provisioning' returning id`,
      [id],
    );
    if (removed.length === 0) return false;
    await tx.execute('delete from idempotency_keys where resource_id = ? and status is null', [id]);
    return true;
  });
}
