import { z } from 'zod';
import { INSTANCE_STATES } from '../../domain/instance-state';
import { servicesSchema } from './service-spec';

const LABEL_KEY = /^([a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?\/)?[a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?$/;

export const labelsSchema = z.record(
  z
    .string()
    .max(253)
    .regex(LABEL_KEY, 'must be a label key: letters, digits, "-", "_", "." and an optional prefix/'),
  z.string().max(253),
);

/** POST /v1/instances: the seed doc's CreateRequest. */
export const createInstanceSchema = z
  .strictObject({
    name: z
      .string()
      .trim()
      .min(1, 'is required')
      .max(200)
      .refine((s) => !/\p{Cc}/u.test(s), 'must not contain control characters'),
    datacenter_id: z.string().max(64).optional(),
    provider_name: z.string().min(1).max(64).optional(),
    region: z.string().max(64).optional(),
    kind: z.enum(['deployment', 'stateful_set']).optional(),
    services: servicesSchema.optional(),
    labels: labelsSchema.optional(),
    source: z
      .strictObject({
        type: z.literal('services', { error: 'only the services source type is supported by this version' }),
        services: servicesSchema,
      })
      .optional(),
    variables: z.array(z.unknown()).max(0, 'variables are not supported by this version').optional(),
    variable_values: z.record(z.string(), z.unknown()).optional(),
  })
  .superRefine((req, ctx) => {
    if (!req.source && !req.services) {
      ctx.addIssue({ code: 'custom', path: ['services'], message: 'a source or services is required' });
    }
    if (req.source && req.services) {
      ctx.addIssue({
        code: 'custom',
        path: ['services'],
        message: 'give either source or services, not both',
      });
    }
    if (req.variable_values && Object.keys(req.variable_values).length > 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['variable_values'],
        message: 'variables are not supported by this version',
      });
    }
  });

export type CreateInstanceRequest = z.infer<typeof createInstanceSchema>;

const singleOrMany = z
  .union([z.string(), z.array(z.string())])
  .transform((v) => (Array.isArray(v) ? v : [v]));

/** GET /v1/instances query: the seed doc's ListOptions, with repeatable labels and a keyset cursor. */
export const listInstancesQuerySchema = z.strictObject({
  state: z.enum(INSTANCE_STATES).optional(),
  label: singleOrMany
    .pipe(
      z
        .array(
          z
            .string()
            .max(600)
            .regex(/^[^=]+=.*$/, 'must be key=value'),
        )
        .max(20),
    )
    .optional(),
  provider: z.string().min(1).max(64).optional(),
  datacenter: z.string().min(1).max(64).optional(),
  slug: z.string().min(1).max(300).optional(),
  cursor: z.string().max(512).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
});

export type ListInstancesQuery = z.infer<typeof listInstancesQuerySchema>;

/** `?wait=true` or `?wait=30s` on commands. */
export const waitQuerySchema = z.strictObject({
  wait: z
    .string()
    .regex(/^(true|false|\d+(ms|s|m))$/, 'must be true, false or a duration such as 30s')
    .optional(),
});
