/** Merge semantics of the fake Kubernetes API: JSON merge patch (RFC 7386) and an approximation of server-side apply. */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export function isObject(value: unknown): value is JsonObject {
  return !!value && typeof value === 'object' && !Array.isArray(value);
}

export function clone<T>(value: T): T {
  return structuredClone(value);
}

export function deepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** RFC 7386: objects merge recursively, `null` deletes, everything else (lists too) replaces. */
export function mergePatch(target: Json | undefined, patch: Json): Json {
  if (!isObject(patch)) return clone(patch);
  const out: JsonObject = isObject(target) ? clone(target) : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else out[key] = mergePatch(out[key], value);
  }
  return out;
}

/** Objects merge recursively; lists and scalars of `applied` replace. */
function overlay(target: Json | undefined, applied: Json): Json {
  if (!isObject(applied) || !isObject(target)) return clone(applied);
  const out: JsonObject = clone(target);
  for (const [key, value] of Object.entries(applied)) out[key] = overlay(out[key], value);
  return out;
}

/**
 * Removes from `live` the fields the manager applied last time (`previous`) and no longer applies (`next`), as
 * server-side apply does for fields a manager owns alone. Ownership is approximated: a field still holding the
 * value the manager set is taken to be its own; one another writer changed since is left alone.
 */
function dropReleased(live: JsonObject, previous: JsonObject, next: JsonObject): void {
  for (const [key, before] of Object.entries(previous)) {
    if (!(key in next)) {
      if (deepEqual(live[key], before)) delete live[key];
      continue;
    }
    const liveValue = live[key];
    const nextValue = next[key];
    if (isObject(before) && isObject(nextValue) && isObject(liveValue))
      dropReleased(liveValue, before, nextValue);
  }
}

/**
 * Server-side apply for one field manager, approximately: fields the manager stopped applying are removed, then
 * the applied configuration is overlaid (maps merge; lists are atomic and replaced whole). Conflicts between
 * managers are not modelled (the provider always applies with force=true).
 */
export function serverSideApply(
  live: JsonObject,
  previous: JsonObject | undefined,
  applied: JsonObject,
): JsonObject {
  const base = clone(live);
  if (previous) dropReleased(base, previous, applied);
  return overlay(base, applied) as JsonObject;
}
