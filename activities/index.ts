import type { Orm } from '../db/database';
import type { ProviderRegistry } from '../providers/registry';
import type { InstanceActivities } from './instance-activity-types';
import { createProviderActivities } from './provider-activities';
import { createReadModelActivities } from './read-model-activities';

export interface ActivityDependencies {
  providers: ProviderRegistry;
  orm: Orm;
}

export function createActivities(deps: ActivityDependencies): InstanceActivities {
  return { ...createProviderActivities(deps.providers), ...createReadModelActivities(deps.orm) };
}
