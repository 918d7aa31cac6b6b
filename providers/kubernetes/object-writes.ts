import { type KubernetesObject, PatchStrategy } from '@kubernetes/client-node';
import { PermanentProviderError } from '../provider.ts';
import type { KubernetesProviderLogger } from './config.ts';
import { ignoreNotFound, isConflict, isNotFound, kubeError, translateError } from './errors.ts';
import { fromWire, type KubeObjects } from './kube-client.ts';
import type { ManifestRef } from './manifests.ts';
import { FIELD_MANAGER, LABEL } from './names.ts';

/**
 * How the services workload and the source engines write and delete objects: server-side apply (field manager
 * `ctrlplane`, force), so a write retried after a crash converges instead of failing with AlreadyExists; deletes
 * that treat a missing object as done; and the ownership checks that keep one instance off another's objects.
 */

/** Read-modify-write attempts when another writer bumps the resourceVersion in between (409 Conflict). */
const CONFLICT_ATTEMPTS = 5;

/** What names an object for a read or a delete. */
export interface ObjectHeader {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
}

export function header(
  apiVersion: string,
  kind: string,
  namespace: string | undefined,
  name: string,
): ObjectHeader {
  return { apiVersion, kind, metadata: namespace ? { name, namespace } : { name } };
}

export function headerOf(obj: KubernetesObject): ObjectHeader {
  return header(obj.apiVersion ?? '', obj.kind ?? '', obj.metadata?.namespace, obj.metadata?.name ?? '');
}

/** Server-side apply, field manager `ctrlplane`, force: create or converge, never AlreadyExists. */
export async function applyObject<T extends KubernetesObject>(api: KubeObjects, obj: T): Promise<T> {
  try {
    return await api.patch(
      fromWire(obj),
      undefined,
      undefined,
      FIELD_MANAGER,
      true,
      PatchStrategy.ServerSideApply,
    );
  } catch (err) {
    const ns = obj.metadata?.namespace;
    return translateError(err, `${obj.kind} ${ns ? `${ns}/` : ''}${obj.metadata?.name}`);
  }
}

/** Deletes the object; already gone is a success. */
export async function deleteIfPresent(
  api: KubeObjects,
  obj: KubernetesObject,
  propagationPolicy: 'Foreground' | 'Background' = 'Background',
): Promise<void> {
  try {
    await api.delete(obj, undefined, undefined, undefined, undefined, propagationPolicy);
  } catch (err) {
    if (isNotFound(err)) return;
    translateError(err, `delete of ${obj.kind} ${obj.metadata?.name}`);
  }
}

/** Runs a read-modify-write again, with a fresh read, when another writer got in between (409). */
export async function withConflictRetry(
  log: KubernetesProviderLogger,
  fn: () => Promise<void>,
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!isConflict(err) || attempt >= CONFLICT_ATTEMPTS) throw err;
      log.warn({ attempt, err: kubeError(err).message }, 'write conflict, retrying with a fresh read');
    }
  }
}

/**
 * Refuses (invalid_spec) to write over `existing` unless it is the instance's own: it carries another instance's
 * `ctrlplane.io/instance-id`, or (unless `adoptUnlabelled`) no ctrlplane label at all, i.e. an object ctrlplane
 * does not manage.
 */
export function refuseForeignOwner(
  existing: KubernetesObject | undefined,
  wanted: KubernetesObject,
  instanceId: string,
  opts: { adoptUnlabelled: boolean },
): void {
  if (!existing) return;
  const owner = existing.metadata?.labels?.[LABEL.instanceId];
  if (owner === instanceId) return;
  const what = `${wanted.kind} ${wanted.metadata?.namespace ? `${wanted.metadata.namespace}/` : ''}${wanted.metadata?.name}`;
  if (owner !== undefined) {
    throw new PermanentProviderError(
      `${what} already exists and is owned by another instance`,
      'invalid_spec',
    );
  }
  if (opts.adoptUnlabelled) return;
  throw new PermanentProviderError(
    `${what} already exists and is not managed by ctrlplane (owned by another instance or by no one); it is not adopted`,
    'invalid_spec',
  );
}

/**
 * Server-side apply of a tenant's object that must not take over anything: re-read right before, refused when it
 * is not this instance's, and conditional on the version read (a change in between is a 409, retried with a fresh
 * read).
 */
export async function applyOwned(
  api: KubeObjects,
  obj: KubernetesObject,
  instanceId: string,
  log: KubernetesProviderLogger,
): Promise<void> {
  await withConflictRetry(log, async () => {
    const existing = await ignoreNotFound(api.read(headerOf(obj)));
    refuseForeignOwner(existing, obj, instanceId, { adoptUnlabelled: false });
    const rv = existing?.metadata?.resourceVersion;
    await applyObject(api, rv ? { ...obj, metadata: { ...obj.metadata, resourceVersion: rv } } : obj);
  });
}

/**
 * Deletes a recorded object if it is still this instance's (a record is only a list of names: an object that now
 * carries another instance's label, or none, is left alone). True when it was deleted.
 */
export async function deleteOwnedRef(
  api: KubeObjects,
  ref: ManifestRef,
  instanceId: string,
  log: KubernetesProviderLogger,
): Promise<boolean> {
  api.remember(ref.apiVersion, ref.kind, { plural: ref.resource, namespaced: ref.namespaced });
  const target = header(ref.apiVersion, ref.kind, ref.namespace, ref.name);
  const live = await ignoreNotFound(api.read(target));
  if (!live) return false;
  if (live.metadata?.labels?.[LABEL.instanceId] !== instanceId) {
    log.warn(
      { instance_id: instanceId, kind: ref.kind, namespace: ref.namespace, name: ref.name },
      'recorded object is not this instance’s any more; left alone',
    );
    return false;
  }
  await deleteIfPresent(api, target);
  return true;
}
