import { type Request, type RequestHandler, type Response, Router } from 'express';
import type { DatacenterStore } from '../../db/datacenter-store.ts';
import { type DatacenterRecord, isDatacenterId } from '../../db/entities/datacenter.ts';
import { CtrlplaneError } from '../../domain/errors.ts';
import type { ProviderRegistry } from '../../providers/registry.ts';
import { routeLabel } from '../metrics.ts';
import { requireRole, TENANT_ADMIN_ROLE } from '../roles.ts';
import {
  createDatacenterSchema,
  listDatacentersQuerySchema,
  updateDatacenterSchema,
} from '../schemas/datacenters.ts';
import { parseInput } from '../validate.ts';

export interface DatacenterRoutesDeps {
  store: DatacenterStore;
  providers: ProviderRegistry;
}

const MOUNT = '/v1/datacenters';

/**
 * The datacenter admin routes (admin role), scoped to the caller's tenant; mount at `/v1/datacenters` behind
 * authentication: POST and GET /, GET and PATCH /:id. Validation happens before anything is written.
 */
export function datacenterRoutes(deps: DatacenterRoutesDeps): Router {
  const router = Router();
  const allowed = new Map<string, string[]>();

  function route(method: 'get' | 'post' | 'patch', path: string, handler: RequestHandler): void {
    router[method](path, routeLabel(`${MOUNT}${path === '/' ? '' : path}`), (req, _res, next) => {
      requireRole(req, TENANT_ADMIN_ROLE);
      next();
    });
    router[method](path, handler);
    allowed.set(path, [...(allowed.get(path) ?? []), method.toUpperCase()]);
  }

  /** A datacenter maps to one provider: with placement by capacity there is no default to map to. */
  function defaultProvider(): string {
    const name = deps.providers.defaultName;
    if (name !== undefined) return name;
    throw new CtrlplaneError(
      'invalid_request',
      'provider_name: required: this installation has no default provider',
      [
        {
          field: 'provider_name',
          message: 'required: creates are placed by capacity, a datacenter names its provider',
        },
      ],
    );
  }

  function registered(name: string): string {
    if (!deps.providers.has(name)) {
      throw new CtrlplaneError('provider_not_found', `provider_name: provider ${name} is not registered`, [
        { field: 'provider_name', message: `provider ${name} is not registered` },
      ]);
    }
    return name;
  }

  route('post', '/', async (req: Request, res: Response) => {
    const caller = requireRole(req, TENANT_ADMIN_ROLE);
    const body = parseInput(createDatacenterSchema, req.body, 'body');
    const record = await deps.store.create({
      tenant_id: caller.tenant_id,
      name: body.name,
      provider_name: registered(body.provider_name ?? defaultProvider()),
      region: body.region ?? '',
      status: body.status ?? 'active',
    });
    res.status(201).setHeader('Location', `${MOUNT}/${record.id}`);
    res.json(datacenterBody(record));
  });

  route('get', '/', async (req: Request, res: Response) => {
    const caller = requireRole(req, TENANT_ADMIN_ROLE);
    const query = parseInput(listDatacentersQuerySchema, req.query, 'query');
    if (query.cursor !== undefined && !isDatacenterId(query.cursor)) {
      throw new CtrlplaneError('invalid_request', 'cursor: is not a cursor this API returned', [
        { field: 'cursor', message: 'is not a cursor this API returned' },
      ]);
    }
    const page = await deps.store.list(caller.tenant_id, query);
    res.json({ ...page, items: page.items.map(datacenterBody) });
  });

  route('get', '/:id', async (req: Request, res: Response) => {
    const caller = requireRole(req, TENANT_ADMIN_ROLE);
    const id = datacenterIdOf(req);
    const record = await deps.store.get(caller.tenant_id, id);
    if (!record) throw new CtrlplaneError('not_found', `datacenter ${id} not found`);
    res.json(datacenterBody(record));
  });

  route('patch', '/:id', async (req: Request, res: Response) => {
    const caller = requireRole(req, TENANT_ADMIN_ROLE);
    const id = datacenterIdOf(req);
    const body = parseInput(updateDatacenterSchema, req.body, 'body');
    if (body.provider_name !== undefined) registered(body.provider_name);
    const record = await deps.store.update(caller.tenant_id, id, body);
    if (!record) throw new CtrlplaneError('not_found', `datacenter ${id} not found`);
    res.json(datacenterBody(record));
  });

  for (const [path, methods] of allowed) {
    router.all(path, routeLabel(`${MOUNT}${path === '/' ? '' : path}`), (req: Request, res: Response) => {
      requireRole(req, TENANT_ADMIN_ROLE);
      res.setHeader('Allow', methods.join(', '));
      throw new CtrlplaneError(
        'method_not_allowed',
        `${req.method} is not allowed here; use ${methods.join(', ')}`,
      );
    });
  }
  return router;
}

function datacenterIdOf(req: Request): string {
  const id = String(req.params.id);
  if (!isDatacenterId(id)) {
    throw new CtrlplaneError(
      'invalid_request',
      `id: ${JSON.stringify(id.slice(0, 80))} is not a datacenter id`,
      [{ field: 'id', message: 'must be a dc_ TypeID' }],
    );
  }
  return id;
}

export function datacenterBody(record: DatacenterRecord) {
  return {
    id: record.id,
    tenant_id: record.tenant_id,
    name: record.name,
    slug: record.slug,
    provider_name: record.provider_name,
    region: record.region,
    status: record.status,
    created_at: new Date(record.created_at).toISOString(),
    updated_at: new Date(record.updated_at).toISOString(),
  };
}
