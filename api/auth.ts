import type { NextFunction, Request, Response } from 'express';
import { errors as joseErrors, jwtVerify } from 'jose';
import { z } from 'zod';
import { CtrlplaneError } from '../domain/errors';

export interface Caller {
  sub: string;
  tenant_id: string;
  roles: string[];
}

declare global {
  namespace Express {
    interface Request {
      caller?: Caller;
    }
  }
}

const claimsSchema = z.object({
  sub: z.string().min(1),
  tenant_id: z.string().min(1).max(128),
  roles: z.array(z.string()).default([]),
});

export const JWT_ALGORITHM = 'HS256';

/** Bearer JWT authentication: the tenant comes from the token's `tenant_id` claim, never from the request. */
export function authenticate(secret: string) {
  const key = new TextEncoder().encode(secret);
  return async (req: Request, _res: Response, next: NextFunction): Promise<void> => {
    const header = req.headers.authorization;
    const match = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
    if (!match?.[1])
      throw new CtrlplaneError('unauthorized', 'a Bearer token is required in the Authorization header');
    let payload: unknown;
    try {
      ({ payload } = await jwtVerify(match[1], key, { algorithms: [JWT_ALGORITHM] }));
    } catch (err) {
      const reason =
        err instanceof joseErrors.JWTExpired ? 'the token has expired' : 'the token is not valid';
      throw new CtrlplaneError('unauthorized', reason);
    }
    const claims = claimsSchema.safeParse(payload);
    if (!claims.success) {
      throw new CtrlplaneError('unauthorized', 'the token lacks the sub and tenant_id claims');
    }
    req.caller = claims.data;
    next();
  };
}

export function callerOf(req: Request): Caller {
  if (!req.caller) throw new CtrlplaneError('unauthorized', 'not authenticated');
  return req.caller;
}
