import { readFile, realpath, stat } from 'node:fs/promises';
import { isAbsolute, join, sep } from 'node:path';
import { ConfigError } from '../config/config-error.ts';
import type { SecretBinding } from '../domain/sources/variables.ts';
import { PermanentProviderError } from './provider.ts';

/**
 * Secret stores: where the provision activity (and nothing else) reads the values of secret variables.
 * Errors name the reference and the variable, never a value.
 *
 * Configuration (`secretStoreFromConfig`), env var CTRLPLANE_SECRET_STORE:
 *   `env` (default)      ref `tenant/db/password` → env var CTRLPLANE_SECRET_TENANT_DB_PASSWORD
 *   `env:<PREFIX>`       the same with another prefix, e.g. `env:MYAPP_SECRET_`
 *   `dir:/abs/path`      ref `tenant/db/password` → the file /abs/path/tenant/db/password (one trailing newline
 *                        stripped; a Docker or Kubernetes secret mount works as is)
 * CTRLPLANE_SECRET_STORE_PER_TENANT=true puts the caller's tenant first: env CTRLPLANE_SECRET_<TENANT>_<REF>,
 * file <dir>/<tenant>/<ref>. Without it every tenant can name every ref the store holds.
 */

export interface SecretLookup {
  /** The instance's tenant; used by per-tenant stores. */
  tenant_id?: string;
  signal?: AbortSignal;
}

export interface SecretStore {
  /** e.g. `env` or `dir:/run/secrets`, for messages. */
  readonly description: string;
  /** The value of `ref`; a SecretNotFoundError when the store does not hold it. */
  resolve(ref: string, lookup?: SecretLookup): Promise<string>;
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

/** A ref: segments of letters, digits, `.`, `_`, `-` separated by `/`; no empty, `.` or `..` segment. */
const REF_SEGMENT = /^[A-Za-z0-9._-]+$/;
const MAX_REF_LENGTH = 512;
const MAX_SECRET_BYTES = 1024 * 1024;

export function refSegments(ref: string): string[] {
  const segments = ref.split('/');
  const ok =
    ref.length > 0 &&
    ref.length <= MAX_REF_LENGTH &&
    segments.every((s) => REF_SEGMENT.test(s) && s !== '.' && s !== '..');
  if (!ok) {
    throw new SecretNotFoundError(
      `invalid secret reference ${JSON.stringify(ref)}: use segments of letters, digits, ".", "_" and "-" separated by "/" (no "..")`,
      ref,
    );
  }
  return segments;
}

function envPart(text: string): string {
  return text.toUpperCase().replace(/[^A-Z0-9]/g, '_');
}

function requireTenant(ref: string, lookup: SecretLookup | undefined): string {
  const tenant = lookup?.tenant_id;
  if (!tenant || !REF_SEGMENT.test(tenant) || tenant === '.' || tenant === '..') {
    throw new SecretNotFoundError(
      `secret ${JSON.stringify(ref)}: a per-tenant secret store needs the tenant`,
      ref,
    );
  }
  return tenant;
}

/** Secrets in environment variables of the worker: `<prefix><REF upper-cased, non-alphanumerics → _>`. */
export class EnvSecretStore implements SecretStore {
  readonly description: string;

  constructor(
    private readonly env: Readonly<Record<string, string | undefined>> = process.env,
    private readonly options: { prefix?: string; perTenant?: boolean } = {},
  ) {
    this.description = `env (${this.prefix}…)`;
  }

  private get prefix(): string {
    return this.options.prefix ?? 'CTRLPLANE_SECRET_';
  }

  /** The env var holding `ref` (two refs differing only in punctuation share one; avoid that). */
  envName(ref: string, lookup?: SecretLookup): string {
    const segments = refSegments(ref);
    const tenant = this.options.perTenant ? `${envPart(requireTenant(ref, lookup))}_` : '';
    return `${this.prefix}${tenant}${envPart(segments.join('/'))}`;
  }

  async resolve(ref: string, lookup?: SecretLookup): Promise<string> {
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

  constructor(
    readonly dir: string,
    private readonly options: { perTenant?: boolean } = {},
  ) {
    if (!isAbsolute(dir))
      throw new Error(`the secret directory must be an absolute path, not ${JSON.stringify(dir)}`);
    this.description = `dir:${dir}`;
  }

  /** The file of `ref` (before symlinks are followed). */
  pathOf(ref: string, lookup?: SecretLookup): string {
    const segments = refSegments(ref);
    const tenant = this.options.perTenant ? [requireTenant(ref, lookup)] : [];
    return join(this.dir, ...tenant, ...segments);
  }

  async resolve(ref: string, lookup?: SecretLookup): Promise<string> {
    const path = this.pathOf(ref, lookup);
    const notFound = (why: string) =>
      new SecretNotFoundError(`secret ${JSON.stringify(ref)} not found in ${this.description}: ${why}`, ref);
    let base: string;
    let real: string;
    try {
      base = await realpath(this.dir);
      real = await realpath(path);
    } catch (err) {
      if (isMissing(err)) throw notFound('no such file');
      throw err;
    }
    if (!real.startsWith(base + sep)) throw notFound('the reference leads outside the secret directory');
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

/** The store CTRLPLANE_SECRET_STORE (and CTRLPLANE_SECRET_STORE_PER_TENANT) name; a bad value throws at start-up. */
export function secretStoreFromConfig(
  env: Readonly<Record<string, string | undefined>> = process.env,
): SecretStore {
  const spec = (env.CTRLPLANE_SECRET_STORE ?? '').trim() || 'env';
  const perTenantRaw = (env.CTRLPLANE_SECRET_STORE_PER_TENANT ?? '').trim().toLowerCase();
  if (!['', 'true', 'false', '1', '0'].includes(perTenantRaw)) {
    throw ConfigError.of(
      'CTRLPLANE_SECRET_STORE_PER_TENANT',
      `must be true or false, not ${JSON.stringify(perTenantRaw)}`,
    );
  }
  const perTenant = perTenantRaw === 'true' || perTenantRaw === '1';
  if (spec === 'env') return new EnvSecretStore(env, { perTenant });
  if (spec.startsWith('env:')) {
    const prefix = spec.slice('env:'.length);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(prefix)) {
      throw ConfigError.of(
        'CTRLPLANE_SECRET_STORE',
        `${JSON.stringify(prefix)} is not a valid env var prefix`,
      );
    }
    return new EnvSecretStore(env, { prefix, perTenant });
  }
  if (spec.startsWith('dir:')) {
    const dir = spec.slice('dir:'.length);
    if (!isAbsolute(dir))
      throw ConfigError.of('CTRLPLANE_SECRET_STORE', `dir:${dir} must be an absolute path`);
    return new FileSecretStore(dir, { perTenant });
  }
  throw ConfigError.of(
    'CTRLPLANE_SECRET_STORE',
    `must be env, env:<PREFIX> or dir:/absolute/path, not ${JSON.stringify(spec)}`,
  );
}

/**
 * Resolves every binding into env_key → value. A missing secret is a SecretNotFoundError (non-retryable) naming
 * the variable and its ref. The result holds secret values: pass it to the provider and nowhere else.
 */
export async function resolveSecretBindings(
  store: SecretStore,
  bindings: readonly SecretBinding[],
  lookup: SecretLookup = {},
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
