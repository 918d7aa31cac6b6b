import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { json, roleProblems } from './openapi-responses.ts';
import { z } from './zod.ts';

/** Requests and answers of /v1/registry-credentials (a tenant's own image registry credentials), and their paths. */

const timestamp = z.iso.datetime({ offset: true });

/** A registry host as Docker names it: `docker.io`, `ghcr.io`, `registry.example.com:5000`, lower case. */
const REGISTRY = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:\d{1,5})?$/;

export const registryParamsSchema = z.strictObject({
  registry: z
    .string()
    .max(253)
    .regex(REGISTRY, 'must be a registry host such as docker.io, ghcr.io or registry.example.com:5000')
    // What Docker reads as a registry: a name with a '.' or a ':', or localhost (else it is a Docker Hub user).
    .refine((r) => r.includes('.') || r.includes(':') || r === 'localhost', 'must contain a "." or a port')
    .openapi({ description: 'The registry host (Docker Hub: docker.io)', example: 'ghcr.io' }),
});

export const putRegistryCredentialSchema = z
  .strictObject({
    username: z.string().min(1, 'is required').max(256),
    password: z
      .string()
      .min(1, 'is required')
      .max(8192)
      .openapi({ description: 'A password or access token; stored, never returned' }),
  })
  .meta({ id: 'RegistryCredentialPut' });

export const registryCredentialSchema = z
  .strictObject({
    registry: z.string(),
    username: z.string(),
    created_at: timestamp,
    updated_at: timestamp,
  })
  .meta({ id: 'RegistryCredential', description: 'A stored credential; the password is never returned' });

export const registryCredentialListSchema = z
  .strictObject({ items: z.array(registryCredentialSchema).openapi({ description: 'By registry' }) })
  .meta({ id: 'RegistryCredentialList' });

/** Adds the registry credential routes to the API's OpenAPI document. */
export function registerRegistryCredentialPaths(registry: OpenAPIRegistry): void {
  const tags = ['registry-credentials'];
  registry.registerPath({
    method: 'get',
    path: '/v1/registry-credentials',
    operationId: 'listRegistryCredentials',
    summary: 'The caller’s tenant’s registry credentials, without passwords (admin)',
    tags,
    responses: { 200: json(registryCredentialListSchema, 'The credentials'), ...roleProblems('admin', {}) },
  });
  registry.registerPath({
    method: 'put',
    path: '/v1/registry-credentials/{registry}',
    operationId: 'putRegistryCredential',
    summary: 'Set the tenant’s credentials for a registry (admin)',
    description:
      'The Docker provider pulls the tenant’s images from this registry with them. An image that is not on the ' +
      'operator’s allowlist runs only when such a pull succeeds, even when it is already on the host.',
    tags,
    request: {
      params: registryParamsSchema,
      body: { required: true, content: { 'application/json': { schema: putRegistryCredentialSchema } } },
    },
    responses: {
      200: json(registryCredentialSchema, 'Replaced'),
      201: json(registryCredentialSchema, 'Created'),
      ...roleProblems('admin', { 415: 'The body is not JSON' }),
    },
  });
  registry.registerPath({
    method: 'delete',
    path: '/v1/registry-credentials/{registry}',
    operationId: 'deleteRegistryCredential',
    summary: 'Remove the tenant’s credentials for a registry (admin)',
    tags,
    request: { params: registryParamsSchema },
    responses: {
      204: { description: 'Removed' },
      ...roleProblems('admin', { 404: 'The tenant has no credentials for this registry' }),
    },
  });
}
