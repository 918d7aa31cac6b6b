import type { NextFunction, Request, Response } from 'express';
import {
  createRemoteJWKSet,
  decodeProtectedHeader,
  type JWTPayload,
  type JWTVerifyGetKey,
  errors as joseErrors,
  jwtVerify,
} from 'jose';
import { z } from 'zod';
import { CtrlplaneError } from '../domain/errors.ts';

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

/** Asymmetric algorithms accepted from the JWKS (never `none`, never HS* with a public key). */
const JWKS_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
];

export const ADMIN_ROLE = 'admin';

export interface AuthOptions {
  /** HS256 shared secret; without it HS256 tokens are refused. */
  secret?: string;
  /** A JWKS URL for tokens signed with an asymmetric key. */
  jwksUrl?: string;
  /** Tests may pass a key set directly. */
  jwks?: JWTVerifyGetKey;
  issuer?: string;
  audience?: string;
  /** Requests that may carry the token as `?token=` (SSE: EventSource cannot set headers). */
  queryTokenAllowed?: (req: Request) => boolean;
}

/**
 * Bearer JWT authentication: HS256 with the shared secret, or an asymmetric key from the JWKS when one is
 * configured. The tenant comes from the token's `tenant_id` claim, never from the request.
 */
export function authenticate(options: AuthOptions | string) {
  const opts: AuthOptions = typeof options === 'string' ? { secret: options } : options;
  const secret = opts.secret ? new TextEncoder().encode(opts.secret) : undefined;
  if (!secret && !opts.jwks && !opts.jwksUrl) {
    throw new Error('authentication needs CTRLPLANE_JWT_SECRET (HS256) or CTRLPLANE_JWKS_URL');
  }
  const jwks = opts.jwks ?? (opts.jwksUrl ? createRemoteJWKSet(new URL(opts.jwksUrl)) : undefined);
  const claimChecks = {
    ...(opts.issuer ? { issuer: opts.issuer } : {}),
    ...(opts.audience ? { audience: opts.audience } : {}),
  };

  async function verify(token: string): Promise<JWTPayload> {
    let alg: string | undefined;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      throw new CtrlplaneError('unauthorized', 'the token is not valid');
    }
    try {
      if (secret && alg === JWT_ALGORITHM) {
        return (await jwtVerify(token, secret, { algorithms: [JWT_ALGORITHM], ...claimChecks })).payload;
      }
      if (jwks && alg && JWKS_ALGORITHMS.includes(alg)) {
        return (await jwtVerify(token, jwks, { algorithms: JWKS_ALGORITHMS, ...claimChecks })).payload;
      }
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired)
        throw new CtrlplaneError('unauthorized', 'the token has expired');
      if (err instanceof joseErrors.JWKSTimeout || err instanceof joseErrors.JWKSInvalid) {
        throw new CtrlplaneError(
          'unauthorized',
          'the token could not be verified: the key set is unavailable',
        );
      }
      throw new CtrlplaneError('unauthorized', 'the token is not valid');
    }
    throw new CtrlplaneError('unauthorized', 'the token is not valid');
  }

  return async (req: Request, _res: Response, next: NextFunction): Promise<void> => {
    const header = req.headers.authorization;
    let token: string | undefined;
    if (header !== undefined) {
      token = /^Bearer\s+(\S+)$/i.exec(header)?.[1];
    } else if (opts.queryTokenAllowed?.(req) && typeof req.query.token === 'string') {
      token = req.query.token;
    }
    if (!token)
      throw new CtrlplaneError('unauthorized', 'a Bearer token is required in the Authorization header');
    const claims = claimsSchema.safeParse(await verify(token));
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

/** Operator-only routes (suspend, unsuspend): 403 for a caller without the role. */
export function requireRole(req: Request, role: string = ADMIN_ROLE): Caller {
  const caller = callerOf(req);
  if (!caller.roles.includes(role)) {
    throw new CtrlplaneError('forbidden', `this operation needs the ${role} role`);
  }
  return caller;
}
