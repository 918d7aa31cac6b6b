import { registryHost } from './images.ts';

/** An image reference as Docker reads it, normalised: `nginx` is `docker.io/library/nginx:latest`. */
export interface ImageName {
  registry: string;
  /** The path inside the registry, e.g. `library/nginx`, `acme/app`. */
  repository: string;
  tag?: string;
  digest?: string;
}

/**
 * Parses `[registry/]path[:tag][@digest]`. A bare image id (`sha256:…` or 64 hex digits) is not a name: it is
 * undefined here, so no allowlist entry can match it.
 */
export function parseImageName(ref: string): ImageName | undefined {
  const text = ref.trim();
  if (text === '' || /^sha256:/i.test(text) || /^[0-9a-f]{64}$/i.test(text)) return undefined;
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const lastColon = rest.lastIndexOf(':');
  if (lastColon > rest.lastIndexOf('/')) {
    tag = rest.slice(lastColon + 1);
    rest = rest.slice(0, lastColon);
  }
  const registry = registryHost(rest);
  const slash = rest.indexOf('/');
  const first = slash >= 0 ? rest.slice(0, slash) : '';
  const hasRegistry = slash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost');
  let repository = hasRegistry ? rest.slice(slash + 1) : rest;
  if (registry === 'docker.io' && !repository.includes('/')) repository = `library/${repository}`;
  if (repository === '' || repository.includes('//')) return undefined;
  if (!tag && !digest) tag = 'latest';
  return { registry, repository, ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) };
}

type Entry =
  | { kind: 'prefix'; registry: string; path: string }
  | { kind: 'repository'; registry: string; repository: string }
  | { kind: 'exact'; registry: string; repository: string; tag?: string; digest?: string };

function parseEntry(entry: string): Entry | undefined {
  if (entry.endsWith('/*')) {
    const body = entry.slice(0, -2);
    const slash = body.indexOf('/');
    const registry = slash < 0 ? body : body.slice(0, slash);
    const path = slash < 0 ? '' : body.slice(slash + 1);
    return registry ? { kind: 'prefix', registry: registryHost(`${registry}/x`), path } : undefined;
  }
  const name = parseImageName(entry);
  if (!name) return undefined;
  const explicit = /@/.test(entry) || entry.lastIndexOf(':') > entry.lastIndexOf('/');
  if (!explicit) return { kind: 'repository', registry: name.registry, repository: name.repository };
  return { kind: 'exact', ...name };
}

/**
 * The operator's images any tenant may run (CTRLPLANE_DOCKER_ALLOWED_IMAGES): `registry/repository` (any tag),
 * `registry/repository:tag` or `…@digest` (that one), `registry/path/*` (everything under it), `registry/*`.
 */
export class ImageAllowlist {
  private readonly entries: Entry[];

  constructor(entries: readonly string[]) {
    this.entries = [];
    for (const raw of entries) {
      const entry = parseEntry(raw.trim());
      if (!entry)
        throw new Error(`image allowlist: ${JSON.stringify(raw)} is not an image name or a prefix/*`);
      this.entries.push(entry);
    }
  }

  allows(ref: string): boolean {
    const name = parseImageName(ref);
    if (!name) return false;
    return this.entries.some((entry) => {
      if (entry.registry !== name.registry) return false;
      switch (entry.kind) {
        case 'prefix':
          return entry.path === '' || name.repository.startsWith(`${entry.path}/`);
        case 'repository':
          return entry.repository === name.repository;
        case 'exact':
          return (
            entry.repository === name.repository &&
            (entry.digest ? entry.digest === name.digest : entry.tag === name.tag && !name.digest)
          );
      }
      return false;
    });
  }
}
