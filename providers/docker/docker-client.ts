import Dockerode from 'dockerode';

/**
 * A dockerode client for DOCKER_HOST as configured (`unix:///path`, `tcp://host:port`), or the default socket.
 * Passing it explicitly keeps the engine a setting of the process's configuration, not of its environment.
 */
export function dockerClient(dockerHost: string | undefined): Dockerode {
  if (!dockerHost) return new Dockerode({ socketPath: '/var/run/docker.sock' });
  const url = new URL(dockerHost);
  if (url.protocol === 'unix:') return new Dockerode({ socketPath: url.pathname });
  if (url.protocol === 'tcp:' || url.protocol === 'http:') {
    return new Dockerode({ protocol: 'http', host: url.hostname, port: Number(url.port || 2375) });
  }
  throw new Error(`DOCKER_HOST: unsupported address ${dockerHost} (use unix:// or tcp://)`);
}
