import { createHash } from 'node:crypto';

/** Bump when the container config changes shape in a way that should replace existing containers. */
const HASH_VERSION = 'v2';

/** JSON with object keys sorted at every level, so equal values always serialise equally. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = sortKeys(v);
    }
    return out;
  }
  return value;
}

/**
 * sha256 (hex) of what shapes a container and cannot be changed in place (see buildContainerConfig): the create
 * config without its CPU/memory limits, the network, the labels and the config files' digests. Stored as the
 * `ctrlplane.spec-hash` label; an existing container whose label equals the hash of the new spec is adopted
 * (and its limits updated in place) instead of being recreated.
 */
export function specHash(containerConfig: unknown): string {
  return createHash('sha256')
    .update(HASH_VERSION + '\n' + canonicalJson(containerConfig))
    .digest('hex');
}
