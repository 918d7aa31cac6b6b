import { SignJWT } from 'jose';
import { JWT_ALGORITHM } from './auth.ts';

export interface TokenClaims {
  sub: string;
  tenant_id: string;
  roles?: string[];
}

/** The `iss` and `aud` an API configured with CTRLPLANE_JWT_ISSUER / CTRLPLANE_JWT_AUDIENCE requires. */
export interface TokenAudience {
  issuer?: string;
  audience?: string;
}

/** Signs a token the API accepts: for the dev stack's printed tokens and for tests. */
export async function issueToken(
  secret: string,
  claims: TokenClaims,
  expiresIn = '12h',
  { issuer, audience }: TokenAudience = {},
): Promise<string> {
  const jwt = new SignJWT({ tenant_id: claims.tenant_id, roles: claims.roles ?? [] })
    .setProtectedHeader({ alg: JWT_ALGORITHM })
    .setSubject(claims.sub)
    .setIssuedAt()
    .setExpirationTime(expiresIn);
  if (issuer) jwt.setIssuer(issuer);
  if (audience) jwt.setAudience(audience);
  return jwt.sign(new TextEncoder().encode(secret));
}
