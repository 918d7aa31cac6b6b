/**
 * Placement by capacity (domain/placement-rules.ts) and the fleet file it places across
 * (config/provider-fleet.ts), as the configuration loads it. Pure: no Docker, no cluster, no database.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError } from '../config/config-error.ts';
import { loadConfig } from '../config/env.ts';
import { createLogger } from '../config/logger.ts';
import { choosePlacement, type PlacementCandidate, placementMemory } from '../domain/placement-rules.ts';
import { buildProviders } from '../providers/build-providers.ts';

const candidate = (
  name: string,
  used: { instances: number; memory_mb: number },
  extra: Partial<PlacementCandidate> = {},
): PlacementCandidate => ({
  name,
  limits: { instances: 10, memory_mb: 10_240 },
  used,
  labels: {},
  runsSource: true,
  ...extra,
});

describe('placement by capacity', () => {
  it('chooses the provider with the largest free share, the smaller of its instances and memory shares', () => {
    const decision = choosePlacement(
      [
        candidate('a', { instances: 2, memory_mb: 9_000 }), // few instances, memory nearly used up
        candidate('b', { instances: 5, memory_mb: 2_048 }), // half the instances free, most memory
        candidate('c', { instances: 7, memory_mb: 1_024 }),
      ],
      { memory_mb: 512 },
    );
    assert.deepEqual(decision.placed && decision.provider_name, 'b');
    assert.ok(decision.placed);
    assert.equal(
      decision.reason,
      'placed on b, the eligible provider with the most free capacity: 5 of 10 instances and 8192 of 10240 MiB free (of 3 eligible)',
    );
  });

  it('breaks ties by free memory, then by name', () => {
    const tie = choosePlacement(
      [candidate('b', { instances: 1, memory_mb: 0 }), candidate('a', { instances: 1, memory_mb: 0 })],
      { memory_mb: 1 },
    );
    assert.ok(tie.placed);
    assert.equal(tie.provider_name, 'a');
    const moreMemory = choosePlacement(
      [
        candidate('a', { instances: 5, memory_mb: 0 }),
        candidate('b', { instances: 5, memory_mb: 0 }, { limits: { instances: 10, memory_mb: 20_480 } }),
      ],
      { memory_mb: 1 },
    );
    assert.ok(moreMemory.placed);
    assert.equal(moreMemory.provider_name, 'b');
  });

  it('skips a provider that is full, lacks the memory, runs another source or is in another region', () => {
    const decision = choosePlacement(
      [
        candidate('full', { instances: 10, memory_mb: 0 }),
        candidate('tight', { instances: 0, memory_mb: 10_000 }),
        candidate('helm-only', { instances: 0, memory_mb: 0 }, { runsSource: false }),
        candidate(
          'down',
          { instances: 0, memory_mb: 0 },
          { unavailable: 'connect ENOENT', labels: { region: 'us-east' } },
        ),
        candidate('eu', { instances: 0, memory_mb: 0 }, { labels: { region: 'eu-west' } }),
        candidate('us', { instances: 9, memory_mb: 0 }, { labels: { region: 'us-east' } }),
      ],
      { memory_mb: 512, region: 'us-east' },
    );
    assert.ok(decision.placed);
    assert.equal(decision.provider_name, 'us');
  });

  it('a full fleet is refused with every provider and its reason', () => {
    const decision = choosePlacement(
      [candidate('a', { instances: 10, memory_mb: 0 }), candidate('b', { instances: 3, memory_mb: 10_000 })],
      { memory_mb: 512 },
    );
    assert.deepEqual(decision, {
      placed: false,
      reason:
        'no provider can take it (a: it holds 10 instances, its limit is 10; b: 240 of its 10240 MiB are free, the create asks for 512 MiB)',
    });
    assert.deepEqual(choosePlacement([], { memory_mb: 1 }), {
      placed: false,
      reason: 'the fleet has no provider to place on',
    });
  });

  it("counts a service's memory times its replicas, the default for a service without one, one default service for a source without services", () => {
    assert.equal(
      placementMemory(
        [{ resources: { memory_mb: 256, replicas: 3 } }, { resources: { memory_mb: 0, replicas: 1 } }, {}],
        512,
      ),
      256 * 3 + 512 + 512,
    );
    assert.equal(placementMemory(null, 512), 512);
  });
});

describe('the fleet file (CTRLPLANE_PROVIDERS_FILE)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleet-unit-'));
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(
    kubeconfig,
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters: [{ name: c, cluster: { server: "https://127.0.0.1:1" } }]',
      'users: [{ name: u, user: { token: t } }]',
      'contexts: [{ name: x, context: { cluster: c, user: u } }]',
      'current-context: x',
    ].join('\n'),
  );
  const load = (yaml: string, env: Record<string, string> = {}) => {
    const file = join(dir, `fleet-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(file, yaml);
    return loadConfig({ CTRLPLANE_PROVIDERS_FILE: file, ...env });
  };
  const problems = (fn: () => unknown): string[] => {
    try {
      fn();
    } catch (err) {
      assert.ok(err instanceof ConfigError, String(err));
      return err.problems.map((p) => `${p.variable}: ${p.message.replace(/^\/\S+\.yaml: /, '')}`);
    }
    assert.fail('the configuration was accepted');
  };

  const good = `
providers:
  docker-a:
    kind: docker
    docker_host: unix:///var/run/docker.sock
    capacity: { instances: 30, memory_mb: 16384 }
    labels: { region: eu-west }
  docker-b:
    kind: docker
    docker_host: tcp://10.0.0.2:2376
    network_pool: 10.211.0.0/16
    agent: false
    capacity: { instances: 30, memory_mb: 16384 }
  k8s-a:
    kind: kubernetes
    kubeconfig: ${kubeconfig}
    capacity: { instances: 200, memory_mb: 65536 }
    labels: { region: us-east }
`;

  it('names each provider with its task queue, capacity and labels; with no default, creates are placed', () => {
    const config = load(good, { CTRLPLANE_TASK_QUEUE: 'cp' });
    assert.equal(config.defaultProvider, undefined);
    const registry = buildProviders(config, createLogger('test', 'silent'));
    assert.deepEqual(registry.names(), ['docker-a', 'docker-b', 'k8s-a']);
    assert.deepEqual(registry.site('docker-a'), {
      taskQueue: 'cp/docker-a',
      capacity: { instances: 30, memory_mb: 16384 },
      labels: { region: 'eu-west' },
    });
    assert.equal(registry.site('docker-b').taskQueue, undefined, 'agent: false: the shared worker drives it');
    assert.equal(registry.get('k8s-a').info().region, 'us-east');
  });

  it('gives the shared worker only the providers without an agent, and an agent only its own', () => {
    const config = load(good);
    const logger = createLogger('test', 'silent');
    assert.deepEqual(buildProviders(config, logger, {}, { for: 'shared-worker' }).names(), ['docker-b']);
    assert.deepEqual(buildProviders(config, logger, {}, { for: 'agent', provider: 'k8s-a' }).names(), [
      'k8s-a',
    ]);
  });

  it('refuses a bad file at start, naming the provider and the field', () => {
    // The schema first: a file that does not parse reports only that.
    assert.deepEqual(
      problems(() => load('providers:\n  b: { kind: docker, capacity: { instances: 0, memory_mb: 1 } }\n')),
      ['CTRLPLANE_PROVIDERS_FILE: providers.b.capacity.instances: Too small: expected number to be >=1'],
    );
    const many = problems(() =>
      load(`
providers:
  Docker_A:
    kind: docker
    capacity: { instances: 1, memory_mb: 1 }
  b:
    kind: docker
    network_pool: 8.8.0.0/16
    capacity: { instances: 1, memory_mb: 1 }
  k:
    kind: kubernetes
    kubeconfig: /nowhere
    capacity: { instances: 1, memory_mb: 1 }
`),
    );
    assert.equal(many.length, 3, many.join('\n'));
    assert.match(many[0] ?? '', /providers\.Docker_A: a provider name is/);
    assert.match(many[1] ?? '', /providers\.b\.network_pool: /);
    assert.match(many[2] ?? '', /providers\.k\.kubeconfig: no file at \/nowhere/);
    assert.deepEqual(
      problems(() => load('providers:\n  a: { kind: docker }\n')),
      ['CTRLPLANE_PROVIDERS_FILE: providers.a.capacity: Invalid input: expected object, received undefined'],
    );
  });

  it('checks the default provider and the agent against the file', () => {
    assert.match(
      problems(() => load(good, { CTRLPLANE_DEFAULT_PROVIDER: 'docker' }))[0] ?? '',
      /^CTRLPLANE_DEFAULT_PROVIDER: docker is not a provider of /,
    );
    assert.equal(load(good, { CTRLPLANE_DEFAULT_PROVIDER: 'k8s-a' }).defaultProvider, 'k8s-a');
    assert.match(
      problems(() => load(good, { CTRLPLANE_AGENT_PROVIDER: 'docker-b' }))[0] ?? '',
      /docker-b has agent: false in \S+: the shared worker drives it/,
    );
    assert.deepEqual(
      problems(() => loadConfig({ CTRLPLANE_AGENT_PROVIDER: 'docker-a' })),
      ['CTRLPLANE_AGENT_PROVIDER: names a provider of CTRLPLANE_PROVIDERS_FILE, which is not set'],
    );
    assert.equal(loadConfig({}).defaultProvider, 'docker', 'without a fleet file, as before');
  });
});
