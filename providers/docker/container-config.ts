import type Dockerode from 'dockerode';
import type { PortSpec, ServiceSpec } from '../../domain/instance';
import { PermanentProviderError } from '../provider';
import { LABEL, roleOf } from './labels';
import { isValidServiceName } from './naming';
import { specHash } from './spec-hash';

const PROTOCOLS = new Set(['tcp', 'udp', 'sctp']);

export function portProtocol(port: PortSpec): string {
  return (port.protocol || 'tcp').toLowerCase();
}

/** Rejects (permanently) what Docker would refuse anyway, so a bad spec is not retried forever. */
export function validateService(service: ServiceSpec): void {
  if (!isValidServiceName(service.name)) {
    throw new PermanentProviderError(
      `service name "${service.name}" is not valid: use letters, digits, '_', '.' and '-', starting with a letter or digit`,
    );
  }
  if (!service.image?.trim()) throw new PermanentProviderError(`service ${service.name} has no image`);
  const role = roleOf(service);
  if (role !== 'main' && role !== 'sidecar' && role !== 'init') {
    throw new PermanentProviderError(`service ${service.name} has an unknown role "${String(service.role)}"`);
  }
  for (const port of service.ports ?? []) {
    if (!Number.isInteger(port.container) || port.container < 1 || port.container > 65535) {
      throw new PermanentProviderError(
        `service ${service.name}: container port ${port.container} is not valid`,
      );
    }
    if (port.host !== undefined && (!Number.isInteger(port.host) || port.host < 0 || port.host > 65535)) {
      throw new PermanentProviderError(`service ${service.name}: host port ${port.host} is not valid`);
    }
    if (!PROTOCOLS.has(portProtocol(port))) {
      throw new PermanentProviderError(
        `service ${service.name}: port protocol "${port.protocol}" is not valid`,
      );
    }
  }
}

export interface ContainerConfigInput {
  service: ServiceSpec;
  containerName: string;
  networkName: string;
  /** The container's labels without the spec hash (see labels.ts). */
  labels: Record<string, string>;
}

/**
 * The create config of a service's container, with the `ctrlplane.spec-hash` label set to the hash of the rest of
 * the config. Init containers get no ports and restart policy `no`; mains and sidecars restart `unless-stopped`.
 */
export function buildContainerConfig(input: ContainerConfigInput): Dockerode.ContainerCreateOptions {
  const { service, containerName, networkName } = input;
  const isInit = roleOf(service) === 'init';

  const exposedPorts: Record<string, Record<string, never>> = {};
  const portBindings: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
  if (!isInit) {
    for (const port of service.ports ?? []) {
      const key = `${port.container}/${portProtocol(port)}`;
      exposedPorts[key] = {};
      const bindings = portBindings[key] ?? [];
      bindings.push({ HostIp: '0.0.0.0', HostPort: port.host ? String(port.host) : '' });
      portBindings[key] = bindings;
    }
  }

  const hostConfig: Dockerode.HostConfig = {
    NetworkMode: networkName,
    // docker-init as PID 1 forwards SIGTERM, so a stop does not wait out the timeout on a shell entrypoint.
    Init: true,
    RestartPolicy: { Name: isInit ? 'no' : 'unless-stopped' },
    PortBindings: portBindings,
  };
  const memoryMb = service.resources?.memory_mb ?? 0;
  if (memoryMb > 0) hostConfig.Memory = Math.round(memoryMb * 1024 * 1024);
  const cpuMillis = service.resources?.cpu_millis ?? 0;
  if (cpuMillis > 0) hostConfig.NanoCpus = Math.round(cpuMillis * 1_000_000);

  const config: Dockerode.ContainerCreateOptions = {
    name: containerName,
    Image: service.image,
    Env: Object.entries(service.env ?? {}).map(([k, v]) => `${k}=${v}`),
    Labels: { ...input.labels },
    ExposedPorts: exposedPorts,
    HostConfig: hostConfig,
    NetworkingConfig: { EndpointsConfig: { [networkName]: { Aliases: [service.name] } } },
  };
  if (service.command && service.command.length > 0) config.Entrypoint = [...service.command];
  if (service.args && service.args.length > 0) config.Cmd = [...service.args];

  config.Labels = { ...config.Labels, [LABEL.specHash]: specHash(config) };
  return config;
}
