import type { EntityManager } from '@mikro-orm/postgresql';
import type { InstanceState } from '../domain/instance-state.ts';
import type { Orm } from './database.ts';

/** An instance as a provider watcher compares it with what the provider reports. */
export interface WatchedInstance {
  id: string;
  provider_name: string;
  state: InstanceState;
  /** The source type (`services`, `helm`, …); null for rows made before sources. */
  source_type: string | null;
}

/** The read model as the provider watchers read it: across tenants, only the fields they compare. */
export class WatchedInstances {
  constructor(private readonly orm: Orm) {}

  private em(): EntityManager {
    return this.orm.em.fork();
  }

  /** Every instance of the provider that is not destroyed. */
  async live(providerName: string): Promise<WatchedInstance[]> {
    return this.em().execute(
      `select id, provider_name, state, source->>'type' as source_type from instances
        where provider_name = ? and state <> 'destroyed'`,
      [providerName],
    );
  }

  async get(id: string): Promise<WatchedInstance | undefined> {
    const rows: WatchedInstance[] = await this.em().execute(
      `select id, provider_name, state, source->>'type' as source_type from instances where id = ?`,
      [id],
    );
    return rows[0];
  }
}
