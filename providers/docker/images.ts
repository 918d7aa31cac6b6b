/** Registry credentials per registry host, e.g. `{ 'registry.example.com': { username, password } }`. */
export type RegistryAuth = Record<string, { username: string; password: string }>;

export interface PullAuth {
  username: string;
  password: string;
  serveraddress: string;
}

const DOCKER_HUB = 'docker.io';
const DOCKER_HUB_ALIASES = [
  DOCKER_HUB,
  'index.docker.io',
  'registry-1.docker.io',
  'https://index.docker.io/v1/',
];

/**
 * The registry host of an image reference, as Docker reads it: the first path component when it looks like a
 * host (has a '.' or a ':', or is `localhost`), else Docker Hub (`docker.io`).
 */
export function registryHost(ref: string): string {
  const slash = ref.indexOf('/');
  if (slash < 0) return DOCKER_HUB;
  const first = ref.slice(0, slash);
  if (first.includes('.') || first.includes(':') || first === 'localhost') {
    return first === 'index.docker.io' || first === 'registry-1.docker.io' ? DOCKER_HUB : first;
  }
  return DOCKER_HUB;
}

/** The credentials to pull `ref` with, from the configured ones (Docker Hub under any of its usual names). */
export function pullAuthFor(ref: string, auth: RegistryAuth | undefined): PullAuth | undefined {
  if (!auth) return undefined;
  const host = registryHost(ref);
  const keys = host === DOCKER_HUB ? DOCKER_HUB_ALIASES : [host, `https://${host}`, `http://${host}`];
  for (const key of keys) {
    const found = auth[key];
    if (found) {
      return {
        username: found.username,
        password: found.password,
        serveraddress: serverAddress(host),
      };
    }
  }
  return undefined;
}

/** The `serveraddress` the engine expects in a registry's credentials. */
export function serverAddress(registry: string): string {
  return registry === DOCKER_HUB ? 'https://index.docker.io/v1/' : registry;
}
