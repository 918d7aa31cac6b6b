import { createHmac, randomBytes } from 'node:crypto';

/**
 * Bump when the container config changes shape in a way that should replace existing containers. v3: an HMAC
 * (v2 was a plain sha256), and every container gets a pids limit, no-new-privileges and log rotation.
 */
const HASH_VERSION = 'v3';

/** The per-install key of the spec hash (CTRLPLANE_SPEC_HASH_KEY). */
export type SpecHashKey = string & { readonly __brand: 'SpecHashKey' };

export function specHashKey(key: string): SpecHashKey {
  if (key.length < 32) throw new Error('the spec hash key must be at least 32 characters');
  return key as SpecHashKey;
}

/**
 * A random key for one process: for a provider built without one (tests, the API, which makes no containers).
 * Containers it labels are not adopted by a process with another key, only replaced.
 */
export function ephemeralSpecHashKey(): SpecHashKey {
  return randomBytes(32).toString('hex') as SpecHashKey;
}

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
 * HMAC-SHA256 (hex), keyed with the install's key, of what shapes a container and cannot be changed in place
 * (see buildContainerConfig): the create config without its CPU/memory limits, the network, the labels and the
 * config files' digests. Stored as the `ctrlplane.spec-hash` label; an existing container whose label equals the
 * hash of the new spec is adopted (and its limits updated in place) instead of being recreated. The config holds
 * the env, resolved secrets included: without the key, the label cannot be used to test guesses of them.
 */
export function specHash(key: SpecHashKey, containerConfig: unknown): string {
  return createHmac('sha256', key)
    .update(HASH_VERSION + '\n' + canonicalJson(containerConfig))
    .digest('hex');
}
