import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { PermanentProviderError } from '../providers/provider.ts';
import {
  EnvSecretStore,
  FileSecretStore,
  resolveSecretBindings,
  SecretNotFoundError,
  secretStoreFromConfig,
} from '../providers/secret-store.ts';

/** Secret stores for secret variables (env and directory), and resolving bindings with them. */

const binding = { var_name: 'db-password', env_key: 'DB_PASSWORD', ref: 'tenant/db/password' };

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
  it('maps tenant/db/password to CTRLPLANE_SECRET_TENANT_DB_PASSWORD', async () => {
    const store = new EnvSecretStore({ CTRLPLANE_SECRET_TENANT_DB_PASSWORD: 's3cret' });
    assert.equal(store.envName('tenant/db/password'), 'CTRLPLANE_SECRET_TENANT_DB_PASSWORD');
    assert.equal(store.envName('my-app/api.key'), 'CTRLPLANE_SECRET_MY_APP_API_KEY');
    assert.equal(await store.resolve('tenant/db/password'), 's3cret');
  });

  it('fails a missing secret with a clear, non-retryable error naming the env var', async () => {
    const store = new EnvSecretStore({ OTHER: 'x' });
    await notFound(store.resolve('tenant/db/password'), /CTRLPLANE_SECRET_TENANT_DB_PASSWORD is not set/);
  });

  it('refuses malformed refs', async () => {
    const store = new EnvSecretStore({});
    for (const ref of ['', '../x', 'a//b', 'a/./b', '/abs', 'sp ace', 'a/b/'])
      await notFound(store.resolve(ref), /invalid secret reference/);
  });

  it('puts the tenant first when per-tenant', async () => {
    const store = new EnvSecretStore({ CTRLPLANE_SECRET_TNT_1_DB: 'v' }, { perTenant: true });
    assert.equal(await store.resolve('db', { tenant_id: 'tnt_1' }), 'v');
    await notFound(store.resolve('db', { tenant_id: 'tnt_2' }));
    await notFound(store.resolve('db'), /needs the tenant/);
  });
});

describe('FileSecretStore', () => {
  const root = mkdtempSync(join(tmpdir(), 'ctrlplane-secrets-test-'));
  const dir = join(root, 'secrets');
  mkdirSync(join(dir, 'tenant', 'db'), { recursive: true });
  mkdirSync(join(dir, 'tnt_1'), { recursive: true });
  writeFileSync(join(dir, 'tenant', 'db', 'password'), 's3cret\n');
  writeFileSync(join(dir, 'plain'), 'no-newline');
  writeFileSync(join(dir, 'tnt_1', 'db'), 'per-tenant\n');
  writeFileSync(join(root, 'outside'), 'leak');
  symlinkSync(join(root, 'outside'), join(dir, 'escape'));
  symlinkSync(join(dir, 'plain'), join(dir, 'inside-link'));
  after(() => rmSync(root, { recursive: true, force: true }));

  it('reads <dir>/<ref>, stripping one trailing newline', async () => {
    const store = new FileSecretStore(dir);
    assert.equal(await store.resolve('tenant/db/password'), 's3cret');
    assert.equal(await store.resolve('plain'), 'no-newline');
    assert.equal(await store.resolve('inside-link'), 'no-newline');
  });

  it('refuses `..` escapes and symlinks leading outside', async () => {
    const store = new FileSecretStore(dir);
    const err = await notFound(store.resolve('../outside'), /invalid secret reference/);
    assert.doesNotMatch(err.message, /leak/);
    await notFound(store.resolve('tenant/../../outside'), /invalid secret reference/);
    const escaped = await notFound(store.resolve('escape'), /outside the secret directory/);
    assert.doesNotMatch(escaped.message, /leak/);
  });

  it('fails a missing file or a directory clearly', async () => {
    const store = new FileSecretStore(dir);
    await notFound(store.resolve('tenant/db/nope'), /not found in dir:.*no such file/);
    await notFound(store.resolve('tenant/db'), /not a regular file/);
  });

  it('scopes by tenant when per-tenant', async () => {
    const store = new FileSecretStore(dir, { perTenant: true });
    assert.equal(await store.resolve('db', { tenant_id: 'tnt_1' }), 'per-tenant');
    await notFound(store.resolve('db', { tenant_id: '..' }), /needs the tenant/);
  });

  it('needs an absolute directory', () => {
    assert.throws(() => new FileSecretStore('relative/dir'), /absolute/);
  });
});

describe('secretStoreFromConfig (CTRLPLANE_SECRET_STORE)', () => {
  it('defaults to env', () => {
    assert.ok(secretStoreFromConfig({}) instanceof EnvSecretStore);
    assert.ok(secretStoreFromConfig({ CTRLPLANE_SECRET_STORE: 'env' }) instanceof EnvSecretStore);
  });

  it('takes env:<PREFIX> and dir:/path', async () => {
    const env = secretStoreFromConfig({ CTRLPLANE_SECRET_STORE: 'env:APP_', APP_A_B: 'v' });
    assert.equal(await env.resolve('a/b'), 'v');
    const dir = secretStoreFromConfig({ CTRLPLANE_SECRET_STORE: 'dir:/run/secrets' });
    assert.ok(dir instanceof FileSecretStore);
    assert.equal(dir.dir, '/run/secrets');
  });

  it('rejects anything else at start-up', () => {
    assert.throws(
      () => secretStoreFromConfig({ CTRLPLANE_SECRET_STORE: 'vault' }),
      /CTRLPLANE_SECRET_STORE: must be/,
    );
    assert.throws(() => secretStoreFromConfig({ CTRLPLANE_SECRET_STORE: 'dir:relative' }), /absolute/);
    assert.throws(() => secretStoreFromConfig({ CTRLPLANE_SECRET_STORE_PER_TENANT: 'maybe' }), /PER_TENANT/);
  });
});

describe('resolveSecretBindings', () => {
  it('maps env_key → value', async () => {
    const store = new EnvSecretStore({ CTRLPLANE_SECRET_TENANT_DB_PASSWORD: 's3cret' });
    assert.deepEqual(await resolveSecretBindings(store, [binding]), { DB_PASSWORD: 's3cret' });
  });

  it('names the variable and ref of a missing secret, never a value', async () => {
    const store = new EnvSecretStore({ CTRLPLANE_SECRET_TENANT_DB_PASSWORDX: 'other-value' });
    const err = await notFound(
      resolveSecretBindings(store, [binding]),
      /^secret variable "db-password": secret "tenant\/db\/password" not found/,
    );
    assert.equal(err.variable, 'db-password');
    assert.equal(err.ref, 'tenant/db/password');
    assert.equal(err.code, 'invalid_request');
    assert.doesNotMatch(err.message, /other-value/);
  });
});
