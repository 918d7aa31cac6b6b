import { type Request, type RequestHandler, type Response, Router } from 'express';
import type {
  RegistryCredentialStore,
  RegistryCredentialSummary,
} from '../../db/registry-credential-store.ts';
import { CtrlplaneError } from '../../domain/errors.ts';
import { registryHost } from '../../providers/docker/images.ts';
import { routeLabel } from '../metrics.ts';
import { requireRole, TENANT_ADMIN_ROLE } from '../roles.ts';
import { putRegistryCredentialSchema, registryParamsSchema } from '../schemas/registry-credentials.ts';
import { parseInput } from '../validate.ts';

const MOUNT = '/v1/registry-credentials';

/**
 * A tenant's own image registry credentials (admin role), scoped to the caller's tenant; mount at
 * `/v1/registry-credentials` behind authentication: GET /, PUT and DELETE /:registry. Reads never show a password.
 */
export function registryCredentialRoutes(deps: { store: RegistryCredentialStore }): Router {
  const router = Router();
  const allowed = new Map<string, string[]>();

  function route(method: 'get' | 'put' | 'delete', path: string, handler: RequestHandler): void {
    router[method](path, routeLabel(`${MOUNT}${path === '/' ? '' : path}`), (req, _res, next) => {
      requireRole(req, TENANT_ADMIN_ROLE);
      next();
    });
    router[method](path, handler);
    allowed.set(path, [...(allowed.get(path) ?? []), method.toUpperCase()]);
  }

  route('get', '/', async (req: Request, res: Response) => {
    const caller = requireRole(req, TENANT_ADMIN_ROLE);
    res.json({ items: (await deps.store.list(caller.tenant_id)).map(summaryBody) });
  });

  route('put', '/:registry', async (req: Request, res: Response) => {
    const caller = requireRole(req, TENANT_ADMIN_ROLE);
    const registry = registryOf(req);
    const body = parseInput(putRegistryCredentialSchema, req.body, 'body');
    const { summary, created } = await deps.store.put(caller.tenant_id, registry, body);
    res.status(created ? 201 : 200).json(summaryBody(summary));
  });

  route('delete', '/:registry', async (req: Request, res: Response) => {
    const caller = requireRole(req, TENANT_ADMIN_ROLE);
    const registry = registryOf(req);
    if (!(await deps.store.delete(caller.tenant_id, registry))) {
      throw new CtrlplaneError('not_found', `no registry credentials for ${registry} in this tenant`);
    }
    res.status(204).end();
  });

  for (const [path, methods] of allowed) {
    const allow = methods.join(', ');
    router.all(path, routeLabel(`${MOUNT}${path === '/' ? '' : path}`), (req: Request, res: Response) => {
      res.setHeader('Allow', allow);
      throw new CtrlplaneError('method_not_allowed', `${req.method} is not allowed here; use ${allow}`);
    });
  }
  return router;
}

/** The registry of the path, as the Docker provider looks it up (Docker Hub's other names are `docker.io`). */
function registryOf(req: Request): string {
  const { registry } = parseInput(registryParamsSchema, { registry: String(req.params.registry) }, 'query');
  return registryHost(`${registry}/x`);
}

function summaryBody(summary: RegistryCredentialSummary) {
  return {
    registry: summary.registry,
    username: summary.username,
    created_at: new Date(summary.created_at).toISOString(),
    updated_at: new Date(summary.updated_at).toISOString(),
  };
}
