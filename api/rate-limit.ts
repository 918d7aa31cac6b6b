import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { rateLimit } from 'express-rate-limit';
import { callerOf } from './auth.ts';
import { problem, sendProblem } from './problem.ts';

export interface TenantRateLimits {
  /** Requests a tenant may make in a minute; `0` turns both limits off. */
  perMinute: number;
  /**
   * Requests a tenant may make in any one second, under the minute's budget; `0` leaves only the minute's.
   * Without it a tenant could spend its whole minute in its first seconds and, on a small host, slow every
   * other tenant's requests while it does.
   */
  burstPerSecond: number;
}

/**
 * Per-tenant request budget on /v1 (after authentication, keyed by the token's tenant): over it, 429
 * problem+json with Retry-After and the RateLimit headers. The counters live in this process, so with N API
 * processes behind a balancer a tenant gets up to N times the budget; a shared store would fix that.
 */
export function tenantRateLimit(limits: TenantRateLimits): RequestHandler[] {
  if (limits.perMinute <= 0) return [(_req: Request, _res: Response, next: NextFunction) => next()];
  const windows = [{ ms: 1_000, limit: limits.burstPerSecond, per: 'a second' }].filter((w) => w.limit > 0);
  windows.push({ ms: 60_000, limit: limits.perMinute, per: 'a minute' });
  return windows.map((window) =>
    rateLimit({
      windowMs: window.ms,
      limit: window.limit,
      // The minute's RateLimit headers are the ones a client plans with; the second's only refuse.
      standardHeaders: window.ms === 60_000 ? 'draft-7' : false,
      legacyHeaders: false,
      keyGenerator: (req) => `tenant:${callerOf(req).tenant_id}`,
      // The key is the tenant, not the client address: the library's proxy and IP checks do not apply.
      validate: { ip: false, trustProxy: false, xForwardedForHeader: false, forwardedHeader: false },
      handler: (req, res) => {
        res.setHeader('Retry-After', String(Math.ceil(window.ms / 1000)));
        sendProblem(
          res,
          problem(
            'rate_limited',
            `more than ${window.limit} requests in ${window.per} for this tenant; retry later`,
            {
              instance: req.originalUrl.split('?')[0],
            },
          ),
        );
      },
    }),
  );
}
