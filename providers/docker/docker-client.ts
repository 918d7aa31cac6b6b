import { Agent, type AgentOptions, type ClientRequest, type IncomingMessage } from 'node:http';
import Dockerode from 'dockerode';

/** The engine closed the connection before its answer was complete (a daemon restart, a dropped socket). */
export class DockerConnectionClosed extends Error {
  override readonly name = 'DockerConnectionClosed';
  constructor(method: string, path: string) {
    super(`the Docker engine closed the connection before its answer to ${method} ${path} was complete`);
  }
}

/**
 * An HTTP agent that makes every call to the engine settle. docker-modem (dockerode's transport) settles a call
 * that is not a stream only on the response's `end`, or on an `error` of the request. When the connection closes
 * after the response began but before its body ended (a `wait` on a container, an answer cut by a daemon restart
 * or an abort), Node's IncomingMessage emits neither `end` nor, having no `error` listener, `error`: the call's
 * promise never settles, and with its socket gone nothing keeps the process waiting for it. This agent turns such
 * a close into an `error` on the request, which docker-modem passes to the caller like any other failure.
 */
export class SettlingAgent extends Agent {
  // `addRequest` is how an agent receives each request (undocumented, but the hook agent-base and the proxy
  // agents build on); @types/node does not declare it.
  addRequest(req: ClientRequest, options: unknown): void {
    req.once('response', (res: IncomingMessage) => {
      res.once('close', () => {
        if (res.complete) return;
        const error = new DockerConnectionClosed(req.method, req.path);
        if (req.listenerCount('error') > 0) req.emit('error', error);
      });
    });
    (Agent.prototype as unknown as { addRequest(r: ClientRequest, o: unknown): void }).addRequest.call(
      this,
      req,
      options,
    );
  }
}

const AGENT_OPTIONS: AgentOptions = { keepAlive: true };

/**
 * A dockerode client for DOCKER_HOST as configured (`unix:///path`, `tcp://host:port`), or the default socket,
 * whose calls always settle (see SettlingAgent). Passing it explicitly keeps the engine a setting of the process's
 * configuration, not of its environment.
 */
export function dockerClient(dockerHost: string | undefined): Dockerode {
  return new Dockerode({
    ...engineAddress(dockerHost),
    agent: new SettlingAgent(AGENT_OPTIONS),
  } as EngineOptions);
}

// docker-modem takes `agent`; @types/dockerode does not declare it.
type EngineOptions = Dockerode.DockerOptions & { agent: Agent };

function engineAddress(dockerHost: string | undefined): Dockerode.DockerOptions {
  if (!dockerHost) return { socketPath: '/var/run/docker.sock' };
  const url = new URL(dockerHost);
  if (url.protocol === 'unix:') return { socketPath: url.pathname };
  if (url.protocol === 'tcp:' || url.protocol === 'http:') {
    return { protocol: 'http', host: url.hostname, port: Number(url.port || 2375) };
  }
  throw new Error(`DOCKER_HOST: unsupported address ${dockerHost} (use unix:// or tcp://)`);
}
