import { readFile, realpath, stat } from 'node:fs/promises';
import { isAbsolute, join, sep } from 'node:path';
import type { SecretStoreSpec } from '../config/secret-store-spec.ts';
import { SECRET_KEY_RULE, secretKeySegments } from '../domain/sources/secret-key.ts';
import type { SecretBinding } from '../domain/sources/variables.ts';
import { PermanentProviderError } from './provider.ts';
import { secretEnvName } from './secret-env-name.ts';

/**
 * Secret stores: where the provider activities (and nothing else) read the values of secret variables.
 * Errors name the reference and the variable, never a value.
 *
 * A key is always one of the instance's tenant's secrets: every store puts the tenant in front of it, so no key
 * reaches another tenant's secrets, whatever it spells (domain/sources/secret-key.ts says what a key is).
 *
 * Configuration: CTRLPLANE_SECRET_STORE (config/secret-store-spec.ts parses it; secretStoreFor builds the store):
 *   `env` (default)      tenant `acme`, key `db/password` → env var CTRLPLANE_SECRET_ACME__DB__PASSWORD
 *                        (the one-to-one encoding of secret-env-name.ts)
 *   `env:<PREFIX>`       the same with another prefix, e.g. `env:MYAPP_SECRET_`
 *   `dir:/abs/path`      tenant `acme`, key `db/password` → the file /abs/path/acme/db/password (one trailing
 *                        newline stripped; a Docker or Kubernetes secret mount works as is); a tenant id with
 *                        characters other than A-Z a-z 0-9 . _ - has them percent-encoded (tenantDirectory)
 */

export interface SecretLookup {
  /** The instance's tenant: the only tenant whose secrets the lookup can reach. */
  tenant_id: string;
  signal?: AbortSignal;
}

export interface SecretStore {
  /** e.g. `env` or `dir:/run/secrets`, for messages. */
  readonly description: string;
  /** The value of the tenant's secret `ref`; a SecretNotFoundError when the store does not hold it. */
  resolve(ref: string, lookup: SecretLookup): Promise<string>;
}

/** A secret that is absent (or a reference the store refuses): permanent, no retry will find it. */
export class SecretNotFoundError extends PermanentProviderError {
  constructor(
    message: string,
    readonly ref: string,
    readonly variable?: string,
  ) {
    super(message, 'invalid_request');
  }
}

const MAX_SECRET_BYTES = 1024 * 1024;

/** The key's segments; a key that is not one of the tenant's (see secret-key.ts) is refused, never resolved. */
export function refSegments(ref: string): string[] {
  const key = secretKeySegments(ref);
  if ('problem' in key) {
    throw new SecretNotFoundError(
      `invalid secret key ${JSON.stringify(ref)}: ${key.problem}; ${SECRET_KEY_RULE}`,
      ref,
    );
  }
  return key.segments;
}

function requireTenant(ref: string, lookup: SecretLookup | undefined): string {
  const tenant = lookup?.tenant_id;
  if (typeof tenant !== 'string' || tenant === '') {
    throw new SecretNotFoundError(`secret ${JSON.stringify(ref)}: the lookup names no tenant`, ref);
  }
  return tenant;
}

const DIRECTORY_SAFE = /^[A-Za-z0-9._-]$/;

/**
 * A tenant's directory in a `dir:` store: the tenant id itself when it is made of A-Z a-z 0-9 . _ - (and is not
 * `.` or `..`), else the id with every other byte, and then its dots, as `%XX`. `%` is always encoded, so two
 * tenants never share a directory.
 */
export function tenantDirectory(tenantId: string): string {
  let out = '';
  for (const byte of Buffer.from(tenantId, 'utf8')) {
    const char = String.fromCharCode(byte);
    out +=
      byte < 0x80 && DIRECTORY_SAFE.test(char)
        ? char
        : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out === '.' || out === '..' ? out.replaceAll('.', '%2E') : out;
}

/** Secrets in environment variables of the worker: `<prefix><REF upper-cased, non-alphanumerics → _>`. */
export class EnvSecretStore implements SecretStore {
  readonly description: string;

  constructor(
    private readonly env: Readonly<Record<string, string | undefined>>,
    private readonly options: { prefix?: string } = {},
  ) {
    this.description = `env (${this.prefix}…)`;
  }

  private get prefix(): string {
    return this.options.prefix ?? 'CTRLPLANE_SECRET_';
  }

  /** The env var holding the tenant's secret `ref`: one per (tenant, key), see secret-env-name.ts. */
  envName(ref: string, lookup: SecretLookup): string {
    const segments = refSegments(ref);
    return secretEnvName(this.prefix, requireTenant(ref, lookup), segments);
  }

  async resolve(ref: string, lookup: SecretLookup): Promise<string> {
    const name = this.envName(ref, lookup);
    const value = this.env[name];
    if (value === undefined) {
      throw new SecretNotFoundError(
        `secret ${JSON.stringify(ref)} not found: the env var ${name} is not set`,
        ref,
      );
    }
    return value;
  }
}

/** Secrets as files under a directory (`<dir>/<ref>`); refs cannot leave it, through `..` or a symlink. */
export class FileSecretStore implements SecretStore {
  readonly description: string;

  constructor(readonly dir: string) {
    if (!isAbsolute(dir))
      throw new Error(`the secret directory must be an absolute path, not ${JSON.stringify(dir)}`);
    this.description = `dir:${dir}`;
  }

  /** The tenant's directory, which its keys cannot leave. */
  tenantDir(lookup: SecretLookup, ref = ''): string {
    return join(this.dir, tenantDirectory(requireTenant(ref, lookup)));
  }

  /** The file of the tenant's secret `ref` (before symlinks are followed). */
  pathOf(ref: string, lookup: SecretLookup): string {
    const segments = refSegments(ref);
    return join(this.tenantDir(lookup, ref), ...segments);
  }

  async resolve(ref: string, lookup: SecretLookup): Promise<string> {
    const path = this.pathOf(ref, lookup);
    const notFound = (why: string) =>
      new SecretNotFoundError(`secret ${JSON.stringify(ref)} not found in ${this.description}: ${why}`, ref);
    let base: string;
    let real: string;
    try {
      base = await realpath(this.tenantDir(lookup, ref));
      real = await realpath(path);
    } catch (err) {
      if (isMissing(err)) throw notFound('no such file');
      throw err;
    }
    // A symlink may not lead out of the tenant's directory (into another tenant's, or anywhere else).
    if (!real.startsWith(base + sep)) throw notFound("the key leads outside the tenant's secret directory");
    const info = await stat(real);
    if (!info.isFile()) throw notFound('not a regular file');
    if (info.size > MAX_SECRET_BYTES) throw notFound(`larger than ${MAX_SECRET_BYTES} bytes`);
    const text = await readFile(real, {
      encoding: 'utf8',
      ...(lookup?.signal ? { signal: lookup.signal } : {}),
    });
    return text.replace(/\r?\n$/, '');
  }
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP';
}

/** The store CTRLPLANE_SECRET_STORE names; an `env` store reads the secrets' values from `env`. */
export function secretStoreFor(
  spec: SecretStoreSpec,
  env: Readonly<Record<string, string | undefined>>,
): SecretStore {
  return spec.kind === 'env'
    ? new EnvSecretStore(env, { prefix: spec.prefix })
    : new FileSecretStore(spec.dir);
}

/**
 * Resolves every binding into env_key → value. A missing secret is a SecretNotFoundError (non-retryable) naming
 * the variable and its ref. The result holds secret values: pass it to the provider and nowhere else.
 */
export async function resolveSecretBindings(
  store: SecretStore,
  bindings: readonly SecretBinding[],
  lookup: SecretLookup,
): Promise<Record<string, string>> {
  const values: Record<string, string> = {};
  for (const binding of bindings) {
    try {
      values[binding.env_key] = await store.resolve(binding.ref, lookup);
    } catch (err) {
      if (err instanceof SecretNotFoundError) {
        throw new SecretNotFoundError(
          `secret variable ${JSON.stringify(binding.var_name)}: ${err.message}`,
          binding.ref,
          binding.var_name,
        );
      }
      throw err;
    }
  }
  return values;
}
