import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { ConfigError } from '../config/config-error.ts';
import { parseProviderFleet } from '../config/provider-fleet.ts';
import { REPO_ROOT } from '../scripts/temporal-cli.ts';

interface ComposeService {
  image?: string;
  build?: unknown;
  user?: string;
  ports?: string[];
  volumes?: string[];
  environment?: Record<string, string>;
  networks?: string[];
}

interface ComposeFile {
  services: Record<string, ComposeService>;
  networks?: Record<string, { internal?: boolean }>;
}

// No compose engine runs here (nothing can be pulled): the file is read as compose reads it (YAML with merge
// keys) and checked for what an operator relies on.
describe('docker-compose.yml: nothing reachable that lets a caller around the API', () => {
  const compose = parse(readFileSync(`${REPO_ROOT}/docker-compose.yml`, 'utf8'), {
    merge: true,
  }) as ComposeFile;
  const services = compose.services;
  const ports = (name: string) => services[name]?.ports ?? [];

  it('publishes no Temporal gRPC port, and the Temporal UI only on 127.0.0.1 with its write actions off', () => {
    assert.deepEqual(ports('temporal'), []);
    for (const [name, service] of Object.entries(services)) {
      for (const port of service.ports ?? []) assert.doesNotMatch(port, /7233/, `${name} publishes ${port}`);
    }
    const ui = ports('temporal-ui');
    assert.ok(ui.length > 0, 'the UI is published');
    for (const port of ui) assert.match(port, /^127\.0\.0\.1:\d+:\d+$/, port);
    assert.equal(services['temporal-ui']?.environment?.TEMPORAL_DISABLE_WRITE_ACTIONS, 'true');
  });

  it('runs the API as the image’s non-root user, without the Docker socket: reads go through a GET-only proxy', () => {
    const api = services.api;
    assert.ok(api);
    assert.equal(api.user, undefined, 'no user override: the Dockerfile’s USER applies');
    assert.ok(!(api.volumes ?? []).some((v) => v.includes('docker.sock')), 'no Docker socket in the API');
    const dockerHost = api.environment?.DOCKER_HOST ?? '';
    const proxyName = /^tcp:\/\/([^:]+):\d+$/.exec(dockerHost)?.[1];
    assert.ok(proxyName, `DOCKER_HOST ${dockerHost} names a service`);
    const proxy = services[proxyName];
    assert.ok(proxy, `${proxyName} is a service`);
    assert.equal(proxy.environment?.POST, '0', 'the proxy passes no write');
    assert.match(proxy.image ?? '', /^tecnativa\/docker-socket-proxy:\d+\.\d+\.\d+$/);
    assert.deepEqual(proxy.ports ?? [], [], 'the proxy is not published');
    const [proxyNetwork] = proxy.networks ?? [];
    assert.ok(proxyNetwork && compose.networks?.[proxyNetwork]?.internal, 'on an internal network');
    assert.ok(api.networks?.includes(proxyNetwork));
    // The rest of the shared environment still reaches the API.
    assert.match(api.environment?.CTRLPLANE_JWT_SECRET ?? '', /CTRLPLANE_JWT_SECRET/);
    assert.equal(api.environment?.TEMPORAL_ADDRESS, 'temporal:7233');

    const dockerfile = readFileSync(`${REPO_ROOT}/Dockerfile`, 'utf8');
    const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    const users = [...runtime.matchAll(/^USER\s+(\S+)/gm)].map((m) => m[1]);
    assert.ok(users.length > 0 && !['root', '0', '0:0'].includes(users.at(-1) ?? 'root'), `USER ${users}`);
  });

  it('names every image with a pinned tag', () => {
    for (const [name, service] of Object.entries(services)) {
      if (service.build) continue;
      assert.match(service.image ?? '', /^[\w./-]+:\d[\w.-]*$/, `${name}: ${service.image}`);
    }
  });
});

describe('docker-compose.agent.yml: one agent per host, reachable by nothing', () => {
  const compose = parse(readFileSync(`${REPO_ROOT}/docker-compose.agent.yml`, 'utf8'), {
    merge: true,
  }) as ComposeFile & { services: Record<string, ComposeService & { command?: string[] }> };
  const { agent, 'docker-api-readonly': proxy } = compose.services;

  it("runs the production worker as its host's agent, with the socket and the fleet file, publishing nothing", () => {
    assert.ok(agent && proxy);
    assert.deepEqual(agent.command?.slice(0, 3), ['node', 'dist/worker/main.js', '--provider']);
    assert.match(agent.command?.[3] ?? '', /CTRLPLANE_AGENT_PROVIDER/);
    assert.ok(agent.volumes?.includes('/var/run/docker.sock:/var/run/docker.sock'));
    assert.equal(agent.environment?.CTRLPLANE_PROVIDERS_FILE, '/etc/ctrlplane/providers.yaml');
    assert.ok(agent.volumes?.some((v) => v.endsWith(':/etc/ctrlplane/providers.yaml:ro')));
    assert.deepEqual(agent.ports ?? [], []);
  });

  it('lets the API read the engine only through a GET-only proxy, on an address the operator names', () => {
    assert.ok(proxy);
    assert.equal(proxy.environment?.POST, '0');
    assert.match(proxy.image ?? '', /^tecnativa\/docker-socket-proxy:\d+\.\d+\.\d+$/);
    assert.ok(proxy.volumes?.every((v) => v.endsWith(':ro')));
    for (const port of proxy.ports ?? []) {
      assert.match(port, /^\$\{CTRLPLANE_AGENT_PRIVATE_ADDRESS:\?[^}]+\}:2375:2375$/, port);
    }
  });

  it('the example fleet file is one the configuration accepts (but for its kubeconfig, not on this machine)', () => {
    const raw = parse(readFileSync(`${REPO_ROOT}/deploy/providers.example.yaml`, 'utf8'));
    try {
      parseProviderFleet(raw, 'providers.example.yaml', { sharedTaskQueue: 'q', networkPrefix: 27 });
      assert.fail('accepted a kubeconfig that does not exist');
    } catch (err) {
      assert.ok(err instanceof ConfigError, String(err));
      assert.deepEqual(
        err.problems.map((p) => p.message),
        ['providers.example.yaml: providers.k8s-eu.kubeconfig: no file at /etc/ctrlplane/k8s-eu.kubeconfig'],
      );
    }
  });
});
