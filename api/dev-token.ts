import { SignJWT } from 'jose';
import { JWT_ALGORITHM } from './auth.ts';

export interface TokenClaims {
  sub: string;
  tenant_id: string;
  roles?: string[];
}

/** Signs a token the API accepts: for the dev stack's printed token and for tests. */
export async function issueToken(secret: string, claims: TokenClaims, expiresIn = '12h'): Promise<string> {
  return new SignJWT({ tenant_id: claims.tenant_id, roles: claims.roles ?? [] })
    .setProtectedHeader({ alg: JWT_ALGORITHM })
    .setSubject(claims.sub)
    .setIssuedAt()
    .setExpirationTime(expiresIn)
    .sign(new TextEncoder().encode(secret));
}
