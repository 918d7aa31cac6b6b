import { dockerClient } from '../../providers/docker/docker-client.ts';

/** The engine, through the client the provider uses (its calls always settle). */
export const docker = dockerClient(process.env.DOCKER_HOST);
export const TEST_IMAGE = 'ctrlplane-test/busybox:1';
/** The operator's allowlist the tests' providers get: the locally imported test images. */
export const TEST_ALLOWED_IMAGES = ['docker.io/ctrlplane-test/*'];

/** A single-service instance spec: busybox httpd serving `content` on container port 80, published. */
export function httpdService(content: string) {
  return {
    name: 'web',
    image: TEST_IMAGE,
    command: [
      '/bin/sh',
      '-c',
      `mkdir -p /www && echo ${content} > /www/index.html && exec httpd -f -p 80 -h /www`,
    ],
    ports: [{ container: 80 }],
    env: { GREETING: content },
  };
}

export async function containersOf(instanceId: string) {
  return docker.listContainers({ all: true, filters: { label: [`ctrlplane.instance=${instanceId}`] } });
}

export async function networkExists(name: string): Promise<boolean> {
  const networks = await docker.listNetworks({ filters: { name: [name] } });
  return networks.some((n) => n.Name === name);
}

/** Removes everything the given instances left on the engine (tests call it before and after). */
export async function removeInstances(instanceIds: Iterable<string>): Promise<void> {
  for (const id of instanceIds) {
    for (const c of await containersOf(id))
      await docker
        .getContainer(c.Id)
        .remove({ force: true, v: true })
        .catch(() => {});
    await docker
      .getNetwork(`cp-${id}-net`)
      .remove()
      .catch(() => {});
  }
}

/** Removes what earlier, interrupted runs of a test file left behind, by the tenant label it uses. */
export async function removeTenantLeftovers(tenantPrefix: string): Promise<void> {
  const all = await docker.listContainers({ all: true, filters: { label: ['ctrlplane.managed=true'] } });
  const stale = all.filter((c) => (c.Labels['ctrlplane.tenant'] ?? '').startsWith(tenantPrefix));
  await removeInstances(new Set(stale.map((c) => c.Labels['ctrlplane.instance'] ?? '')));
}
