import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import express from 'express';
import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { authenticate, callerOf } from '../api/auth.ts';
import { issueToken } from '../api/dev-token.ts';
import { errorHandler } from '../api/error-handler.ts';
import { createLogger } from '../config/logger.ts';

// The authentication middleware alone, on a loopback Express app: no other service is involved.
describe('authentication without a well-known secret', () => {
  it('refuses to start with neither an HS256 secret nor a JWKS', () => {
    assert.throws(() => authenticate({}), /CTRLPLANE_JWT_SECRET .* or CTRLPLANE_JWKS_URL/);
  });

  it('refuses to start with a JWKS but without the issuer and audience its tokens must carry', async () => {
    const { publicKey } = await generateKeyPair('ES256');
    const jwks = createLocalJWKSet({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' }] });
    for (const options of [
      { jwks },
      { jwks, issuer: 'https://idp.test/' },
      { jwks, audience: 'ctrlplane' },
    ]) {
      assert.throws(() => authenticate(options), /needs CTRLPLANE_JWT_ISSUER and CTRLPLANE_JWT_AUDIENCE/);
    }
  });

  it('refuses HS256 tokens when only a JWKS is configured, whatever secret they were signed with', async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const jwks = createLocalJWKSet({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' }] });
    const app = express();
    app.use(authenticate({ jwks, issuer: 'https://idp.test/', audience: 'ctrlplane' }));
    app.get('/whoami', (req, res) => {
      res.json(callerOf(req));
    });
    app.use(errorHandler(createLogger('test', 'silent')));
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/whoami`;
    try {
      const asymmetric = await new SignJWT({ tenant_id: 'ten_a', iss: 'https://idp.test/', aud: 'ctrlplane' })
        .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
        .setSubject('alice')
        .setExpirationTime('5m')
        .sign(privateKey);
      const ok = await fetch(url, { headers: { authorization: `Bearer ${asymmetric}` } });
      assert.equal(ok.status, 200);
      assert.equal(((await ok.json()) as { tenant_id: string }).tenant_id, 'ten_a');

      for (const secret of ['ctrlplane-dev-secret-change-me', 'any-secret-at-all-0123']) {
        const forged = await issueToken(
          secret,
          { sub: 'mallory', tenant_id: 'ten_a', roles: ['operator'] },
          '5m',
          {
            issuer: 'https://idp.test/',
            audience: 'ctrlplane',
          },
        );
        const refused = await fetch(url, { headers: { authorization: `Bearer ${forged}` } });
        assert.equal(refused.status, 401, `HS256 signed with ${secret}`);
      }
    } finally {
      server.close();
    }
  });
});
