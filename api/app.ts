import { randomUUID } from 'node:crypto';
import express, { type Express, type Request, type Response } from 'express';
import { pinoHttp } from 'pino-http';
import type { Logger } from '../config/logger';
import type { ProviderRegistry } from '../providers/registry';
import { authenticate } from './auth';
import { errorHandler } from './error-handler';
import type { InstanceCommands } from './instance-commands';
import type { InstanceStore } from './instance-store';
import { problem, sendProblem } from './problem';
import { instanceRoutes } from './routes/instances';

export interface AppDeps {
  store: InstanceStore;
  commands: InstanceCommands;
  providers: ProviderRegistry;
  jwtSecret: string;
  maxWaitMs: number;
  logger: Logger;
}

export const BODY_LIMIT_BYTES = 256 * 1024;

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'extended');

  app.use(
    pinoHttp({
      logger: deps.logger,
      genReqId: (req, res) => {
        const given = req.headers['x-request-id'];
        const id = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
        res.setHeader('X-Request-Id', id);
        return id;
      },
      customLogLevel: (_req, res, err) =>
        err || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info',
      serializers: {
        req: (req) => ({ id: req.id, method: req.method, url: req.url }),
        res: (res) => ({ status: res.statusCode }),
      },
    }),
  );
  app.use(express.json({ limit: BODY_LIMIT_BYTES, strict: true }));

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req: Request, res: Response) => {
    const checks = await readinessChecks(deps);
    const ready = Object.values(checks).every((c) => c.ok);
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not_ready', checks });
  });

  const v1 = express.Router();
  v1.use(authenticate(deps.jwtSecret));
  v1.use(
    '/instances',
    instanceRoutes({
      store: deps.store,
      commands: deps.commands,
      providers: deps.providers,
      maxWaitMs: deps.maxWaitMs,
    }),
  );
  app.use('/v1', v1);

  app.use((req: Request, res: Response) => {
    sendProblem(res, problem('not_found', `no route for ${req.method} ${req.path}`, { instance: req.path }));
  });
  app.use(errorHandler(deps.logger));
  return app;
}

async function readinessChecks(deps: AppDeps): Promise<Record<string, { ok: boolean; message?: string }>> {
  const check = async (fn: () => Promise<unknown>) => {
    try {
      await fn();
      return { ok: true };
    } catch (err) {
      return { ok: false, message: err instanceof Error ? err.message : String(err) };
    }
  };
  const entries: [string, Promise<{ ok: boolean; message?: string }>][] = [
    ['postgres', check(() => deps.store.ping())],
    ['temporal', check(() => deps.commands.ping())],
    ...deps.providers.names().map((name): [string, Promise<{ ok: boolean; message?: string }>] => [
      `provider:${name}`,
      deps.providers
        .get(name)
        .healthCheck()
        .then((h) => ({ ok: h.healthy, message: h.message })),
    ]),
  ];
  return Object.fromEntries(await Promise.all(entries.map(async ([k, p]) => [k, await p] as const)));
}
