import { MikroORM } from '@mikro-orm/postgresql';
import { ormConfig } from './orm-config.ts';

export type Orm = MikroORM;

export async function openOrm(databaseUrl: string, options: { poolMax?: number } = {}): Promise<Orm> {
  return MikroORM.init(ormConfig(databaseUrl, options));
}

/** Creates the database when it is missing and applies every pending committed migration. */
export async function prepareDatabase(databaseUrl: string): Promise<string[]> {
  // The connection is lazy: nothing touches the database before ensureDatabase() has created it.
  const orm = await MikroORM.init(ormConfig(databaseUrl, { poolMax: 2 }));
  try {
    await orm.schema.ensureDatabase();
    const applied = await orm.migrator.up();
    return applied.map((m) => m.name);
  } finally {
    await orm.close(true);
  }
}
