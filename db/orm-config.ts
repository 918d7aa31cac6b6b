import { Migrator } from '@mikro-orm/migrations';
import { defineConfig } from '@mikro-orm/postgresql';
import { BillingAccountRecordSchema } from './entities/billing-account.ts';
import { DatacenterRecordSchema } from './entities/datacenter.ts';
import { InstanceEventRecordSchema } from './entities/instance-event-record.ts';
import { InstanceRecordSchema } from './entities/instance-record.ts';
import { ReleaseRecordSchema } from './entities/release-record.ts';
import { migrationsList } from './migrations/index.ts';

export function ormConfig(databaseUrl: string, options: { poolMax?: number } = {}) {
  return defineConfig({
    clientUrl: databaseUrl,
    entities: [
      InstanceRecordSchema,
      InstanceEventRecordSchema,
      BillingAccountRecordSchema,
      DatacenterRecordSchema,
      ReleaseRecordSchema,
    ],
    extensions: [Migrator],
    migrations: { migrationsList, transactional: true, allOrNothing: true, snapshot: false },
    pool: { min: 0, max: options.poolMax ?? 10 },
    allowGlobalContext: false,
    debug: false,
  });
}
