import type Dockerode from 'dockerode';
import type { Endpoint } from '../../domain/instance.ts';

type PortMap = Record<string, Array<{ HostIp?: string; HostPort?: string }> | null | undefined>;

function tcpPort(key: string): number | undefined {
  const [port, protocol = 'tcp'] = key.split('/');
  if (protocol !== 'tcp') return undefined;
  const n = Number(port);
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

/**
 * A container's endpoints, from its inspect data. Per exposed TCP port a private one
 * `http://<containerName>:<port>`, plus a public `http://<address>:<hostPort>` per distinct published host port
 * (the address the port is bound to; `localhost` when bound to every interface).
 * A stopped container has no live bindings, so fixed host ports are then read from its HostConfig.
 */
export function endpointsFromInspect(serviceName: string, info: Dockerode.ContainerInspectInfo): Endpoint[] {
  const containerName = info.Name.replace(/^\//, '');
  const live = (info.NetworkSettings?.Ports ?? {}) as PortMap;
  const configured = (info.HostConfig?.PortBindings ?? {}) as PortMap;
  const keys = new Set([...Object.keys(info.Config?.ExposedPorts ?? {}), ...Object.keys(live)]);

  const ports = [...keys]
    .map((key) => ({ key, port: tcpPort(key) }))
    .filter((p): p is { key: string; port: number } => p.port !== undefined)
    .sort((a, b) => a.port - b.port);

  const internal: Endpoint[] = [];
  const hostPorts: number[] = [];
  const hostAddresses = new Map<number, string>();
  for (const { key, port } of ports) {
    internal.push({
      service_name: serviceName,
      url: `http://${containerName}:${port}`,
      port,
      protocol: 'http',
      public: false,
    });
    const bindings = live[key] ?? (info.State?.Running ? [] : configured[key]) ?? [];
    for (const binding of bindings) {
      const hostPort = Number(binding.HostPort);
      if (Number.isInteger(hostPort) && hostPort > 0 && !hostPorts.includes(hostPort)) {
        hostPorts.push(hostPort);
        hostAddresses.set(hostPort, urlHost(binding.HostIp));
      }
    }
  }
  const published: Endpoint[] = hostPorts.map((hostPort) => ({
    service_name: serviceName,
    url: `http://${hostAddresses.get(hostPort) ?? 'localhost'}:${hostPort}`,
    port: hostPort,
    protocol: 'http',
    public: true,
  }));
  return [...internal, ...published];
}

/** The host part of a URL for a binding's address: `localhost` for all interfaces, IPv6 in brackets. */
function urlHost(hostIp: string | undefined): string {
  if (!hostIp || hostIp === '0.0.0.0' || hostIp === '::') return 'localhost';
  return hostIp.includes(':') ? `[${hostIp}]` : hostIp;
}
