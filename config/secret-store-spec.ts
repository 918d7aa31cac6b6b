import { isAbsolute } from 'node:path';

/** Where the worker reads secret variables' values (providers/secret-store.ts builds the store). */
export type SecretStoreSpec =
  /** One environment variable of the worker per (tenant, key), named `<prefix><TENANT>__<KEY…>`. */
  | { kind: 'env'; prefix: string }
  /** One file per (tenant, key) under `dir`: `<dir>/<tenant>/<key>`. */
  | { kind: 'dir'; dir: string };

export const DEFAULT_SECRET_ENV_PREFIX = 'CTRLPLANE_SECRET_';

/** `env`, `env:<PREFIX>` or `dir:/absolute/path`; blank is `env`. */
export function parseSecretStoreSpec(raw: string | undefined): SecretStoreSpec | { problem: string } {
  const spec = (raw ?? '').trim() || 'env';
  if (spec === 'env') return { kind: 'env', prefix: DEFAULT_SECRET_ENV_PREFIX };
  if (spec.startsWith('env:')) {
    const prefix = spec.slice('env:'.length);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(prefix)) {
      return { problem: `${JSON.stringify(prefix)} is not a valid env var prefix` };
    }
    return { kind: 'env', prefix };
  }
  if (spec.startsWith('dir:')) {
    const dir = spec.slice('dir:'.length);
    if (!isAbsolute(dir)) return { problem: `dir:${dir} must be an absolute path` };
    return { kind: 'dir', dir };
  }
  return { problem: `must be env, env:<PREFIX> or dir:/absolute/path, not ${JSON.stringify(spec)}` };
}
