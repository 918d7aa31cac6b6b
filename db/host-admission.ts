import type { EntityManager } from '@mikro-orm/postgresql';

/**
 * Admission of new instances to one provider host, serialised across API processes: a transaction-scoped
 * advisory lock per provider, held while the instances already admitted are counted and the new row is
 * inserted, so two creates racing for the last free slot cannot both be admitted. The lock ends with the
 * transaction.
 */
export async function lockHostAdmission(tx: EntityManager, providerName: string): Promise<void> {
  await tx.execute('select pg_advisory_xact_lock(hashtext(?))', [`ctrlplane.host-admission:${providerName}`]);
}

/**
 * Clocks of the API, the workflows (which stamp `updated_at`) and the engine may disagree by this much; an
 * instance changed this long before the snapshot is still counted (which only makes the count cautious).
 */
const CLOCK_SLACK_MS = 30_000;

/**
 * Instances admitted to the provider whose objects a look at its host taken at `snapshotAt` may not show:
 * those still `provisioning`, and those that changed since (their objects may have been made after the look).
 * Read after the look, so nothing admitted slips between the two. Destroyed and failed ones hold nothing new.
 */
export async function admittedInstanceIds(
  em: EntityManager,
  providerName: string,
  snapshotAt: Date,
): Promise<string[]> {
  const rows: { id: string }[] = await em.execute(
    `select id from instances
      where provider_name = ? and state not in ('destroyed', 'failed')
        and (state = 'provisioning' or updated_at >= ?)`,
    [providerName, new Date(snapshotAt.getTime() - CLOCK_SLACK_MS)],
  );
  return rows.map((r) => r.id);
}
