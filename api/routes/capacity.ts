import { type Request, type Response, Router } from 'express';
import type { InstanceStore } from '../../db/instance-store.ts';
import { CtrlplaneError } from '../../domain/errors.ts';
import type { ProviderRegistry } from '../../providers/registry.ts';
import { capacityReport } from '../host-capacity.ts';
import { routeLabel } from '../metrics.ts';
import { OPERATOR_ROLE, requireRole } from '../roles.ts';

/**
 * GET /v1/admin/capacity (operator): per provider with a known limit (each Docker host), what it can still
 * take. The operator's, not the public /readyz: it names the hosts.
 */
export function capacityRoutes(deps: { providers: ProviderRegistry; store: InstanceStore }): Router {
  const router = Router();
  router.get('/', routeLabel('/v1/admin/capacity'), async (req: Request, res: Response) => {
    requireRole(req, OPERATOR_ROLE);
    const capacity = await capacityReport(deps.providers, deps.store);
    res.json({
      capacity: Object.fromEntries(
        capacity.map(({ provider, capacity: c, error }) => [
          provider,
          c ?? { error: error ?? 'not counted' },
        ]),
      ),
    });
  });
  router.all('/', routeLabel('/v1/admin/capacity'), (req: Request, res: Response) => {
    requireRole(req, OPERATOR_ROLE);
    res.setHeader('Allow', 'GET');
    throw new CtrlplaneError('method_not_allowed', `${req.method} is not allowed here; use GET`);
  });
  return router;
}
