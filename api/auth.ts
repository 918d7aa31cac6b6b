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

export interface AuthOptions {
  /** HS256 shared secret; without it HS256 tokens are refused. */
  secret?: string;
  /** A JWKS URL for tokens signed with an asymmetric key. */
  jwksUrl?: string;
  /** Tests may pass a key set directly. */
  jwks?: JWTVerifyGetKey;
  /** Required with a JWKS (a key set may sign tokens for other services too); checked on HS256 when set. */
  issuer?: string;
  /** Required with a JWKS, like the issuer. */
  audience?: string;
  /**
   * The one alternative to the Authorization header: a request it recognises (the SSE log stream with
   * `?ticket=`) is authenticated by it, or refused with 401 when it answers undefined. Requests it does not
   * recognise need the header.
   */
  streamTicket?: {
    presented(req: Request): boolean;
    redeem(req: Request): Promise<Caller | undefined>;
  };
}

/** Claims a token must carry besides `sub` and `tenant_id`: every token expires. */
const REQUIRED_CLAIMS = ['exp'];

/**
 * Bearer JWT authentication: HS256 with the shared secret, or an asymmetric key from the JWKS when one is
 * configured. The tenant comes from the token's `tenant_id` claim, never from the request. Every token must
 * carry `exp`; with a JWKS, also the configured `iss` and `aud`.
 */
export function authenticate(options: AuthOptions | string) {
  const opts: AuthOptions = typeof options === 'string' ? { secret: options } : options;
  const secret = opts.secret ? new TextEncoder().encode(opts.secret) : undefined;
  if (!secret && !opts.jwks && !opts.jwksUrl) {
    throw new Error('authentication needs CTRLPLANE_JWT_SECRET (HS256) or CTRLPLANE_JWKS_URL');
  }
  const jwks = opts.jwks ?? (opts.jwksUrl ? createRemoteJWKSet(new URL(opts.jwksUrl)) : undefined);
  if (jwks && (!opts.issuer || !opts.audience)) {
    throw new Error('authentication with a JWKS needs CTRLPLANE_JWT_ISSUER and CTRLPLANE_JWT_AUDIENCE');
  }
  const claimChecks = {
    requiredClaims: REQUIRED_CLAIMS,
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
      // Only a token whose signature verified gets here: saying which claim is wrong helps its issuer.
      if (err instanceof joseErrors.JWTClaimValidationFailed) throw claimRefusal(err);
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
    if (header === undefined && opts.streamTicket?.presented(req)) {
      const caller = await opts.streamTicket.redeem(req);
      if (!caller) {
        throw new CtrlplaneError(
          'unauthorized',
          'the stream ticket is not valid: it expired, was used already, or is for another instance',
        );
      }
      req.caller = caller;
      next();
      return;
    }
    const token = header === undefined ? undefined : /^Bearer\s+(\S+)$/i.exec(header)?.[1];
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

function claimRefusal(err: InstanceType<typeof joseErrors.JWTClaimValidationFailed>): CtrlplaneError {
  const claim = err.claim;
  if (err.reason === 'missing') {
    const why = claim === 'exp' ? ': tokens must expire' : '';
    return new CtrlplaneError('unauthorized', `the token has no ${claim} claim${why}`);
  }
  if (claim === 'iss' || claim === 'aud') {
    return new CtrlplaneError('unauthorized', `the token's ${claim} claim is not the one this API accepts`);
  }
  return new CtrlplaneError('unauthorized', `the token's ${claim} claim is not valid`);
}

export function callerOf(req: Request): Caller {
  if (!req.caller) throw new CtrlplaneError('unauthorized', 'not authenticated');
  return req.caller;
}
