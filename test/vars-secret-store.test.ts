import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadConfig } from '../config/env.ts';
import { PermanentProviderError } from '../providers/provider.ts';
import { decodeEnvPart, encodeEnvPart, secretEnvName } from '../providers/secret-env-name.ts';
import {
  EnvSecretStore,
  FileSecretStore,
  resolveSecretBindings,
  SecretNotFoundError,
  secretStoreFor,
  tenantDirectory,
} from '../providers/secret-store.ts';

/** Secret stores for secret variables (env and directory): a key only ever reaches the lookup's tenant's secrets. */

const binding = { var_name: 'db-password', env_key: 'DB_PASSWORD', ref: 'db/password' };
const acme = { tenant_id: 'acme' };

async function notFound(p: Promise<unknown>, message?: RegExp): Promise<SecretNotFoundError> {
  let caught: unknown;
  try {
    await p;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof SecretNotFoundError, `expected SecretNotFoundError, got ${String(caught)}`);
  assert.ok(caught instanceof PermanentProviderError, 'non-retryable in activities');
  if (message) assert.match(caught.message, message);
  return caught;
}

describe('EnvSecretStore', () => {
  it("maps tenant acme's db/password to CTRLPLANE_SECRET_ACME__DB__PASSWORD", async () => {
    const store = new EnvSecretStore({ CTRLPLANE_SECRET_ACME__DB__PASSWORD: 's3cret' });
    assert.equal(store.envName('db/password', acme), 'CTRLPLANE_SECRET_ACME__DB__PASSWORD');
    assert.equal(store.envName('my-app/api.key', acme), 'CTRLPLANE_SECRET_ACME__MY_2DAPP__API_2EKEY');
    assert.equal(
      store.envName('db/password', { tenant_id: 'ten_1' }),
      'CTRLPLANE_SECRET_TEN_5F1__DB__PASSWORD',
    );
    assert.equal(await store.resolve('db/password', acme), 's3cret');
  });

  it('does not give tenant acme the secret of tenant acme-labs through the key labs/db/password', async () => {
    const victim = { tenant_id: 'acme-labs' };
    const probe = new EnvSecretStore({});
    const store = new EnvSecretStore({ [probe.envName('db/password', victim)]: 'labs-secret' });
    assert.equal(await store.resolve('db/password', victim), 'labs-secret');
    const err = await notFound(store.resolve('labs/db/password', acme), /is not set/);
    assert.doesNotMatch(err.message, /labs-secret/);
    assert.notEqual(store.envName('labs/db/password', acme), store.envName('db/password', victim));
  });

  it("does not reach another tenant's secret with a key naming that tenant", async () => {
    const victim = { tenant_id: 'othertenant' };
    const probe = new EnvSecretStore({});
    const env = {
      [probe.envName('db/password', victim)]: 'victim-secret',
      // Where a `othertenant/...` key used to lead: the store must not read it for anyone.
      CTRLPLANE_SECRET_OTHERTENANT_DB_PASSWORD: 'victim-secret',
    };
    const store = new EnvSecretStore(env);
    for (const key of ['othertenant/db/password', 'db/password', 'OTHERTENANT/DB/PASSWORD'])
      await notFound(store.resolve(key, { tenant_id: 'attacker' }));
  });

  it('gives every (tenant, key) its own env var: the encoding is one-to-one', () => {
    // Every tenant id and key over a small alphabet of the characters that used to collide.
    const alphabet = ['a', 'A', '-', '_', '.', '1'];
    const words = [''];
    for (let len = 1; len <= 3; len++) {
      for (const w of words.filter((x) => x.length === len - 1)) for (const c of alphabet) words.push(w + c);
    }
    const tenants = words.filter((w) => w !== '');
    const keys = new Set([...tenants.filter((w) => w !== '.' && w !== '..'), 'a/a', 'a/_a', 'a_/a', 'a/A/-']);
    const seen = new Map<string, string>();
    for (const tenant of tenants) {
      for (const key of keys) {
        const name = secretEnvName('P_', tenant, key.split('/'));
        assert.match(name, /^[A-Z0-9_]+$/);
        const other = seen.get(name);
        assert.equal(other, undefined, `${tenant} + ${key} and ${other} share ${name}`);
        seen.set(name, `${tenant} + ${key}`);
      }
      assert.equal(decodeEnvPart(encodeEnvPart(tenant)), tenant);
    }
    assert.equal(encodeEnvPart('ténant/x'), 'T_C3_A9NANT_2FX');
    assert.equal(decodeEnvPart('T_C3_A9NANT_2FX'), 'ténant/x');
    assert.equal(decodeEnvPart('_61'), undefined, 'a second spelling of "a" does not decode');
  });

  it('refuses keys that are not a key of the tenant', async () => {
    const store = new EnvSecretStore({});
    for (const ref of ['', '../x', 'a//b', 'a/./b', '/abs', 'sp ace', 'a/b/', 'env:X', 'a\\b'])
      await notFound(store.resolve(ref, acme), /invalid secret key/);
  });

  it('fails a missing secret with a clear, non-retryable error naming the env var', async () => {
    const store = new EnvSecretStore({ OTHER: 'x' });
    await notFound(store.resolve('db/password', acme), /CTRLPLANE_SECRET_ACME__DB__PASSWORD is not set/);
  });

  it('refuses a lookup without a tenant', async () => {
    const store = new EnvSecretStore({ CTRLPLANE_SECRET_DB: 'v' });
    await notFound(store.resolve('db', { tenant_id: '' }), /names no tenant/);
  });
});

describe('FileSecretStore', () => {
  const root = mkdtempSync(join(tmpdir(), 'ctrlplane-secrets-test-'));
  const dir = join(root, 'secrets');
  mkdirSync(join(dir, 'acme', 'db'), { recursive: true });
  mkdirSync(join(dir, 'other'), { recursive: true });
  mkdirSync(join(dir, 'org%2Fteam'), { recursive: true });
  writeFileSync(join(dir, 'acme', 'db', 'password'), 's3cret\n');
  writeFileSync(join(dir, 'acme', 'plain'), 'no-newline');
  writeFileSync(join(dir, 'other', 'db'), 'other-tenant-secret\n');
  writeFileSync(join(dir, 'org%2Fteam', 'db'), 'org-secret');
  writeFileSync(join(root, 'outside'), 'leak');
  symlinkSync(join(root, 'outside'), join(dir, 'acme', 'escape'));
  symlinkSync(join(dir, 'other', 'db'), join(dir, 'acme', 'to-other'));
  symlinkSync(join(dir, 'acme', 'plain'), join(dir, 'acme', 'inside-link'));
  after(() => rmSync(root, { recursive: true, force: true }));

  it('reads <dir>/<tenant>/<key>, stripping one trailing newline', async () => {
    const store = new FileSecretStore(dir);
    assert.equal(await store.resolve('db/password', acme), 's3cret');
    assert.equal(await store.resolve('plain', acme), 'no-newline');
    assert.equal(await store.resolve('inside-link', acme), 'no-newline');
    assert.equal(await store.resolve('db', { tenant_id: 'org/team' }), 'org-secret');
  });

  it("refuses `..` escapes and symlinks leading out of the tenant's directory", async () => {
    const store = new FileSecretStore(dir);
    const err = await notFound(store.resolve('../other/db', acme), /invalid secret key/);
    assert.doesNotMatch(err.message, /other-tenant-secret/);
    await notFound(store.resolve('db/../../other/db', acme), /invalid secret key/);
    const escaped = await notFound(store.resolve('escape', acme), /outside the tenant's secret directory/);
    assert.doesNotMatch(escaped.message, /leak/);
    await notFound(store.resolve('to-other', acme), /outside the tenant's secret directory/);
    await notFound(store.resolve('db', { tenant_id: '..' }), /no such file/);
  });

  it('gives every tenant id its own directory', () => {
    assert.equal(tenantDirectory('acme'), 'acme');
    assert.equal(tenantDirectory('ten_1.a-b'), 'ten_1.a-b');
    assert.equal(tenantDirectory('org/team'), 'org%2Fteam');
    assert.equal(tenantDirectory('org%2Fteam'), 'org%252Fteam');
    assert.equal(tenantDirectory('..'), '%2E%2E');
    assert.equal(tenantDirectory('.'), '%2E');
    assert.equal(tenantDirectory('é'), '%C3%A9');
  });

  it('fails a missing file or a directory clearly', async () => {
    const store = new FileSecretStore(dir);
    await notFound(store.resolve('db/nope', acme), /not found in dir:.*no such file/);
    await notFound(store.resolve('db', acme), /not a regular file/);
    await notFound(store.resolve('db', { tenant_id: 'nobody' }), /no such file/);
  });

  it('needs an absolute directory', () => {
    assert.throws(() => new FileSecretStore('relative/dir'), /absolute/);
  });
});

describe('the store CTRLPLANE_SECRET_STORE names', () => {
  // As the worker builds it: the configuration parses the variable, the env store reads values from env.
  const secretStoreFromConfig = (env: Record<string, string>) =>
    secretStoreFor(loadConfig(env).CTRLPLANE_SECRET_STORE, env);

  it('defaults to env', () => {
    assert.ok(secretStoreFromConfig({}) instanceof EnvSecretStore);
    assert.ok(secretStoreFromConfig({ CTRLPLANE_SECRET_STORE: 'env' }) instanceof EnvSecretStore);
  });

  it('takes env:<PREFIX> and dir:/path', async () => {
    const env = secretStoreFromConfig({ CTRLPLANE_SECRET_STORE: 'env:APP_', APP_ACME__A__B: 'v' });
    assert.equal(await env.resolve('a/b', acme), 'v');
    const dir = secretStoreFromConfig({ CTRLPLANE_SECRET_STORE: 'dir:/run/secrets' });
    assert.ok(dir instanceof FileSecretStore);
    assert.equal(dir.dir, '/run/secrets');
  });

  it('rejects anything else at start-up, and the per-tenant switch (scoping is always on)', () => {
    assert.throws(
      () => secretStoreFromConfig({ CTRLPLANE_SECRET_STORE: 'vault' }),
      /CTRLPLANE_SECRET_STORE: must be/,
    );
    assert.throws(() => secretStoreFromConfig({ CTRLPLANE_SECRET_STORE: 'dir:relative' }), /absolute/);
    for (const value of ['false', 'true'])
      assert.throws(
        () => secretStoreFromConfig({ CTRLPLANE_SECRET_STORE_PER_TENANT: value }),
        /CTRLPLANE_SECRET_STORE_PER_TENANT: is no longer read: secret keys are always scoped/,
      );
  });
});

describe('resolveSecretBindings', () => {
  it('maps env_key → value', async () => {
    const store = new EnvSecretStore({ CTRLPLANE_SECRET_ACME__DB__PASSWORD: 's3cret' });
    assert.deepEqual(await resolveSecretBindings(store, [binding], acme), { DB_PASSWORD: 's3cret' });
  });

  it('names the variable and ref of a missing secret, never a value', async () => {
    const store = new EnvSecretStore({ CTRLPLANE_SECRET_ACME__DB__PASSWORDX: 'other-value' });
    const err = await notFound(
      resolveSecretBindings(store, [binding], acme),
      /^secret variable "db-password": secret "db\/password" not found/,
    );
    assert.equal(err.variable, 'db-password');
    assert.equal(err.ref, 'db/password');
    assert.equal(err.code, 'invalid_request');
    assert.doesNotMatch(err.message, /other-value/);
  });
});
