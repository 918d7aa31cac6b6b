import type { KubernetesObject } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { PermanentProviderError } from '../provider.ts';

/** One object the manifests engine applied, as recorded in the tracking ConfigMap (`data.refs`). */
export interface ManifestRef {
  apiVersion: string;
  kind: string;
  group: string;
  version: string;
  /** The plural resource name. */
  resource: string;
  namespaced: boolean;
  namespace?: string;
  name: string;
}

/** Order of application: namespaces, then CRDs, then everything else in the order given. Deletion reverses it. */
const KIND_ORDER: Record<string, number> = { Namespace: 0, CustomResourceDefinition: 1 };

function isRecord(value: unknown): value is Record<string, unknown> {
  return !!value && typeof value === 'object' && !Array.isArray(value);
}

/** The 1-based number of the YAML document each parsed object came from, counted across all the source's files. */
const documentNumbers = new WeakMap<KubernetesObject, number>();

export function documentNumber(obj: KubernetesObject): number | undefined {
  return documentNumbers.get(obj);
}

/**
 * Parses the rendered documents into objects: empty documents are skipped, a `List` contributes its items, and an
 * object without apiVersion, kind or metadata.name is a permanent error.
 */
export function parseManifests(docs: readonly string[]): KubernetesObject[] {
  const objects: KubernetesObject[] = [];
  let number = 0;
  docs.forEach((doc, d) => {
    for (const parsed of parseAllDocuments(doc)) {
      number++;
      if (parsed.errors.length > 0) {
        throw new PermanentProviderError(
          `manifest document ${d + 1} is not valid YAML: ${parsed.errors[0]?.message}`,
        );
      }
      const value: unknown = parsed.toJS();
      if (value === null || value === undefined) continue;
      const candidates =
        isRecord(value) &&
        typeof value.kind === 'string' &&
        value.kind.endsWith('List') &&
        Array.isArray(value.items)
          ? (value.items as unknown[])
          : [value];
      for (const candidate of candidates) {
        if (!isRecord(candidate)) {
          throw new PermanentProviderError(`manifest document ${d + 1} is not a Kubernetes object`);
        }
        const { apiVersion, kind } = candidate;
        if (typeof apiVersion !== 'string' || !apiVersion || typeof kind !== 'string' || !kind) {
          throw new PermanentProviderError(`manifest document ${d + 1} has no apiVersion or kind`);
        }
        const metadata = isRecord(candidate.metadata) ? candidate.metadata : {};
        if (typeof metadata.name !== 'string' || !metadata.name) {
          throw new PermanentProviderError(
            `manifest document ${d + 1} (${kind}) has no metadata.name (generateName cannot be applied idempotently)`,
          );
        }
        const obj = { ...candidate, metadata } as KubernetesObject;
        documentNumbers.set(obj, number);
        objects.push(obj);
      }
    }
  });
  return objects
    .map((o, i) => ({ o, i }))
    .sort((a, b) => (KIND_ORDER[a.o.kind ?? ''] ?? 2) - (KIND_ORDER[b.o.kind ?? ''] ?? 2) || a.i - b.i)
    .map(({ o }) => o);
}

export function splitApiVersion(apiVersion: string): { group: string; version: string } {
  const [first, second] = apiVersion.split('/');
  return second === undefined ? { group: '', version: first ?? '' } : { group: first ?? '', version: second };
}

/** Identity of an applied object across re-applies (a version change is the same object). */
export function refKey(ref: Pick<ManifestRef, 'group' | 'kind' | 'namespace' | 'name'>): string {
  return `${ref.group}/${ref.kind}/${ref.namespace ?? ''}/${ref.name}`;
}

export function parseRefs(data: Record<string, string> | undefined): ManifestRef[] {
  const raw = data?.refs;
  if (!raw) return [];
  try {
    const parsed: unknown = JSON.parse(raw);
    return Array.isArray(parsed) ? (parsed as ManifestRef[]) : [];
  } catch {
    return [];
  }
}
