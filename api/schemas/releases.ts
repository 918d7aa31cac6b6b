import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { releaseSelectorSchema, rollbackInstanceSchema } from '../../domain/commands.ts';
import { RELEASE_STATUSES } from '../../domain/release.ts';
import { serviceSpecSchema } from '../../domain/schemas/service-spec.ts';
import { deploymentSourceSchema, variablesSchema, variableValuesSchema } from './deployment-source.ts';
import { instanceIdParamsSchema } from './instance-requests.ts';
import { json, problemResponse } from './openapi-responses.ts';
import { z } from './zod.ts';

/** Requests and responses of the release routes, and their part of /openapi.json. */

const flag = z
  .enum(['true', 'false', '1', '0'])
  .transform((v) => v === 'true' || v === '1')
  .optional();

/** `?wait=` and `?rollback_on_failure=` on PATCH and on rollback: the commands that deploy a new release. */
export const deployQuerySchema = z.strictObject({
  wait: z
    .string()
    .regex(/^(true|false|\d{1,9}(ms|s|m))$/, 'must be true, false or a duration such as 30s')
    .optional()
    .openapi({
      description:
        'Wait for the command to finish: `true` (30 s) or a duration (`500ms`, `30s`, `2m`; capped by the server).',
    }),
  rollback_on_failure: flag.openapi({
    description:
      'When the new release fails to provision or start on a running instance, go back to the previous release ' +
      'and keep serving (default true; the command still concludes failed). `false`: the instance is left failed.',
  }),
});

/** GET /v1/instances/{id}/releases */
export const releasesQuerySchema = z.strictObject({
  cursor: z.string().max(64).optional().openapi({ description: 'next_cursor of the previous page.' }),
  limit: z.coerce.number().int().min(1).max(100).default(20),
});

export const releaseParamsSchema = instanceIdParamsSchema.extend({
  release: z.string().openapi({ description: 'A release number (1, 2, 3 …) or its rel_ id.', example: '3' }),
});

/** The path's `{release}`: a number or a rel_ id, as the rollback body takes it. */
export const releasePathSchema = z
  .string()
  .transform((v) => (/^\d{1,10}$/.test(v) ? Number(v) : v))
  .pipe(releaseSelectorSchema);

export const releaseSpecSchema = z
  .strictObject({
    services: z.array(serviceSpecSchema).nullable(),
    source: deploymentSourceSchema
      .optional()
      .openapi({ description: 'As submitted (templates un-rendered)' }),
    variables: variablesSchema
      .optional()
      .openapi({ description: 'Definitions; a secret variable is its store reference, never a value' }),
    variable_values: variableValuesSchema.optional(),
  })
  .meta({ id: 'ReleaseSpec' });

export const releaseSchema = z
  .strictObject({
    id: z.string().openapi({ example: 'rel_01h455vb4pex5vsknk084sn02q' }),
    instance_id: z.string(),
    number: z.number().int().min(1),
    current: z.boolean().openapi({ description: "The instance's current_release" }),
    status: z.enum(RELEASE_STATUSES).openapi({
      description:
        'pending: recorded, applied at the next start; deployed: its services started; failed: see `error`',
    }),
    error: z.string().optional().openapi({ description: 'Why the release failed to deploy' }),
    description: z.string().openapi({ example: 'rollback to v3' }),
    rollback_of: z
      .number()
      .int()
      .optional()
      .openapi({ description: 'A rollback: the release it re-applies' }),
    spec: releaseSpecSchema,
    request_id: z.string().openapi({ description: 'The request that made it' }),
    actor: z.string().optional().openapi({ description: '`sub` of the caller who asked for it' }),
    created_at: z.iso.datetime({ offset: true }),
  })
  .meta({ id: 'Release' });

export const releaseListSchema = z
  .strictObject({
    items: z.array(releaseSchema).openapi({ description: 'Newest first.' }),
    next_cursor: z.string().optional().openapi({ description: 'Present when a further page exists.' }),
  })
  .meta({ id: 'ReleaseList' });

export { rollbackInstanceSchema };

const READ_PROBLEMS = {
  400: problemResponse('Invalid request: the offending fields are named in `errors`'),
  401: problemResponse('Missing, invalid or expired token'),
  404: problemResponse("No such instance in the caller's tenant, or no such release of it"),
  429: problemResponse('Rate limited; see Retry-After'),
  500: problemResponse('Unexpected error (logged)'),
};

export function registerReleasePaths(registry: OpenAPIRegistry): void {
  registry.registerPath({
    method: 'get',
    path: '/v1/instances/{id}/releases',
    operationId: 'listInstanceReleases',
    summary: 'Releases of the instance, newest first, cursor-paged',
    description:
      'Every change of what runs (create, services, scale, rollback) made one; each keeps its spec (secret ' +
      'variables as references), who asked, the request id and how its deploy went.',
    tags: ['releases'],
    request: { params: instanceIdParamsSchema, query: releasesQuerySchema },
    responses: { 200: json(releaseListSchema, 'A page of releases'), ...READ_PROBLEMS },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/instances/{id}/releases/{release}',
    operationId: 'getInstanceRelease',
    summary: 'One release, by number or id, with its spec',
    tags: ['releases'],
    request: { params: releaseParamsSchema },
    responses: { 200: json(releaseSchema, 'The release'), ...READ_PROBLEMS },
  });
}
