import { type Request, type RequestHandler, type Response, Router } from 'express';
import { typeid } from 'typeid-js';
import type { EventStream } from '../../db/event-stream.ts';
import type { WebhookDelivery, WebhookStore, WebhookSummary } from '../../db/webhook-store.ts';
import { CtrlplaneError } from '../../domain/errors.ts';
import { allowedAddresses, type HostLookup, RefusedAddressError } from '../../webhooks/address.ts';
import { newWebhookSecret } from '../../webhooks/signature.ts';
import { routeLabel } from '../metrics.ts';
import { requireRole, TENANT_ADMIN_ROLE } from '../roles.ts';
import {
  createWebhookSchema,
  deliveriesQuerySchema,
  patchWebhookSchema,
  webhookParamsSchema,
} from '../schemas/webhooks.ts';
import { parseInput } from '../validate.ts';
import type { WebhookWorkflows } from '../webhook-workflows.ts';

const MOUNT = '/v1/webhooks';

export interface WebhookRoutesDeps {
  store: WebhookStore;
  stream: EventStream;
  workflows: WebhookWorkflows;
  /** CTRLPLANE_WEBHOOK_ALLOW_PRIVATE. */
  allowPrivate: boolean;
  lookup: HostLookup;
}

/**
 * A tenant's webhooks (admin role), scoped to the caller's tenant; mount at `/v1/webhooks` behind
 * authentication. The secret is in the answers of the create and the rotation only.
 */
export function webhookRoutes(deps: WebhookRoutesDeps): Router {
  const router = Router();
  const allowed = new Map<string, string[]>();

  function route(method: 'get' | 'post' | 'patch' | 'delete', path: string, handler: RequestHandler): void {
    router[method](path, routeLabel(`${MOUNT}${path === '/' ? '' : path}`), (req, _res, next) => {
      requireRole(req, TENANT_ADMIN_ROLE);
      next();
    });
    router[method](path, handler);
    allowed.set(path, [...(allowed.get(path) ?? []), method.toUpperCase()]);
  }

  async function checkUrl(raw: string): Promise<void> {
    try {
      await allowedAddresses(new URL(raw), { allowPrivate: deps.allowPrivate, lookup: deps.lookup });
    } catch (err) {
      const message =
        err instanceof RefusedAddressError
          ? err.message
          : `the host does not resolve (${err instanceof Error ? err.message : String(err)})`;
      throw new CtrlplaneError('invalid_request', `url: ${message}`, [{ field: 'url', message }]);
    }
  }

  route('post', '/', async (req: Request, res: Response) => {
    const caller = requireRole(req, TENANT_ADMIN_ROLE);
    const body = parseInput(createWebhookSchema, req.body, 'body');
    await checkUrl(body.url);
    const now = new Date();
    const webhook: WebhookSummary = {
      id: typeid('wh').toString(),
      tenant_id: caller.tenant_id,
      url: body.url,
      event_types: body.event_types,
      enabled: body.enabled,
      created_at: now,
      updated_at: now,
    };
    const secret = newWebhookSecret();
    // Events from now on: the cursor is the stream's head at creation.
    await deps.store.create({ ...webhook, secret, cursor: await deps.stream.head() });
    try {
      await deps.workflows.ensure(webhook.id);
    } catch (err) {
      await deps.store.delete(caller.tenant_id, webhook.id);
      throw err;
    }
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Location', `${MOUNT}/${webhook.id}`);
    res.status(201).json({ ...webhookBody(webhook), secret });
  });

  route('get', '/', async (req: Request, res: Response) => {
    const caller = requireRole(req, TENANT_ADMIN_ROLE);
    res.json({ items: (await deps.store.list(caller.tenant_id)).map(webhookBody) });
  });

  route('get', '/:id', async (req: Request, res: Response) => {
    const caller = requireRole(req, TENANT_ADMIN_ROLE);
    res.json(webhookBody(await owned(deps.store, caller.tenant_id, req)));
  });

  route('patch', '/:id', async (req: Request, res: Response) => {
    const caller = requireRole(req, TENANT_ADMIN_ROLE);
    const id = webhookIdOf(req);
    const change = parseInput(patchWebhookSchema, req.body ?? {}, 'body');
    if (change.url !== undefined) await checkUrl(change.url);
    const updated = await deps.store.update(caller.tenant_id, id, change);
    if (!updated) throw new CtrlplaneError('not_found', `webhook ${id} not found`);
    // A webhook whose workflow was never started (the API died between the row and the start) gets it here.
    await deps.workflows.ensure(id);
    res.json(webhookBody(updated));
  });

  route('delete', '/:id', async (req: Request, res: Response) => {
    const caller = requireRole(req, TENANT_ADMIN_ROLE);
    const id = webhookIdOf(req);
    if (!(await deps.store.delete(caller.tenant_id, id))) {
      throw new CtrlplaneError('not_found', `webhook ${id} not found`);
    }
    res.status(204).end();
  });

  route('post', '/:id/rotate-secret', async (req: Request, res: Response) => {
    const caller = requireRole(req, TENANT_ADMIN_ROLE);
    const id = webhookIdOf(req);
    const secret = newWebhookSecret();
    const updated = await deps.store.rotateSecret(caller.tenant_id, id, secret);
    if (!updated) throw new CtrlplaneError('not_found', `webhook ${id} not found`);
    res.setHeader('Cache-Control', 'no-store');
    res.json({ ...webhookBody(updated), secret });
  });

  route('get', '/:id/deliveries', async (req: Request, res: Response) => {
    const caller = requireRole(req, TENANT_ADMIN_ROLE);
    const query = parseInput(deliveriesQuerySchema, req.query, 'query');
    const webhook = await owned(deps.store, caller.tenant_id, req);
    res.json({ items: (await deps.store.deliveries(webhook.id, query.limit)).map(deliveryBody) });
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

function webhookIdOf(req: Request): string {
  return parseInput(webhookParamsSchema, { id: String(req.params.id) }, 'query').id;
}

/** The caller's webhook; another tenant's is indistinguishable from one that does not exist. */
async function owned(store: WebhookStore, tenantId: string, req: Request): Promise<WebhookSummary> {
  const id = webhookIdOf(req);
  const webhook = await store.get(tenantId, id);
  if (!webhook) throw new CtrlplaneError('not_found', `webhook ${id} not found`);
  return webhook;
}

function webhookBody(webhook: WebhookSummary) {
  return {
    id: webhook.id,
    url: webhook.url,
    event_types: webhook.event_types,
    enabled: webhook.enabled,
    created_at: new Date(webhook.created_at).toISOString(),
    updated_at: new Date(webhook.updated_at).toISOString(),
  };
}

function deliveryBody(d: WebhookDelivery) {
  const iso = (t: Date | null) => (t === null ? null : new Date(t).toISOString());
  return {
    event_id: d.event_id,
    instance_id: d.instance_id,
    event_type: d.event_type,
    status: d.status,
    attempts: d.attempts,
    last_response_code: d.last_response_code,
    last_error: d.last_error,
    created_at: new Date(d.created_at).toISOString(),
    last_attempt_at: iso(d.last_attempt_at),
    delivered_at: iso(d.delivered_at),
  };
}
