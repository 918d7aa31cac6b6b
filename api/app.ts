import { randomUUID } from 'node:crypto';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import { pinoHttp } from 'pino-http';
import type { Logger } from '../config/logger.ts';
import type { DatacenterStore } from '../db/datacenter-store.ts';
import type { EventStream } from '../db/event-stream.ts';
import type { IdempotencyStore } from '../db/idempotency-store.ts';
import type { InstanceEventStore } from '../db/instance-event-store.ts';
import type { InstanceStore } from '../db/instance-store.ts';
import type { RegistryCredentialStore } from '../db/registry-credential-store.ts';
import type { ReleaseStore } from '../db/release-store.ts';
import type { StreamTicketStore } from '../db/stream-tickets.ts';
import { CtrlplaneError } from '../domain/errors.ts';
import type { KustomizeOptions } from '../providers/kustomize.ts';
import type { ProviderRegistry } from '../providers/registry.ts';
import { requestSpans } from '../telemetry/http-spans.ts';
import type { AgentPollers } from './agent-pollers.ts';
import { type AuthOptions, authenticate } from './auth.ts';
import { docsRoutes } from './docs.ts';
import { errorHandler } from './error-handler.ts';
import { capacityReport } from './host-capacity.ts';
import type { InstanceCommands } from './instance-commands.ts';
import { jsonBody } from './json-body.ts';
import { loggedUrl } from './logged-url.ts';
import { ApiMetrics, routeLabel } from './metrics.ts';
import { openApiDocument } from './openapi.ts';
import { problem, sendProblem } from './problem.ts';
import { type TenantRateLimits, tenantRateLimit } from './rate-limit.ts';
import { readinessProbe } from './readiness.ts';
import { type BillingRoutesDeps, billingRoutes } from './routes/billing.ts';
import { capacityRoutes } from './routes/capacity.ts';
import { datacenterRoutes } from './routes/datacenters.ts';
import { eventStreamRoute } from './routes/events.ts';
import { instanceRoutes } from './routes/instances.ts';
import { registryCredentialRoutes } from './routes/registry-credentials.ts';
import { type WebhookRoutesDeps, webhookRoutes } from './routes/webhooks.ts';

export { BODY_LIMIT_BYTES } from './json-body.ts';

export interface AppDeps {
  store: InstanceStore;
  events: InstanceEventStore;
  releases: ReleaseStore;
  /** The tenants' lifecycle events as one stream (GET /v1/events; webhooks start at its head). */
  eventStream: EventStream;
  /** The /v1/webhooks routes. */
  webhooks: Omit<WebhookRoutesDeps, 'stream'>;
  commands: InstanceCommands;
  providers: ProviderRegistry;
  /** Datacenters: the /v1/datacenters admin routes and the provider resolution of a create. */
  datacenters: DatacenterStore;
  /** Tenants' own image registry credentials: the /v1/registry-credentials routes. */
  registryCredentials: RegistryCredentialStore;
  idempotency: IdempotencyStore;
  /** One-time tickets that open the SSE log stream (EventSource cannot send the Authorization header). */
  streamTickets: StreamTicketStore;
  auth: Omit<AuthOptions, 'streamTicket'>;
  /** How long a create waits for the provider's health check (default 5 s). */
  providerHealthTimeoutMs?: number;
  /** Memory placement counts for a service that gives none (default 512, CTRLPLANE_DOCKER_DEFAULT_MEMORY_MB). */
  placementDefaultMemoryMb?: number;
  /** Who polls the agents' task queues (GET /v1/admin/capacity); absent: not looked at. */
  agents?: AgentPollers;
  /** How kustomize sources are built when a create is checked (default: kustomize or kubectl on PATH). */
  kustomize?: KustomizeOptions;
  /** Requests per minute per tenant; 0 disables the limit. */
  rateLimits: TenantRateLimits;
  maxWaitMs: number;
  ssePingMs: number;
  /** Aborted when the API shuts down (ends waits and log streams). */
  shutdown: AbortSignal;
  metrics?: ApiMetrics;
  /** The billing admin routes under /v1/admin (absent: not mounted). */
  billing?: BillingRoutesDeps;
  logger: Logger;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
/** The SSE log stream: the one route that takes a stream ticket instead of the Authorization header. */
const LOG_STREAM_PATH = /^\/instances\/([^/]+)\/logs\/stream$/;

/** A NUL cannot be stored in PostgreSQL text: refuse it in the path and query rather than fail later. */
function refuseNul(req: Request, _res: Response, next: NextFunction): void {
  if (/%00/.test(req.url) || req.url.includes('\0')) {
    throw new CtrlplaneError('invalid_request', 'the path or query contains a NUL character', [
      { field: 'query', message: 'must not contain NUL characters' },
    ]);
  }
  next();
}

function methodNotAllowed(allow: string) {
  return (req: Request, res: Response) => {
    res.setHeader('Allow', allow);
    throw new CtrlplaneError('method_not_allowed', `${req.method} is not allowed here; use ${allow}`);
  };
}

export function createApp(deps: AppDeps): Express {
  const metrics = deps.metrics ?? new ApiMetrics();
  const placementDefaultMemoryMb = deps.placementDefaultMemoryMb ?? 512;
  metrics.observeCapacity(() => capacityReport(deps.providers, deps.store));
  const app = express();
  app.disable('x-powered-by');
  // ETags are set only where they mean something: the instance's version.
  app.set('etag', false);
  app.set('query parser', 'extended');

  // First: the request's trace covers all that follows, and its ids are in the request's log lines.
  app.use(requestSpans());
  app.use(metrics.middleware());
  app.use(
    pinoHttp({
      logger: deps.logger,
      genReqId: (req, res) => {
        const given = req.headers['x-request-id'];
        const id = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
        res.setHeader('X-Request-Id', id);
        return id;
      },
      // A client's mistake (4xx) is not the operator's problem: info, like a success; 5xx are errors.
      customLogLevel: (_req, res, err) => (err || res.statusCode >= 500 ? 'error' : 'info'),
      serializers: {
        req: (req) => ({ id: req.id, method: req.method, url: loggedUrl(String(req.url)) }),
        res: (res) => ({ status: res.statusCode }),
        // The request log only says a 5xx happened; unexpected errors are logged with their stack by the
        // error handler.
        err: (err) => ({ message: err instanceof Error ? err.message : String(err) }),
      },
    }),
  );
  app.use(refuseNul);

  app.get('/healthz', routeLabel('/healthz'), (_req, res) => {
    res.json({ status: 'ok' });
  });
  const readiness = readinessProbe({
    ping: { postgres: () => deps.store.ping(), temporal: () => deps.commands.ping() },
    providers: deps.providers,
    timeoutMs: deps.providerHealthTimeoutMs ?? 5_000,
    logger: deps.logger,
  });
  // A full host does not make the API unready (reads and deletes still work): capacity is the operator's
  // GET /v1/admin/capacity, and creates for a full host are refused.
  app.get('/readyz', routeLabel('/readyz'), async (_req: Request, res: Response) => {
    const answer = await readiness();
    res.status(answer.status === 'ready' ? 200 : 503).json(answer);
  });
  app.get('/metrics', routeLabel('/metrics'), async (_req, res) => {
    const { contentType, body } = await metrics.render();
    res.type(contentType).send(body);
  });
  app.get('/openapi.json', routeLabel('/openapi.json'), (_req, res) => {
    res.json(openApiDocument());
  });
  app.use(docsRoutes());
  for (const path of ['/healthz', '/readyz', '/metrics', '/openapi.json', '/docs']) {
    app.all(path, routeLabel(path), methodNotAllowed('GET'));
  }

  const v1 = express.Router();
  v1.use(
    authenticate({
      ...deps.auth,
      streamTicket: {
        presented: (req) => req.method === 'GET' && LOG_STREAM_PATH.test(req.path) && 'ticket' in req.query,
        redeem: async (req) => {
          const instanceId = LOG_STREAM_PATH.exec(req.path)?.[1];
          const ticket = req.query.ticket;
          if (!instanceId || typeof ticket !== 'string' || ticket.length > 128) return undefined;
          const holder = await deps.streamTickets.redeem(ticket, instanceId);
          return holder ? { ...holder, roles: [] } : undefined;
        },
      },
    }),
  );
  v1.use(...tenantRateLimit(deps.rateLimits));
  // Bodies are read only from authenticated callers within their budget.
  v1.use(jsonBody());
  v1.use(
    '/instances',
    instanceRoutes({
      store: deps.store,
      events: deps.events,
      releases: deps.releases,
      kustomize: deps.kustomize ?? {},
      commands: deps.commands,
      providers: deps.providers,
      datacenters: deps.datacenters,
      idempotency: deps.idempotency,
      providerHealthTimeoutMs: deps.providerHealthTimeoutMs ?? 5_000,
      placementDefaultMemoryMb,
      metrics,
      logger: deps.logger,
      maxWaitMs: deps.maxWaitMs,
      ssePingMs: deps.ssePingMs,
      shutdown: deps.shutdown,
      streamTickets: deps.streamTickets,
    }),
  );
  v1.use('/datacenters', datacenterRoutes({ store: deps.datacenters, providers: deps.providers }));
  v1.use(
    '/admin/capacity',
    capacityRoutes({
      providers: deps.providers,
      store: deps.store,
      ...(deps.agents ? { agents: deps.agents } : {}),
      placementDefaultMemoryMb,
    }),
  );
  v1.use('/registry-credentials', registryCredentialRoutes({ store: deps.registryCredentials }));
  v1.get(
    '/events',
    ...eventStreamRoute({
      stream: deps.eventStream,
      logger: deps.logger,
      ssePingMs: deps.ssePingMs,
      shutdown: deps.shutdown,
    }),
  );
  v1.all('/events', routeLabel('/v1/events'), methodNotAllowed('GET'));
  v1.use('/webhooks', webhookRoutes({ ...deps.webhooks, stream: deps.eventStream }));
  if (deps.billing) v1.use('/admin', billingRoutes(deps.billing));
  app.use('/v1', v1);

  app.use((req: Request, res: Response) => {
    sendProblem(res, problem('not_found', `no route for ${req.method} ${req.path}`, { instance: req.path }));
  });
  app.use(errorHandler(deps.logger));
  return app;
}
