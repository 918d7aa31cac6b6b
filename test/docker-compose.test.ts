import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
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
