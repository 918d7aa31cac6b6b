import type { Orm } from './database.ts';

/** What reads of a tenant's registry credential show: never the password. */
export interface RegistryCredentialSummary {
  registry: string;
  username: string;
  created_at: Date;
  updated_at: Date;
}

interface Row extends RegistryCredentialSummary {
  password: string;
}

/**
 * Each tenant's own image registry credentials, one per registry host (`docker.io`, `ghcr.io`, `host:5000`).
 * Every read and write is scoped to a tenant; only `lookup` (the worker's, to pull) returns a password. The
 * password is stored as given: the database is as secret as the credentials it holds.
 */
export class RegistryCredentialStore {
  constructor(private readonly orm: Orm) {}

  private connection() {
    return this.orm.em.fork().getConnection();
  }

  /** Sets the tenant's credentials for the registry; `created` is false when they replaced earlier ones. */
  async put(
    tenantId: string,
    registry: string,
    credential: { username: string; password: string },
  ): Promise<{ summary: RegistryCredentialSummary; created: boolean }> {
    const now = new Date();
    const [row] = await this.connection().execute<(RegistryCredentialSummary & { inserted: boolean })[]>(
      `insert into registry_credentials (tenant_id, registry, username, password, created_at, updated_at)
         values (?, ?, ?, ?, ?, ?)
       on conflict (tenant_id, registry)
         do update set username = excluded.username, password = excluded.password, updated_at = excluded.updated_at
       returning registry, username, created_at, updated_at, (xmax = 0) as inserted`,
      [tenantId, registry, credential.username, credential.password, now, now],
    );
    if (!row) throw new Error('the insert returned no row');
    const { inserted, ...summary } = row;
    return { summary, created: inserted };
  }

  async list(tenantId: string): Promise<RegistryCredentialSummary[]> {
    return this.connection().execute<RegistryCredentialSummary[]>(
      `select registry, username, created_at, updated_at from registry_credentials
        where tenant_id = ? order by registry`,
      [tenantId],
    );
  }

  /** True when there were credentials to remove. */
  async delete(tenantId: string, registry: string): Promise<boolean> {
    const rows = await this.connection().execute<{ registry: string }[]>(
      'delete from registry_credentials where tenant_id = ? and registry = ? returning registry',
      [tenantId, registry],
    );
    return rows.length > 0;
  }

  /** The tenant's credentials for the registry, to pull with (TenantRegistryCredentials of the Docker provider). */
  async lookup(
    tenantId: string,
    registry: string,
  ): Promise<{ username: string; password: string } | undefined> {
    const [row] = await this.connection().execute<Pick<Row, 'username' | 'password'>[]>(
      'select username, password from registry_credentials where tenant_id = ? and registry = ?',
      [tenantId, registry],
    );
    return row ? { username: row.username, password: row.password } : undefined;
  }
}
