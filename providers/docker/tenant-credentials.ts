/** A tenant's credentials for one registry. */
export interface RegistryCredential {
  username: string;
  password: string;
}

/** Where the Docker provider finds a tenant's own registry credentials (db/registry-credential-store.ts). */
export interface TenantRegistryCredentials {
  /** The tenant's credentials for the registry host (`docker.io` for Docker Hub), or undefined. */
  lookup(tenantId: string, registry: string, signal?: AbortSignal): Promise<RegistryCredential | undefined>;
}
