import type { MigrationObject } from '@mikro-orm/core';
import { Migration20261126000000_initial } from './Migration20261126000000_initial.ts';
import { Migration20261126010000_idempotency } from './Migration20261126010000_idempotency.ts';
import { Migration20261126020000_billing } from './Migration20261126020000_billing.ts';
import { Migration20261126030000_datacenters } from './Migration20261126030000_datacenters.ts';
import { Migration20261201000000_stream_tickets } from './Migration20261201000000_stream_tickets.ts';
import { Migration20261201010000_registry_credentials } from './Migration20261201010000_registry_credentials.ts';
import { Migration20261202010000_releases } from './Migration20261202010000_releases.ts';
import { Migration20261202020000_webhooks } from './Migration20261202020000_webhooks.ts';
import { Migration20261202030000_lifecycle_policies } from './Migration20261202030000_lifecycle_policies.ts';
import { Migration20261202040000_placement } from './Migration20261202040000_placement.ts';

/** Committed migrations, in order. Listed explicitly so they load the same under tsx, tsc output and bundlers. */
export const migrationsList: MigrationObject[] = [
  { name: 'Migration20261126000000_initial', class: Migration20261126000000_initial },
  { name: 'Migration20261126010000_idempotency', class: Migration20261126010000_idempotency },
  { name: 'Migration20261126020000_billing', class: Migration20261126020000_billing },
  { name: 'Migration20261126030000_datacenters', class: Migration20261126030000_datacenters },
  { name: 'Migration20261201000000_stream_tickets', class: Migration20261201000000_stream_tickets },
  {
    name: 'Migration20261201010000_registry_credentials',
    class: Migration20261201010000_registry_credentials,
  },
  { name: 'Migration20261202010000_releases', class: Migration20261202010000_releases },
  { name: 'Migration20261202020000_webhooks', class: Migration20261202020000_webhooks },
  { name: 'Migration20261202030000_lifecycle_policies', class: Migration20261202030000_lifecycle_policies },
  { name: 'Migration20261202040000_placement', class: Migration20261202040000_placement },
];
