import type { DatacenterStore } from '../db/datacenter-store.ts';
import type { DatacenterRecord } from '../db/entities/datacenter.ts';
import { isDatacenterId } from '../db/entities/datacenter.ts';
import type { InstanceStore } from '../db/instance-store.ts';
import { CtrlplaneError } from '../domain/errors.ts';
import type { ServiceSpec } from '../domain/instance.ts';
import { choosePlacement, type PlacementCandidate, placementMemory } from '../domain/placement-rules.ts';
import {
  type DeploymentSource,
  projectSource,
  type SourceInput,
} from '../domain/sources/deployment-source.ts';
import { SourceError } from '../domain/sources/errors.ts';
import { checkSecretBindings } from '../domain/sources/secret-env.ts';
import { type Definition, resolve, validateDefinitions } from '../domain/sources/variables.ts';
import { supportsSource } from '../providers/dispatch.ts';
import { renderSource } from '../providers/dispatch-render.ts';
import type { KustomizeOptions } from '../providers/kustomize.ts';
import type { Provider } from '../providers/provider.ts';
import type { ProviderCapacityLimits, ProviderRegistry } from '../providers/registry.ts';
import { capacityExhausted } from './host-capacity.ts';
import { RetryableError } from './problem.ts';

/**
 * The checks of a create that come before anything is written: where the instance goes, whether its provider is up, and whether its source,
 * variables and templates are valid there. Each failure is a 4xx (or a 503) naming what is wrong.
 */

export interface Placement {
  provider_name: string;
  provider: Provider;
  region: string;
  datacenter?: DatacenterRecord;
  /** Set when placement chose the provider (the create named none): why, as the instance shows it. */
  reason?: string;
  /** The provider's fleet limits, checked again when the row is inserted (api/host-capacity.ts). */
  limits?: ProviderCapacityLimits;
}

export interface PlacementDeps {
  providers: ProviderRegistry;
  datacenters: DatacenterStore;
  store: InstanceStore;
  /** Memory placement counts for a service that gives none (CTRLPLANE_DOCKER_DEFAULT_MEMORY_MB). */
  placementDefaultMemoryMb: number;
}

export interface PlacementRequest {
  datacenter_id?: string | undefined;
  provider_name?: string | undefined;
  region?: string | undefined;
  source?: unknown;
  services?: ServiceSpec[] | undefined;
}

/**
 * Provider resolution: the datacenter's provider (it overrides provider_name), else provider_name, else the
 * default, else (no default: a fleet placed by capacity) the provider placement chooses. An unknown datacenter
 * (or another tenant's) → 400 datacenter_not_found; one that is not active → 409 datacenter_unavailable; an
 * unregistered provider → 400 provider_not_found; a fleet with no room → 503 capacity_exhausted. The
 * datacenter's region (or the chosen provider's) is used when the request gives none.
 */
export async function resolvePlacement(
  deps: PlacementDeps,
  tenantId: string,
  req: PlacementRequest,
  unavailable: ReadonlyMap<string, string> = new Map(),
): Promise<Placement> {
  let datacenter: DatacenterRecord | undefined;
  const named = req.provider_name ?? deps.providers.defaultName;
  if (req.datacenter_id === undefined && named === undefined) return placeByCapacity(deps, req, unavailable);
  let name = named ?? '';
  if (req.datacenter_id !== undefined) {
    const id = req.datacenter_id;
    const found = isDatacenterId(id) ? await deps.datacenters.get(tenantId, id) : null;
    if (!found) {
      throw new CtrlplaneError('datacenter_not_found', `datacenter_id: datacenter ${id} not found`, [
        { field: 'datacenter_id', message: `no datacenter ${id} in this tenant` },
      ]);
    }
    if (found.status !== 'active') {
      throw new CtrlplaneError(
        'datacenter_unavailable',
        `datacenter ${found.id} (${found.name}) is ${found.status}: it takes no new instances`,
        [{ field: 'datacenter_id', message: `the datacenter is ${found.status}` }],
      );
    }
    datacenter = found;
    name = found.provider_name;
  }
  if (!deps.providers.has(name)) {
    const where = datacenter ? ` (the provider of datacenter ${datacenter.id})` : '';
    throw new CtrlplaneError(
      'provider_not_found',
      `provider_name: provider ${name} is not registered${where}`,
      [
        {
          field: datacenter ? 'datacenter_id' : 'provider_name',
          message: `provider ${name} is not registered`,
        },
      ],
    );
  }
  const limits = deps.providers.site(name).capacity;
  return {
    provider_name: name,
    provider: deps.providers.get(name),
    region: req.region ?? datacenter?.region ?? '',
    ...(datacenter ? { datacenter } : {}),
    ...(limits ? { limits } : {}),
  };
}

/** The fleet's provider with the most free capacity that runs the create (domain/placement-rules.ts). */
async function placeByCapacity(
  deps: PlacementDeps,
  req: PlacementRequest,
  unavailable: ReadonlyMap<string, string>,
): Promise<Placement> {
  const source = projectSource({
    source: req.source as SourceInput | undefined,
    services: req.services ?? null,
  });
  const services = source.type === 'services' ? source.services : null;
  const placed = deps.providers.names().filter((name) => deps.providers.site(name).capacity !== undefined);
  const usage = await deps.store.usageOf(placed, deps.placementDefaultMemoryMb);
  const candidates: PlacementCandidate[] = placed.map((name) => {
    const site = deps.providers.site(name);
    return {
      name,
      limits: site.capacity as ProviderCapacityLimits,
      used: usage.get(name) ?? { instances: 0, memory_mb: 0 },
      labels: site.labels,
      runsSource: supportsSource(deps.providers.get(name), source.type),
      ...(unavailable.has(name) ? { unavailable: unavailable.get(name) } : {}),
    };
  });
  const decision = choosePlacement(candidates, {
    memory_mb: placementMemory(services, deps.placementDefaultMemoryMb),
    ...(req.region ? { region: req.region } : {}),
  });
  if (!decision.placed)
    throw capacityExhausted(`no provider of the fleet can take the instance: ${decision.reason}`);
  const name = decision.provider_name;
  const site = deps.providers.site(name);
  return {
    provider_name: name,
    provider: deps.providers.get(name),
    region: req.region ?? site.labels.region ?? '',
    reason: decision.reason,
    ...(site.capacity ? { limits: site.capacity } : {}),
  };
}

/**
 * The placement, its provider's health checked: a provider placement chose that fails its check is left out
 * and the create placed again, among the others (a host that is down must not take every create naming no
 * provider with it); a provider the create named (or its datacenter's) that fails is 503 provider_unavailable.
 */
export async function placeOnHealthy(
  deps: PlacementDeps,
  tenantId: string,
  req: PlacementRequest,
  timeoutMs: number,
): Promise<Placement> {
  const unavailable = new Map<string, string>();
  for (;;) {
    const placement = await resolvePlacement(deps, tenantId, req, unavailable);
    const problem = await healthProblem(placement, timeoutMs);
    if (problem === undefined) return placement;
    if (placement.reason === undefined) throw providerUnavailable(placement, problem);
    unavailable.set(placement.provider_name, problem);
  }
}

/** The provider's health check, bounded: why it is unhealthy, failing or too slow; undefined when healthy. */
async function healthProblem(placement: Placement, timeoutMs: number): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<{ healthy: false; message: string }>((resolve) => {
    timer = setTimeout(
      () => resolve({ healthy: false, message: `no answer to the health check in ${timeoutMs} ms` }),
      timeoutMs,
    );
  });
  try {
    const health = await Promise.race([placement.provider.healthCheck(), timeout]);
    return health.healthy ? undefined : health.message;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  } finally {
    clearTimeout(timer);
  }
}

function providerUnavailable(placement: Placement, problem: string): RetryableError {
  return new RetryableError(
    'provider_unavailable',
    `provider ${placement.provider_name} is unavailable: ${problem}`,
    5,
  );
}

export interface Deployment {
  source: DeploymentSource;
  /** The source's services for a services source (un-rendered), null otherwise. */
  services: ServiceSpec[] | null;
  variables: Definition[];
  variable_values: Record<string, unknown>;
  /** Where the request gave the services: `source.services` or the `services` shorthand (for error fields). */
  services_field: string;
}

/**
 * The source (request `source`, or `services` projected onto a services source), validated, which the
 * provider must be able to run (400 unsupported_source), and the variable definitions (400
 * invalid_definition). Nothing is rendered yet: that needs the instance id (see checkRender).
 */
export function prepareDeployment(
  placement: Placement,
  req: {
    source?: unknown;
    services?: ServiceSpec[] | undefined;
    variables?: unknown;
    variable_values?: unknown;
  },
): Deployment {
  const source = projectSource({
    source: req.source as SourceInput | undefined,
    services: req.services ?? null,
  });
  if (!supportsSource(placement.provider, source.type)) {
    throw new SourceError(
      'unsupported_source',
      `provider ${placement.provider_name} does not support the ${source.type} source`,
      { field: req.source ? 'source.type' : 'services' },
    );
  }
  const variables = validateDefinitions(req.variables ?? []);
  return {
    source,
    services: source.type === 'services' ? source.services : null,
    variables,
    variable_values: (req.variable_values ?? {}) as Record<string, unknown>,
    services_field: req.source ? 'source.services' : 'services',
  };
}

/**
 * Resolves the variables against the new instance's context and renders the source, as the provision activity
 * will, so a missing or invalid value, a cycle or a template error is a 400 now rather than a failed instance
 * later. Secret variables are only checked (their values are never read here). The rendered result is dropped.
 */
export async function checkRender(
  deployment: Deployment,
  context: { id: string; name: string; tenant_id: string; region: string },
  signal?: AbortSignal,
  kustomize: KustomizeOptions = {},
): Promise<void> {
  const { scope, bindings } = resolve(deployment.variables, deployment.variable_values, {
    instance: { id: context.id, name: context.name },
    tenant: { id: context.tenant_id },
    region: context.region,
  });
  checkSecretBindings(deployment.source, bindings);
  const rendered = await renderSource(deployment.source, scope, { kustomize, ...(signal ? { signal } : {}) });
  rendered.services?.forEach((service, i) => {
    if (service.image === '' || /\s/.test(service.image)) {
      throw new SourceError(
        'render_failed',
        `service ${service.name} image: the rendered image ${JSON.stringify(service.image)} is not an image reference`,
        { field: `${deployment.services_field}[${i}].image` },
      );
    }
  });
}
