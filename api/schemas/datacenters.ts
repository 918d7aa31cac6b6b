import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { DATACENTER_STATUSES } from '../../db/entities/datacenter.ts';
import { json, roleProblems } from './openapi-responses.ts';
import { z } from './zod.ts';

/** Requests and answers of the datacenter admin routes (/v1/datacenters), and their OpenAPI paths. */

const timestamp = z.iso.datetime({ offset: true });

const nameSchema = z
  .string()
  .trim()
  .min(1, 'is required')
  .max(200)
  .refine((s) => !/\p{Cc}/u.test(s), 'must not contain control characters');

const providerNameSchema = z.string().min(1).max(64);

const regionSchema = z
  .string()
  .max(64)
  .refine((s) => !/\p{Cc}/u.test(s), 'must not contain control characters');

const statusSchema = z.enum(DATACENTER_STATUSES).openapi({
  description: 'Only an active datacenter takes new instances (others: 409 datacenter_unavailable)',
});

export const createDatacenterSchema = z
  .strictObject({
    name: nameSchema.openapi({
      description: 'Its slug (lower case, spaces → dashes) is unique in the tenant',
    }),
    provider_name: providerNameSchema
      .optional()
      .openapi({ description: 'A registered provider (default: the configured default provider)' }),
    region: regionSchema.optional().openapi({ description: 'Default ""' }),
    status: statusSchema.optional().openapi({ description: 'Default active' }),
  })
  .meta({ id: 'DatacenterCreate' });

export const updateDatacenterSchema = z
  .strictObject({
    name: nameSchema.optional(),
    provider_name: providerNameSchema.optional().openapi({ description: 'A registered provider' }),
    region: regionSchema.optional(),
    status: statusSchema.optional(),
  })
  .superRefine((req, ctx) => {
    if (Object.values(req).every((v) => v === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: [],
        message: 'give at least one of name, provider_name, region, status',
      });
    }
  })
  .meta({ id: 'DatacenterUpdate' });

export const datacenterIdParamsSchema = z.strictObject({
  id: z.string().openapi({ description: 'A dc_ TypeID.', example: 'dc_01h455vb4pex5vsknk084sn02q' }),
});

export const listDatacentersQuerySchema = z.strictObject({
  status: z.enum(DATACENTER_STATUSES).optional().openapi({ description: 'Only datacenters in this status' }),
  cursor: z.string().max(64).optional().openapi({ description: 'next_cursor of the previous page' }),
  limit: z.coerce.number().int().min(1).max(200).default(50),
});

export const datacenterSchema = z
  .strictObject({
    id: z.string().openapi({ example: 'dc_01h455vb4pex5vsknk084sn02q' }),
    tenant_id: z.string(),
    name: z.string(),
    slug: z.string(),
    provider_name: z.string(),
    region: z.string(),
    status: z.enum(DATACENTER_STATUSES),
    created_at: timestamp,
    updated_at: timestamp,
  })
  .meta({ id: 'Datacenter' });

export const datacenterListSchema = z
  .strictObject({
    items: z.array(datacenterSchema).openapi({ description: 'Oldest first' }),
    next_cursor: z.string().optional().openapi({ description: 'Present when a further page exists' }),
  })
  .meta({ id: 'DatacenterList' });

/** Adds the datacenter admin routes to the API's OpenAPI document. */
export function registerDatacenterPaths(registry: OpenAPIRegistry): void {
  const tags = ['datacenters'];
  registry.registerPath({
    method: 'post',
    path: '/v1/datacenters',
    operationId: 'createDatacenter',
    summary: 'Create a datacenter in the caller’s tenant (admin)',
    tags,
    request: {
      body: { required: true, content: { 'application/json': { schema: createDatacenterSchema } } },
    },
    responses: {
      201: json(datacenterSchema, 'Created', {
        Location: { description: 'The new datacenter', schema: { type: 'string' } },
      }),
      ...roleProblems('admin', {
        400: 'Invalid request (fields named in `errors`), or provider_not_found',
        409: 'A datacenter with this slug exists in the tenant',
        415: 'The body is not JSON',
      }),
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/datacenters',
    operationId: 'listDatacenters',
    summary: 'The caller’s tenant’s datacenters, oldest first (admin)',
    tags,
    request: { query: listDatacentersQuerySchema },
    responses: { 200: json(datacenterListSchema, 'A page of datacenters'), ...roleProblems('admin', {}) },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/datacenters/{id}',
    operationId: 'getDatacenter',
    summary: 'A datacenter (admin)',
    tags,
    request: { params: datacenterIdParamsSchema },
    responses: {
      200: json(datacenterSchema, 'The datacenter'),
      ...roleProblems('admin', { 404: "No such datacenter in the caller's tenant" }),
    },
  });
  registry.registerPath({
    method: 'patch',
    path: '/v1/datacenters/{id}',
    operationId: 'updateDatacenter',
    summary: 'Rename a datacenter, change its status, region or provider (admin)',
    tags,
    request: {
      params: datacenterIdParamsSchema,
      body: { required: true, content: { 'application/json': { schema: updateDatacenterSchema } } },
    },
    responses: {
      200: json(datacenterSchema, 'Updated'),
      ...roleProblems('admin', {
        400: 'Invalid request (fields named in `errors`), or provider_not_found',
        404: "No such datacenter in the caller's tenant",
        409: 'A datacenter with this slug exists in the tenant',
        415: 'The body is not JSON',
      }),
    },
  });
}
