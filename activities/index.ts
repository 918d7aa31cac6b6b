import type { Client } from '@temporalio/client';
import type { Orm } from '../db/database';
import type { ProviderRegistry } from '../providers/registry';
import { type BillingActivities, createBillingActivities } from './billing-activities';
import type { InstanceActivities } from './instance-activity-types';
import { createProviderActivities } from './provider-activities';
import { createReadModelActivities } from './read-model-activities';

export interface ActivityDependencies {
  providers: ProviderRegistry;
  orm: Orm;
  /** The worker's Temporal client: the billing sweep sends commands to instance workflows with it. */
  client?: Client;
}

export function createActivities(deps: ActivityDependencies): InstanceActivities & BillingActivities {
  return {
    ...createProviderActivities(deps.providers),
    ...createReadModelActivities(deps.orm),
    ...createBillingActivities({ orm: deps.orm, client: deps.client }),
  };
}
