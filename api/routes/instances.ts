import { randomUUID } from 'node:crypto';
import { type Request, type Response, Router } from 'express';
import type { InstanceRecord } from '../../db/entities/instance-record';
import { instanceToRecord, recordToInstance } from '../../db/instance-mapping';
import { CtrlplaneError } from '../../domain/errors';
import { isInstanceId, newInstanceId } from '../../domain/ids';
import { type Instance, slugify } from '../../domain/instance';
import type { CommandName } from '../../domain/commands';
import { callerOf } from '../auth';
import type { InstanceCommands } from '../instance-commands';
import type { InstanceStore } from '../instance-store';
import { createInstanceSchema, listInstancesQuerySchema } from '../schemas/instance-requests';
import { parseInput } from '../validate';
import { parseWait } from '../wait-duration';

export interface InstanceRoutesDeps {
  store: InstanceStore;
  commands: InstanceCommands;
  providers: { has(name: string): boolean; defaultName: string };
  maxWaitMs: number;
}

const SETTLED_POLL_MS = 200;

function methodNotAllowed(allow: string) {
  return (req: Request, res: Response) => {
    res.setHeader('Allow', allow);
    throw new CtrlplaneError('method_not_allowed', `${req.method} is not allowed here; use ${allow}`);
  };
}

export function instanceRoutes(deps: InstanceRoutesDeps): Router {
  const router = Router();
  const { store, commands } = deps;

  async function loadOwned(req: Request): Promise<InstanceRecord> {
    const id = String(req.params.id);
    if (!isInstanceId(id)) {
      throw new CtrlplaneError(
        'invalid_request',
        `id: ${JSON.stringify(id.slice(0, 80))} is not an instance id`,
        [{ field: 'id', message: 'must be an inst_ TypeID' }],
      );
    }
    // Another tenant's instance is indistinguishable from one that does not exist.
    const row = await store.get(callerOf(req).tenant_id, id);
    if (!row) throw new CtrlplaneError('not_found', `instance ${id} not found`);
    return row;
  }

  async function waitUntilSettled(
    tenantId: string,
    id: string,
    waitMs: number,
  ): Promise<InstanceRecord | null> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const row = await store.get(tenantId, id);
      if (!row || !['provisioning', 'starting'].includes(row.state) || Date.now() >= deadline) return row;
      await new Promise((r) => setTimeout(r, SETTLED_POLL_MS));
    }
  }

  router.post('/', async (req: Request, res: Response) => {
    const caller = callerOf(req);
    const waitMs = parseWait(req.query.wait, deps.maxWaitMs);
    const body = parseInput(createInstanceSchema, req.body, 'body');
    const providerName = body.provider_name ?? deps.providers.defaultName;
    if (!deps.providers.has(providerName)) {
      throw new CtrlplaneError(
        'provider_not_found',
        `provider_name: provider ${providerName} is not registered`,
        [{ field: 'provider_name', message: `provider ${providerName} is not registered` }],
      );
    }
    const services = body.source?.services ?? body.services ?? [];
    const now = new Date().toISOString();
    const instance: Instance = {
      id: newInstanceId(),
      created_at: now,
      updated_at: now,
      tenant_id: caller.tenant_id,
      name: body.name,
      slug: slugify(body.name),
      provider_name: providerName,
      provider_ref: '',
      region: body.region ?? '',
      state: 'provisioning',
      kind: body.kind ?? 'deployment',
      services,
      source: { type: 'services', services },
      ...(body.datacenter_id ? { datacenter_id: body.datacenter_id } : {}),
      ...(body.labels ? { labels: body.labels } : {}),
    };
    await store.insertNew(instanceToRecord(instance, 0));
    try {
      await commands.startWorkflow(instance);
    } catch (err) {
      await store.removeUnstarted(instance.id);
      throw err;
    }
    res.location(`/v1/instances/${instance.id}`);
    if (waitMs !== undefined) {
      const settled = await waitUntilSettled(caller.tenant_id, instance.id, waitMs);
      if (settled && !['provisioning', 'starting'].includes(settled.state)) {
        res.status(201).json(recordToInstance(settled));
        return;
      }
    }
    res.status(201).json(instance);
  });

  router.get('/', async (req: Request, res: Response) => {
    const query = parseInput(listInstancesQuerySchema, req.query, 'query');
    const page = await store.list(callerOf(req).tenant_id, query);
    res.json({ ...page, items: page.items.map(recordToInstance) });
  });

  router.get('/:id', async (req: Request, res: Response) => {
    res.json(recordToInstance(await loadOwned(req)));
  });

  async function command(name: CommandName, req: Request, res: Response): Promise<void> {
    const caller = callerOf(req);
    const waitMs = parseWait(req.query.wait, deps.maxWaitMs);
    const row = await loadOwned(req);
    if (row.state === 'destroyed') {
      if (name !== 'delete')
        throw new CtrlplaneError('invalid_state', `${name} is not allowed: the instance is destroyed`);
      // Delete is convergent: deleting a destroyed instance succeeds.
      if (waitMs !== undefined) res.status(204).end();
      else res.status(202).json(recordToInstance(row));
      return;
    }
    const key = req.get('Idempotency-Key');
    const requestId = key ? `${name}:${key}` : randomUUID();
    const result = await commands.send(name, row.id, { request_id: requestId, actor: caller.sub }, waitMs);
    if (result.status === 'completed') {
      if (name === 'delete') res.status(204).end();
      else res.status(200).json(result.instance);
      return;
    }
    const current = (await store.get(caller.tenant_id, row.id)) ?? row;
    res.status(202).json(recordToInstance(current));
  }

  router.post('/:id/start', (req, res) => command('start', req, res));
  router.post('/:id/stop', (req, res) => command('stop', req, res));
  router.delete('/:id', (req, res) => command('delete', req, res));

  router.all('/', methodNotAllowed('GET, POST'));
  router.all('/:id', methodNotAllowed('GET, DELETE'));
  router.all('/:id/start', methodNotAllowed('POST'));
  router.all('/:id/stop', methodNotAllowed('POST'));

  return router;
}
