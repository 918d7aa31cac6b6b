import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { rateLimit } from 'express-rate-limit';
import { callerOf } from './auth.ts';
import { problem, sendProblem } from './problem.ts';

/**
 * Per-tenant request budget on /v1 (after authentication, keyed by the token's tenant): over it, 429
 * problem+json with Retry-After and the RateLimit headers. The counters live in this process, so with N API
 * processes behind a balancer a tenant gets up to N times the budget; a shared store would fix that.
 */
export function tenantRateLimit(perMinute: number): RequestHandler {
  if (perMinute <= 0) return (_req: Request, _res: Response, next: NextFunction) => next();
  return rateLimit({
    windowMs: 60_000,
    limit: perMinute,
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    keyGenerator: (req) => `tenant:${callerOf(req).tenant_id}`,
    // The key is the tenant, not the client address: the library's proxy and IP checks do not apply.
    validate: { ip: false, trustProxy: false, xForwardedForHeader: false, forwardedHeader: false },
    handler: (req, res) => {
      sendProblem(
        res,
        problem('rate_limited', `more than ${perMinute} requests in a minute for this tenant; retry later`, {
          instance: req.originalUrl.split('?')[0],
        }),
      );
    },
  });
}
