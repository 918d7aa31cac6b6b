import { type Request, type Response, Router } from 'express';
import type { InstanceStore } from '../../db/instance-store.ts';
import { CtrlplaneError } from '../../domain/errors.ts';
import type { ProviderRegistry } from '../../providers/registry.ts';
import type { AgentPollers } from '../agent-pollers.ts';
import { capacityReport } from '../host-capacity.ts';
import { routeLabel } from '../metrics.ts';
import { OPERATOR_ROLE, requireRole } from '../roles.ts';

export interface CapacityRoutesDeps {
  providers: ProviderRegistry;
  store: InstanceStore;
  /** Who polls each agent's task queue; absent: agents are not looked at. */
  agents?: AgentPollers;
  /** Memory counted for a service that gives none (as placement counts it). */
  placementDefaultMemoryMb: number;
}

/**
 * GET /v1/admin/capacity (operator): per provider with a known limit (each Docker host), what it can still
 * take; with a fleet file, also each provider's fleet limits, what the read model says it holds, and who polls
 * its agent's task queue. The operator's, not the public /readyz: it names the hosts.
 */
export function capacityRoutes(deps: CapacityRoutesDeps): Router {
  const router = Router();
  router.get('/', routeLabel('/v1/admin/capacity'), async (req: Request, res: Response) => {
    requireRole(req, OPERATOR_ROLE);
    const capacity = await capacityReport(deps.providers, deps.store);
    const fleet = await fleetReport(deps);
    res.json({
      capacity: Object.fromEntries(
        capacity.map(({ provider, capacity: c, error }) => [
          provider,
          c ?? { error: error ?? 'not counted' },
        ]),
      ),
      ...(fleet ? { fleet } : {}),
    });
  });
  router.all('/', routeLabel('/v1/admin/capacity'), (req: Request, res: Response) => {
    requireRole(req, OPERATOR_ROLE);
    res.setHeader('Allow', 'GET');
    throw new CtrlplaneError('method_not_allowed', `${req.method} is not allowed here; use GET`);
  });
  return router;
}

async function fleetReport(deps: CapacityRoutesDeps) {
  const names = deps.providers.names().filter((name) => deps.providers.site(name).capacity !== undefined);
  if (names.length === 0) return undefined;
  const usage = await deps.store.usageOf(names, deps.placementDefaultMemoryMb);
  const entries = await Promise.all(
    names.map(async (name) => {
      const site = deps.providers.site(name);
      const agent = site.taskQueue
        ? {
            task_queue: site.taskQueue,
            ...(deps.agents
              ? await deps.agents.of(site.taskQueue).then(
                  (pollers) => ({ pollers }),
                  (err: Error) => ({ error: `pollers not known: ${err.message}` }),
                )
              : {}),
          }
        : null;
      return [
        name,
        {
          limits: site.capacity,
          used: usage.get(name) ?? { instances: 0, memory_mb: 0 },
          labels: site.labels,
          agent,
        },
      ] as const;
    }),
  );
  return Object.fromEntries(entries);
}
