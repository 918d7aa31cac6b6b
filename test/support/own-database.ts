import { loadConfig } from '../../config/env.ts';
import { openOrm, prepareDatabase } from '../../db/database.ts';

/**
 * A fresh, migrated database of its own for one test file, next to the run's: for a test whose assertions
 * count rows across tenants (the host admission counts every instance still provisioning on a provider).
 * Named after the run's database, so the run's stale-database sweep also removes it if a run is killed.
 */
export async function ownDatabase(label: string): Promise<{ url: string; drop(): Promise<void> }> {
  const base = new URL(loadConfig().DATABASE_URL);
  const name = `${base.pathname.slice(1)}_${label}_${process.pid}`;
  const url = new URL(base);
  url.pathname = `/${name}`;
  await prepareDatabase(url.toString());
  return {
    url: url.toString(),
    async drop() {
      const orm = await openOrm(base.toString(), { poolMax: 1 });
      try {
        await orm.em.getConnection().execute(`drop database if exists "${name}" with (force)`);
      } finally {
        await orm.close(true);
      }
    },
  };
}
