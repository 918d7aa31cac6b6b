import { ERROR_STATUS } from '../../domain/errors.ts';
import { INSTANCE_STATES } from '../../domain/instance-state.ts';
import { AUTO_ACTION_NAMES } from '../../domain/lifecycle-policy.ts';
import { createPolicyFields } from '../../domain/schemas/lifecycle-policy.ts';
import { serviceSpecSchema } from '../../domain/schemas/service-spec.ts';
import { deploymentSourceSchema } from './deployment-source.ts';
import { labelsSchema } from './instance-requests.ts';
import { z } from './zod.ts';

/**
 * One schema per response. They document /openapi.json; the test suite validates every answer of the API
 * against that document. Objects are strict, so a field the document does not name is caught there.
 */

const timestamp = z.iso.datetime({ offset: true });

export const endpointSchema = z
  .strictObject({
    service_name: z.string().optional(),
    url: z.string(),
    port: z.number().int(),
    protocol: z.string(),
    public: z.boolean(),
  })
  .meta({ id: 'Endpoint' });

export const nextAutoActionSchema = z
  .strictObject({
    action: z.enum(AUTO_ACTION_NAMES),
    at: timestamp,
  })
  .meta({
    id: 'NextAutoAction',
    description:
      'What a lifecycle policy will do next and when: auto_stop, scheduled_stop (stop), scheduled_start ' +
      '(start), auto_delete, expire (delete). Absent while none is due (and while suspended).',
  });

/** The seed doc's Instance; fields the Go library omits when empty are optional. */
export const agentWaitSchema = z
  .strictObject({
    provider_name: z.string(),
    task_queue: z.string(),
    activity: z.string().openapi({ description: 'The provider call waiting, e.g. stopInstance' }),
    since: timestamp,
    message: z.string(),
  })
  .meta({
    id: 'AgentWait',
    description:
      "Only on a command's 202 and a create's 201 that waited (?wait) while still provisioning: the instance's provider call has not been picked up by its provider's host agent (the agent is down or stalled); the command runs when the agent is back",
  });

export const instanceSchema = z
  .strictObject({
    id: z.string().openapi({ example: 'inst_01h455vb4pex5vsknk084sn02q' }),
    created_at: timestamp,
    updated_at: timestamp,
    tenant_id: z.string(),
    name: z.string(),
    slug: z.string(),
    datacenter_id: z.string().optional(),
    provider_name: z.string(),
    placement: z.string().optional().openapi({
      description:
        'Why the instance is on its provider, when placement chose it (a create naming no provider_name or datacenter): the provider with the most free capacity, and how much it had',
    }),
    provider_ref: z.string(),
    waiting_for: agentWaitSchema.optional(),
    service_refs: z.record(z.string(), z.string()).optional(),
    region: z.string(),
    state: z.enum(INSTANCE_STATES),
    kind: z.enum(['deployment', 'stateful_set']),
    services: z.array(serviceSpecSchema).nullable().openapi({ description: 'null when empty' }),
    source: deploymentSourceSchema
      .optional()
      .openapi({ description: 'As submitted (templates un-rendered)' }),
    endpoints: z.array(endpointSchema).optional(),
    labels: labelsSchema.optional(),
    current_release: z.string().optional().openapi({
      description:
        'The release it runs or will run at its next start (GET /v1/instances/{id}/releases/{release})',
    }),
    suspended_at: timestamp.optional(),
    suspend_reason: z.string().optional(),
    error: z.string().optional().openapi({ description: 'Why the instance is failed.' }),
    ...createPolicyFields,
    next_auto_action: nextAutoActionSchema.optional(),
    last_started_at: timestamp.optional().openapi({ description: 'When it last entered running.' }),
    stopped_at: timestamp.optional().openapi({ description: 'When it last entered stopped.' }),
  })
  .meta({ id: 'Instance' });

export const instanceListSchema = z
  .strictObject({
    items: z.array(instanceSchema),
    next_cursor: z.string().optional().openapi({ description: 'Present when a further page exists.' }),
    total: z
      .number()
      .int()
      .min(0)
      .openapi({
        description:
          'Every instance matching the filters, counted up to CTRLPLANE_LIST_TOTAL_LIMIT (10,000 by default); ' +
          'with more, this limit and `total_capped`.',
      }),
    total_capped: z
      .literal(true)
      .optional()
      .openapi({ description: 'Present when more instances match than `total` says (at least that many).' }),
  })
  .meta({ id: 'InstanceList' });

export const instanceEventSchema = z
  .strictObject({
    id: z.string().openapi({ example: 'evt_01h455vb4pex5vsknk084sn02q' }),
    type: z.string().openapi({ example: 'instance.started' }),
    seq: z.number().int(),
    payload: z.record(z.string(), z.unknown()).nullable(),
    occurred_at: timestamp,
  })
  .meta({ id: 'InstanceEvent' });

export const instanceEventListSchema = z
  .strictObject({
    items: z.array(instanceEventSchema).openapi({ description: 'Oldest first.' }),
    next_cursor: z.string().optional().openapi({ description: 'Present when a further page exists.' }),
  })
  .meta({ id: 'InstanceEventList' });

export const logLineSchema = z
  .strictObject({
    ts: z.string().openapi({ description: 'RFC 3339 time the line was written ("" when unknown).' }),
    stream: z.enum(['stdout', 'stderr']),
    line: z.string(),
  })
  .meta({ id: 'LogLine' });

export const resourceUsageSchema = z
  .strictObject({
    cpu_percent: z.number(),
    memory_used_mb: z.number(),
    memory_limit_mb: z.number(),
    disk_used_mb: z.number().optional(),
    network_in_mb: z.number(),
    network_out_mb: z.number(),
  })
  .meta({ id: 'ResourceUsage' });

const errorCodes = Object.keys(ERROR_STATUS) as [keyof typeof ERROR_STATUS, ...(keyof typeof ERROR_STATUS)[]];

/** RFC 9457 problem details, with the stable `code` and the offending fields. */
export const problemSchema = z
  .strictObject({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    code: z.enum(errorCodes),
    instance: z.string().optional(),
    errors: z
      .array(z.strictObject({ field: z.string(), message: z.string() }))
      .optional()
      .openapi({ description: 'Every offending field, by its JSON path (e.g. services[0].image).' }),
  })
  .meta({ id: 'Problem' });

export const healthSchema = z.strictObject({ status: z.literal('ok') }).meta({ id: 'Health' });

const capacityCountSchema = z.strictObject({
  total: z.number().int(),
  used: z.number().int(),
  free: z.number().int(),
});

export const hostCapacitySchema = z
  .union([
    z.strictObject({
      host: z.string().openapi({ description: 'The provider host, as configured (DOCKER_HOST)' }),
      networks: capacityCountSchema.openapi({ description: 'Subnets of the instance network pool' }),
      instances: capacityCountSchema.openapi({
        description: 'Instances: `free` is how many more creates this host takes now',
      }),
    }),
    z.strictObject({ error: z.string().openapi({ description: 'Why the capacity could not be counted' }) }),
  ])
  .meta({ id: 'HostCapacity' });

export const readinessSchema = z
  .strictObject({
    status: z.enum(['ready', 'not_ready']),
    checks: z.record(z.string(), z.enum(['ok', 'down'])).openapi({
      description: 'postgres, temporal and provider:<name>: ok or down (why is in the API log, not here)',
    }),
  })
  .meta({ id: 'Readiness' });

const fleetCountsSchema = z.strictObject({ instances: z.number().int(), memory_mb: z.number().int() });

export const fleetProviderSchema = z
  .strictObject({
    limits: fleetCountsSchema.openapi({ description: 'Its capacity in the fleet file' }),
    used: fleetCountsSchema.openapi({
      description: 'What the read model says it holds (instances not destroyed), as placement counts it',
    }),
    labels: z.record(z.string(), z.string()),
    agent: z
      .strictObject({
        task_queue: z.string(),
        pollers: z
          .array(
            z.strictObject({
              identity: z.string(),
              last_poll_at: z.iso.datetime({ offset: true }).nullable(),
            }),
          )
          .optional()
          .openapi({
            description:
              'Who polled the queue lately (Temporal): a live agent within about a minute; a dead one stays listed a few minutes',
          }),
        error: z.string().optional(),
      })
      .nullable()
      .openapi({ description: 'Its host agent; null: the shared workers drive it' }),
  })
  .meta({ id: 'FleetProvider' });

export const capacityReportSchema = z
  .strictObject({
    capacity: z.record(z.string(), hostCapacitySchema).openapi({
      description: 'Per provider that has a known limit (each Docker host): what it can still take',
    }),
    fleet: z.record(z.string(), fleetProviderSchema).optional().openapi({
      description: 'With a fleet file (CTRLPLANE_PROVIDERS_FILE): each provider, its limits, use and agent',
    }),
  })
  .meta({ id: 'CapacityReport' });

export const streamTicketSchema = z
  .strictObject({
    ticket: z.string().openapi({ description: 'Opens one log stream of this instance, once' }),
    expires_at: z.iso.datetime({ offset: true }),
    stream_url: z.string().openapi({ description: 'The stream, with the ticket: for EventSource' }),
  })
  .meta({ id: 'StreamTicket' });
