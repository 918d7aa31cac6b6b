import type { EntityManager } from '@mikro-orm/postgresql';

/**
 * Admission of new instances to one provider host, serialised across API processes: a transaction-scoped
 * advisory lock per provider, held while the host's capacity is counted and the instance row is inserted, so
 * two creates racing for the last free slot cannot both be admitted. The lock ends with the transaction.
 */
export async function lockHostAdmission(tx: EntityManager, providerName: string): Promise<void> {
  await tx.execute('select pg_advisory_xact_lock(hashtext(?))', [`ctrlplane.host-admission:${providerName}`]);
}

/**
 * Instances admitted to the provider whose objects may not exist on its host yet: the rows still
 * `provisioning`. The provider counts those whose network it does not see as taken. Read before the host's
 * networks are listed, so an instance that leaves `provisioning` in between is seen there instead.
 */
export async function admittedInstanceIds(em: EntityManager, providerName: string): Promise<string[]> {
  const rows: { id: string }[] = await em.execute(
    `select id from instances where provider_name = ? and state = 'provisioning'`,
    [providerName],
  );
  return rows.map((r) => r.id);
}
