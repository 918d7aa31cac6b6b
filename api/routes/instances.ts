import { randomUUID } from 'node:crypto';
import { type Request, type RequestHandler, type Response, Router } from 'express';
import type { InstanceRecord } from '../../db/entities/instance-record.ts';
import { instanceToRecord, recordToInstance } from '../../db/instance-mapping.ts';
import type { Admission } from '../../db/instance-store.ts';
import type { CommandArgs, CommandName } from '../../domain/commands.ts';
import { CtrlplaneError } from '../../domain/errors.ts';
import { newInstanceId } from '../../domain/ids.ts';
import { type Instance, slugify } from '../../domain/instance.ts';
import { placementMemory } from '../../domain/placement-rules.ts';
import type { DeploymentVariables } from '../../workflows/messages.ts';
import { callerOf } from '../auth.ts';
import { checkIfMatch, etagOf } from '../etag.ts';
import { lookAtHost, requireFleetRoom, requireRoom } from '../host-capacity.ts';
import { replayCompleted, runIdempotent } from '../idempotency.ts';
import { isInDoubt } from '../in-doubt.ts';
import { checkRender, placeOnHealthy, prepareDeployment } from '../instance-placement.ts';
import { policiesOf } from '../lifecycle-policies.ts';
import { routeLabel } from '../metrics.ts';
import { checkScaleLimits, checkServiceLimits } from '../provider-limits.ts';
import { requireRestartService, requireStopOptions } from '../provider-support.ts';
import { jsonReply, type Reply } from '../reply.ts';
import { OPERATOR_ROLE, requireRole } from '../roles.ts';
import {
  commandQuerySchema,
  createInstanceSchema,
  emptyBodySchema,
  listInstancesQuerySchema,
  restartServiceSchema,
  scaleInstanceSchema,
  stopInstanceSchema,
  suspendInstanceSchema,
  unsuspendInstanceSchema,
  updateInstanceSchema,
} from '../schemas/instance-requests.ts';
import { deployQuerySchema, rollbackInstanceSchema } from '../schemas/releases.ts';
import { parseInput } from '../validate.ts';
import { DEFAULT_WAIT_MS, parseWait } from '../wait-duration.ts';
import { execRoutes } from './instance-exec.ts';
import { observationRoutes } from './instance-observation.ts';
import { noSuchRelease, releaseRoutes } from './releases.ts';
import { type InstanceRoutesDeps, instanceIdOf, loadForOperator, loadOwned, pause } from './route-context.ts';

export type { InstanceRoutesDeps } from './route-context.ts';

const SETTLED_POLL_MS = 200;
/** After a command is accepted, how long the 202 answer waits for the workflow's first transition. */
const ACCEPTED_SNAPSHOT_WAIT_MS = 1_000;
const SNAPSHOT_POLL_MS = 50;

/** The instance routes, and a 405 with `Allow` for every other method on their paths. */
export function instanceRoutes(deps: InstanceRoutesDeps): Router {
  const router = Router();
  const { store, commands } = deps;
  const allowed = new Map<string, Set<string>>();

  function route(method: 'get' | 'post' | 'patch' | 'delete', path: string, handler: RequestHandler): void {
    const label = `/v1/instances${path === '/' ? '' : path}`;
    router[method](path, routeLabel(label), handler);
    const methods = allowed.get(path) ?? new Set<string>();
    methods.add(method.toUpperCase());
    allowed.set(path, methods);
  }

  function instanceReply(status: number, row: InstanceRecord, headers: Record<string, string> = {}): Reply {
    return jsonReply(status, recordToInstance(row), { ETag: etagOf(row), ...headers });
  }

  /**
   * A command's 202 (or a waiting create's 201): the instance, and what its running command waits for while
   * its provider's agent is away.
   */
  async function withAgentWait(
    status: 201 | 202,
    row: InstanceRecord,
    headers: Record<string, string> = {},
  ): Promise<Reply> {
    const settled = status === 201 && row.state !== 'provisioning';
    const waiting = settled ? undefined : await commands.agentWait(row);
    if (!waiting) return instanceReply(status, row, headers);
    return jsonReply(
      status,
      { ...recordToInstance(row), waiting_for: waiting },
      { ETag: etagOf(row), ...headers },
    );
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
      if (deps.shutdown.aborted) return row;
      await pause(SETTLED_POLL_MS, deps.shutdown);
    }
  }

  /** The read model a moment after the workflow accepted a command: its first transition, if it comes soon. */
  async function snapshotAfter(row: InstanceRecord): Promise<InstanceRecord> {
    const deadline = Date.now() + ACCEPTED_SNAPSHOT_WAIT_MS;
    for (;;) {
      const current = (await store.get(row.tenant_id, row.id)) ?? row;
      if (current.seq > row.seq || Date.now() >= deadline || deps.shutdown.aborted) return current;
      await pause(SNAPSHOT_POLL_MS, deps.shutdown);
    }
  }

  // --- create, list, get ---------------------------------------------------------------------------------

  route('post', '/', async (req: Request, res: Response) => {
    const caller = callerOf(req);
    const { wait } = parseInput(commandQuerySchema, req.query, 'query');
    const waitMs = parseWait(wait, deps.maxWaitMs);
    const body = parseInput(createInstanceSchema, req.body, 'body');
    if (await replayCompleted(req, res, deps.idempotency, req.body)) return;
    // Everything that can refuse the request runs before anything is written: where the instance goes (400,
    // 409), whether its provider is up (503) and has room (503), whether the provider runs its source (400),
    // and whether its variables resolve and its templates render (400).
    const placement = await placeOnHealthy(deps, caller.tenant_id, body, deps.providerHealthTimeoutMs);
    const host = await lookAtHost(placement);
    if (host) requireRoom(placement, host, await store.admittedTo(placement.provider_name, host.taken_at));
    const deployment = prepareDeployment(placement, body);
    const memoryMb = placementMemory(deployment.services, deps.placementDefaultMemoryMb);
    checkServiceLimits(placement.provider, deployment.services, deployment.services_field);
    const renderContext = { name: body.name, tenant_id: caller.tenant_id, region: placement.region };
    const provisionalId = newInstanceId();
    await checkRender(deployment, { id: provisionalId, ...renderContext }, deps.shutdown, deps.kustomize);
    const variables: DeploymentVariables = {
      ...(deployment.variables.length > 0 ? { variables: deployment.variables } : {}),
      ...(Object.keys(deployment.variable_values).length > 0
        ? { variable_values: deployment.variable_values }
        : {}),
    };
    await runIdempotent(
      req,
      res,
      {
        store: deps.idempotency,
        logger: deps.logger,
        body: req.body,
        resourceId: provisionalId,
        signal: deps.shutdown,
      },
      async ({ key, resourceId, resumed }) => {
        const id = resourceId ?? provisionalId;
        // The create's request, as its first release records it.
        const origin = { request_id: key ? `create:${key}` : `create:${id}`, actor: caller.sub };
        const location = { Location: `/v1/instances/${id}` };
        if (resumed) {
          // The request that claimed this key died midway: finish what it started instead of creating again.
          const existing = await store.get(caller.tenant_id, id);
          if (existing) {
            await commands.startWorkflow(recordToInstance(existing), variables, origin).catch((err) => {
              if (!(err instanceof CtrlplaneError && err.code === 'already_exists')) throw err;
            });
            return instanceReply(201, existing, location);
          }
        }
        // A key taken over from a request that died before its insert keeps that request's id.
        if (id !== provisionalId) {
          await checkRender(deployment, { id, ...renderContext }, deps.shutdown, deps.kustomize);
        }
        const now = new Date().toISOString();
        const instance: Instance = {
          id,
          created_at: now,
          updated_at: now,
          tenant_id: caller.tenant_id,
          name: body.name,
          slug: slugify(body.name),
          provider_name: placement.provider_name,
          ...(placement.reason ? { placement: placement.reason } : {}),
          provider_ref: '',
          region: placement.region,
          state: 'provisioning',
          kind: body.kind ?? 'deployment',
          services: deployment.services,
          source: deployment.source,
          ...(placement.datacenter ? { datacenter_id: placement.datacenter.id } : {}),
          ...(body.labels ? { labels: body.labels } : {}),
          ...policiesOf(body),
        };
        const record = instanceToRecord(instance, 0);
        // Counted again with the host's admission locked, so racing creates cannot overfill it. The same look
        // at the host serves: what was admitted after it is counted from the read model.
        const admission: Admission = {
          ...(host
            ? {
                host: {
                  snapshotAt: host.taken_at,
                  admit: (admitted) => requireRoom(placement, host, admitted),
                },
              }
            : {}),
          ...(placement.limits
            ? {
                fleet: {
                  defaultMemoryMb: deps.placementDefaultMemoryMb,
                  admit: (usage) => requireFleetRoom(placement, usage, memoryMb),
                },
              }
            : {}),
        };
        await store.insertNew(record, admission.host || admission.fleet ? admission : undefined);
        const deadline = waitMs !== undefined ? Date.now() + waitMs : undefined;
        try {
          await commands.startWorkflow(instance, variables, origin, waitMs, deps.shutdown);
        } catch (err) {
          // In doubt the workflow may run: the row stays for the retry with the key to resume, and the worker's
          // unstarted-instance sweeper removes it if no workflow ever appears.
          if (!isInDoubt(err)) await store.removeUnstarted(instance.id);
          throw err;
        }
        if (deadline !== undefined) {
          // The workflow has settled (or the wait ran out): usually the first read finds its row settled too.
          const left = Math.max(deadline - Date.now(), 0);
          const settled = await waitUntilSettled(caller.tenant_id, instance.id, left);
          if (settled) return withAgentWait(201, settled, location);
        }
        return instanceReply(201, record, location);
      },
    );
  });

  route('get', '/', async (req: Request, res: Response) => {
    const { tenant_id: tenantId, ...query } = parseInput(listInstancesQuerySchema, req.query, 'query');
    // Another tenant's list is the operator's; a tenant never names a tenant, it is the token's.
    if (tenantId !== undefined) requireRole(req, OPERATOR_ROLE);
    const page = await store.list(tenantId ?? callerOf(req).tenant_id, query);
    res.json({ ...page, items: page.items.map(recordToInstance) });
  });

  route('get', '/:id', async (req: Request, res: Response) => {
    const row = await loadOwned(store, req);
    res.setHeader('ETag', etagOf(row));
    if (ifNoneMatchHolds(req.get('If-None-Match'), etagOf(row))) {
      res.status(304).end();
      return;
    }
    res.json(recordToInstance(row));
  });

  // --- PATCH and the commands ---------------------------------------------------------------------------

  interface CommandOptions<N extends CommandName> {
    name: N;
    args: CommandArgs[N];
    waitMs: number | undefined;
    /** Checks against the loaded instance before anything is sent (e.g. the rename's slug). */
    precheck?: (row: InstanceRecord) => Promise<void>;
    /** `operator`: the instance is addressed by id in any tenant; else only in the caller's tenant. */
    scope?: 'own_tenant' | 'operator';
  }

  /** Sends a command to the instance's workflow under the request's Idempotency-Key and If-Match. */
  async function runCommand<N extends CommandName>(
    req: Request,
    res: Response,
    options: CommandOptions<N>,
  ): Promise<void> {
    const { name, waitMs } = options;
    const caller = callerOf(req);
    const load = options.scope === 'operator' ? loadForOperator : loadOwned;
    // Another tenant's or a missing instance is a 404 before any key is claimed: such a request writes nothing.
    await load(store, req);
    await runIdempotent(
      req,
      res,
      { store: deps.idempotency, logger: deps.logger, body: req.body, signal: deps.shutdown },
      async ({ key }) => {
        const row = await load(store, req);
        checkIfMatch(req, row);
        if (row.state === 'destroyed') {
          if (name !== 'delete') {
            throw new CtrlplaneError('invalid_state', `${name} is not allowed: the instance is destroyed`);
          }
          // Delete is convergent: deleting a destroyed instance succeeds.
          return waitMs !== undefined ? { status: 204 } : instanceReply(202, row);
        }
        await options.precheck?.(row);
        const requestId = key ? `${name}:${key}` : randomUUID();
        let outcome = 'error';
        try {
          const result = await commands.send(
            name,
            row.id,
            { request_id: requestId, actor: caller.sub, ...options.args },
            waitMs,
            deps.shutdown,
          );
          outcome = result.status;
          if (result.status === 'completed') {
            if (name === 'delete') return { status: 204 };
            // The read model's row (with its ETag) once it has caught up with the workflow's answer.
            const current = await store.get(row.tenant_id, row.id);
            if (current && current.updated_at.getTime() >= new Date(result.instance.updated_at).getTime()) {
              return instanceReply(200, current);
            }
            return jsonReply(200, result.instance);
          }
          return withAgentWait(202, await snapshotAfter(row));
        } catch (err) {
          if (err instanceof CtrlplaneError) outcome = err.code;
          throw err;
        } finally {
          deps.metrics.commands.inc({ command: name, outcome });
        }
      },
    );
  }

  function commandWait(req: Request, defaultWait?: string): number | undefined {
    const { wait } = parseInput(commandQuerySchema, req.query, 'query');
    return parseWait(wait ?? defaultWait, deps.maxWaitMs);
  }

  function noBody(req: Request): void {
    if (req.body !== undefined) parseInput(emptyBodySchema, req.body, 'body');
  }

  /** PATCH and rollback: the wait, and whether a failed deploy goes back to the previous release. */
  function deployQuery(req: Request, defaultWait?: string) {
    const { wait, rollback_on_failure } = parseInput(deployQuerySchema, req.query, 'query');
    return {
      waitMs: parseWait(wait ?? defaultWait, deps.maxWaitMs),
      ...(rollback_on_failure !== undefined ? { rollback_on_failure } : {}),
    };
  }

  route('patch', '/:id', async (req: Request, res: Response) => {
    instanceIdOf(req);
    // PATCH answers the updated instance: it waits for the update unless ?wait=false.
    const { waitMs, ...deploy } = deployQuery(req, `${DEFAULT_WAIT_MS}ms`);
    const args = { ...parseInput(updateInstanceSchema, req.body, 'body'), ...deploy };
    if (args.services) {
      const row = await loadOwned(store, req);
      if (deps.providers.has(row.provider_name)) {
        checkServiceLimits(deps.providers.get(row.provider_name), args.services, 'services');
      }
    }
    await runCommand(req, res, {
      name: 'update',
      args,
      waitMs,
      precheck: async (row) => {
        if (args.name === undefined) return;
        const slug = slugify(args.name);
        if (slug === row.slug) return;
        // A fast answer from the read model; the workflow re-checks with the unique index when it renames.
        const holder = await store.findBySlug(row.tenant_id, slug);
        if (holder && holder.id !== row.id) {
          throw new CtrlplaneError('already_exists', `an instance with slug ${slug} already exists`, [
            { field: 'name', message: `slug ${slug} is taken in this tenant` },
          ]);
        }
      },
    });
  });

  route('delete', '/:id', async (req: Request, res: Response) => {
    instanceIdOf(req);
    const waitMs = commandWait(req);
    noBody(req);
    await runCommand(req, res, { name: 'delete', args: {}, waitMs });
  });

  for (const name of ['start', 'restart'] as const) {
    route('post', `/:id/${name}`, async (req: Request, res: Response) => {
      instanceIdOf(req);
      const waitMs = commandWait(req);
      noBody(req);
      await runCommand(req, res, { name, args: {}, waitMs });
    });
  }

  route('post', '/:id/stop', async (req: Request, res: Response) => {
    instanceIdOf(req);
    const waitMs = commandWait(req);
    const args = parseInput(stopInstanceSchema, req.body ?? {}, 'body');
    if (args.signal !== undefined || args.timeout !== undefined) {
      requireStopOptions(deps.providers, await loadOwned(store, req), {
        ...(args.signal !== undefined ? { signal: args.signal } : {}),
        ...(args.timeout !== undefined ? { timeout_seconds: args.timeout } : {}),
      });
    }
    await runCommand(req, res, { name: 'stop', args, waitMs });
  });

  route('post', '/:id/services/:service/restart', async (req: Request, res: Response) => {
    instanceIdOf(req);
    const waitMs = commandWait(req);
    noBody(req);
    const args = parseInput(restartServiceSchema, { service: req.params.service }, 'path');
    const row = await loadOwned(store, req);
    if (row.services && !row.services.some((s) => s.name === args.service)) {
      throw new CtrlplaneError('not_found', `the instance has no service ${args.service}`, [
        { field: 'service', message: `the instance has no service ${args.service}` },
      ]);
    }
    requireRestartService(deps.providers, row);
    await runCommand(req, res, { name: 'restart_service', args, waitMs });
  });

  route('post', '/:id/scale', async (req: Request, res: Response) => {
    instanceIdOf(req);
    const waitMs = commandWait(req);
    const args = parseInput(scaleInstanceSchema, req.body, 'body');
    const row = await loadOwned(store, req);
    if (deps.providers.has(row.provider_name)) checkScaleLimits(deps.providers.get(row.provider_name), args);
    await runCommand(req, res, { name: 'scale', args, waitMs });
  });

  // The operator's: any tenant's instance, by id. A tenant (its admin too) cannot suspend, nor lift a
  // suspension, its own instances included.
  route('post', '/:id/suspend', async (req: Request, res: Response) => {
    requireRole(req, OPERATOR_ROLE);
    instanceIdOf(req);
    const waitMs = commandWait(req);
    const args = parseInput(suspendInstanceSchema, req.body, 'body');
    await runCommand(req, res, { name: 'suspend', args, waitMs, scope: 'operator' });
  });

  route('post', '/:id/unsuspend', async (req: Request, res: Response) => {
    requireRole(req, OPERATOR_ROLE);
    instanceIdOf(req);
    const waitMs = commandWait(req);
    const args = parseInput(unsuspendInstanceSchema, req.body ?? {}, 'body');
    await runCommand(req, res, { name: 'unsuspend', args, waitMs, scope: 'operator' });
  });

  route('post', '/:id/rollback', async (req: Request, res: Response) => {
    instanceIdOf(req);
    const { waitMs, ...deploy } = deployQuery(req);
    const body = parseInput(rollbackInstanceSchema, req.body, 'body');
    await runCommand(req, res, {
      name: 'rollback',
      args: { ...body, ...deploy },
      waitMs,
      // A fast answer from the read model; the workflow loads the release itself and fails the command without.
      precheck: async (row) => {
        if (!(await deps.releases.get(row.id, body.release, row.tenant_id))) {
          throw noSuchRelease(body.release, 'release');
        }
      },
    });
  });

  observationRoutes(deps, route);
  releaseRoutes(deps, route);
  execRoutes(deps, route);

  const ORDER = ['GET', 'POST', 'PATCH', 'DELETE'];
  for (const [path, methods] of allowed) {
    const allow = [...methods].sort((a, b) => ORDER.indexOf(a) - ORDER.indexOf(b)).join(', ');
    router.all(
      path,
      routeLabel(`/v1/instances${path === '/' ? '' : path}`),
      (req: Request, res: Response) => {
        res.setHeader('Allow', allow);
        throw new CtrlplaneError('method_not_allowed', `${req.method} is not allowed here; use ${allow}`);
      },
    );
  }
  return router;
}

/** If-None-Match names the current version (weak comparison, as RFC 9110 asks for this header). */
function ifNoneMatchHolds(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  return header.split(',').some((t) => {
    const tag = t.trim();
    return tag === '*' || tag.replace(/^W\//, '') === etag;
  });
}

export type RouteRegistrar = (
  method: 'get' | 'post' | 'patch' | 'delete',
  path: string,
  handler: RequestHandler,
) => void;
