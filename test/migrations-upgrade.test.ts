import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { MikroORM } from '@mikro-orm/postgresql';
import { loadConfig } from '../config/env.ts';
import { prepareDatabase } from '../db/database.ts';
import { InstanceRecordSchema } from '../db/entities/instance-record.ts';
import { recordToInstance } from '../db/instance-mapping.ts';
import { migrationsList } from '../db/migrations/index.ts';
import { ormConfig } from '../db/orm-config.ts';

// Databases made by an earlier release: the fixtures are pg_dumps of what MikroORM 6.6.16's migrator left (its
// own migrations table included), taken before the upgrade to 7. The ORM now in package.json must take such a
// database over as it is: apply only what is missing, re-apply nothing, end at the same schema as a fresh one.
const FIXTURES = new URL('./fixtures/', import.meta.url);
const ALL_MIGRATIONS = migrationsList.map((m) => m.name);
/** The migrations of the released version the fixtures were dumped from; later ones are applied on upgrade. */
const RELEASED_MIGRATIONS = ALL_MIGRATIONS.slice(0, 4);
const NEW_MIGRATIONS = ALL_MIGRATIONS.slice(RELEASED_MIGRATIONS.length);
const MIGRATIONS_TABLE = 'mikro_orm_migrations';

interface MigrationRow {
  id: number;
  name: string;
  executed_at: string;
}

interface SchemaShape {
  columns: Record<string, unknown>[];
  indexes: Record<string, unknown>[];
  constraints: Record<string, unknown>[];
}

describe('migrations: a database created under MikroORM 6.6 upgrades in place', () => {
  const base = new URL(loadConfig().DATABASE_URL);
  const prefix = `${base.pathname.slice(1)}_upgrade`;
  const made: string[] = [];

  function databaseUrl(name: string): string {
    const url = new URL(base);
    url.pathname = `/${name}`;
    return url.toString();
  }

  async function withOrm<T>(url: string, fn: (orm: MikroORM) => Promise<T>): Promise<T> {
    const orm = await MikroORM.init(ormConfig(url, { poolMax: 1 }));
    try {
      return await fn(orm);
    } finally {
      await orm.close(true);
    }
  }

  async function adminExecute(sql: string): Promise<void> {
    await withOrm(databaseUrl('postgres'), (orm) => orm.em.getConnection().execute(sql));
  }

  /** A new empty database, or one restored from a fixture dump. */
  async function createDatabase(label: string, fixture?: string): Promise<string> {
    const name = `${prefix}_${label}`;
    await adminExecute(`drop database if exists "${name}" with (force)`);
    await adminExecute(`create database "${name}"`);
    made.push(name);
    const url = databaseUrl(name);
    if (fixture) {
      const dump = readFileSync(new URL(fixture, FIXTURES), 'utf8');
      await withOrm(url, (orm) => orm.em.getConnection().executeDump(dump));
    }
    return url;
  }

  const migrationRows = (url: string) =>
    withOrm(url, (orm) =>
      orm.em
        .getConnection()
        .execute<MigrationRow[]>(
          `select id, name, executed_at::text as executed_at from "${MIGRATIONS_TABLE}" order by id`,
        ),
    );

  /** Columns, indexes and constraints of the public schema (the migrations table left out unless asked). */
  const schemaOf = (url: string, options: { withMigrationsTable?: boolean } = {}) =>
    withOrm(url, async (orm): Promise<SchemaShape> => {
      const connection = orm.em.getConnection();
      const skip = options.withMigrationsTable ? '' : MIGRATIONS_TABLE;
      const columns = await connection.execute(
        `select table_name, column_name, data_type, character_maximum_length, datetime_precision, is_nullable,
                column_default
           from information_schema.columns
          where table_schema = 'public' and table_name <> ?
          order by table_name, ordinal_position`,
        [skip],
      );
      const indexes = await connection.execute(
        `select tablename, indexname, indexdef from pg_indexes
          where schemaname = 'public' and tablename <> ? order by indexname`,
        [skip],
      );
      const constraints = await connection.execute(
        `select conrelid::regclass::text as table_name, conname, pg_get_constraintdef(oid) as definition
           from pg_constraint
          where connamespace = 'public'::regnamespace and conrelid::regclass::text <> ?
          order by conname`,
        [skip],
      );
      return { columns, indexes, constraints };
    });

  let freshSchema: SchemaShape;
  let releasedSchema: SchemaShape;

  before(async () => {
    const fresh = await createDatabase('fresh');
    assert.deepEqual(await prepareDatabase(fresh), ALL_MIGRATIONS);
    freshSchema = await schemaOf(fresh);
    const released = await createDatabase('released', 'read-model-mikro-orm-6.6-all.sql');
    assert.deepEqual(await prepareDatabase(released), NEW_MIGRATIONS);
    releasedSchema = await schemaOf(released);
  });

  after(async () => {
    for (const name of made) await adminExecute(`drop database if exists "${name}" with (force)`);
  });

  it('the committed migrations build the same application schema as the released version, upgraded', () => {
    assert.ok(freshSchema.columns.length > 50, 'the schema query sees the tables');
    assert.deepEqual(freshSchema, releasedSchema);
  });

  it('a fully migrated 6.6 database: only the newer migrations run, once; its migration rows and data stay', async () => {
    const url = await createDatabase('all', 'read-model-mikro-orm-6.6-all.sql');
    const rowsBefore = await migrationRows(url);
    assert.deepEqual(
      rowsBefore.map((r) => r.name),
      RELEASED_MIGRATIONS,
    );

    assert.deepEqual(await prepareDatabase(url), NEW_MIGRATIONS);
    assert.deepEqual(await prepareDatabase(url), []);

    const rowsAfter = await migrationRows(url);
    assert.deepEqual(
      rowsAfter.slice(0, rowsBefore.length),
      rowsBefore,
      'the released rows are kept as they were',
    );
    assert.deepEqual(
      rowsAfter.map((r) => r.name),
      ALL_MIGRATIONS,
    );
    assert.deepEqual(await schemaOf(url), freshSchema);
    await withOrm(url, async (orm) => {
      assert.deepEqual(await orm.migrator.getPending(), []);
      assert.deepEqual(
        (await orm.migrator.getExecuted()).map((m) => m.name),
        ALL_MIGRATIONS,
      );
      // The row the released version wrote reads back through the current ORM as the API serves it.
      const row = await orm.em
        .fork()
        .findOne(InstanceRecordSchema, { id: 'inst_01m8sexjpfexxs8ym7rdyskpa7' });
      assert.ok(row, 'the instance row is still there');
      const instance = recordToInstance(row);
      assert.equal(instance.tenant_id, 'ten_v6');
      assert.equal(instance.state, 'running');
      assert.equal(instance.created_at, '2026-11-30T10:00:00.000Z');
      assert.deepEqual(instance.labels, { team: 'a' });
      assert.deepEqual(instance.services, [{ name: 'web', image: 'ctrlplane-test/busybox:1' }]);
      assert.equal(instance.datacenter_id, 'dc_01m8sexjpgexxs8ymmh6jvxwqh');
    });
  });

  it('a 6.6 database with two migrations applied: exactly the other two run, logged after the old rows', async () => {
    const url = await createDatabase('two', 'read-model-mikro-orm-6.6-first-two.sql');
    const rowsBefore = await migrationRows(url);
    assert.deepEqual(
      rowsBefore.map((r) => r.name),
      ALL_MIGRATIONS.slice(0, 2),
    );

    assert.deepEqual(await prepareDatabase(url), ALL_MIGRATIONS.slice(2));
    assert.deepEqual(await prepareDatabase(url), []);

    const rowsAfter = await migrationRows(url);
    assert.deepEqual(rowsAfter.slice(0, 2), rowsBefore, 'the released rows are kept as they were');
    assert.deepEqual(
      rowsAfter.map((r) => [r.id, r.name]),
      ALL_MIGRATIONS.map((name, i) => [i + 1, name]),
    );
    assert.deepEqual(await schemaOf(url), releasedSchema);
  });
});
