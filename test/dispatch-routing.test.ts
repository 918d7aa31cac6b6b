import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ServiceSpec } from '../domain/instance.ts';
import type { DeploymentSource, RenderedSource } from '../domain/sources/deployment-source.ts';
import { validateSource } from '../domain/sources/deployment-source.ts';
import { SourceError, type SourceErrorCode } from '../domain/sources/errors.ts';
import { render } from '../domain/sources/render.ts';
import { checkSecretBindings, injectSecretEnv } from '../domain/sources/secret-env.ts';
import { resolve } from '../domain/sources/variables.ts';
import {
  type DispatchTarget,
  deprovisionSource,
  provisionSource,
  sourceStatus,
  supportsSource,
} from '../providers/dispatch.ts';
import type {
  Capability,
  InstanceStatus,
  Provider,
  ProvisionResult,
  SourceEngines,
} from '../providers/provider.ts';

/**
 * Dispatch by source type. The providers here
 * are small fakes defined in this file that only record calls: the subject is the routing, not a provider.
 */

type Call = { method: string; arg: unknown };

function fakeProvider(
  name: string,
  caps: Capability[],
  engines: { manifests?: boolean; helm?: boolean; argocd?: boolean } = {},
): { provider: Provider; calls: Call[] } {
  const calls: Call[] = [];
  const result = (method: string): ProvisionResult => ({ provider_ref: `${method}:ref`, endpoints: [] });
  const status = (method: string): InstanceStatus => ({
    state: 'running',
    ready: true,
    restarts: 0,
    endpoints: [],
    message: method,
  });
  /** A method that records its argument and answers `answer(method)`. */
  const method =
    <T>(name: string, answer: (method: string) => T) =>
    async (arg: unknown): Promise<T> => {
      calls.push({ method: name, arg });
      return answer(name);
    };
  const none = () => undefined;
  /** An engine whose calls are recorded as `<type>.apply`, `<type>.remove`, `<type>.status`. */
  const engine = (type: string) => ({
    apply: method(`${type}.apply`, result),
    remove: method(`${type}.remove`, none),
    status: method(`${type}.status`, status),
  });
  const sourceEngines: SourceEngines = {
    ...(engines.manifests ? { manifests: engine('manifests') } : {}),
    ...(engines.helm ? { helm: engine('helm') } : {}),
    ...(engines.argocd ? { argocd: engine('argocd') } : {}),
  };
  const provider: Provider = {
    info: () => ({ name, version: '0.0.1', region: 'local' }),
    capabilities: () => caps,
    provision: method('provision', result),
    deprovision: method('deprovision', none),
    status: method('status', status),
    start: async () => {},
    stop: async () => {},
    restart: async () => {},
    scale: async () => {},
    logs: async function* () {},
    resources: async () => ({
      cpu_percent: 0,
      memory_used_mb: 0,
      memory_limit_mb: 0,
      network_in_mb: 0,
      network_out_mb: 0,
    }),
    healthCheck: async () => ({ healthy: true, message: '', latency_ms: 0, checked_at: '' }),
    // A provider without engines leaves them out, as Docker does.
    ...(Object.keys(sourceEngines).length > 0 ? { engines: sourceEngines } : {}),
  };
  return { provider, calls };
}

const ALL_CAPS: Capability[] = ['provision', 'source:manifests', 'source:helm', 'source:argocd'];
const target: DispatchTarget = {
  instance_id: 'inst_1',
  tenant_id: 'tnt_1',
  name: 'web',
  kind: 'deployment',
  labels: { team: 'a' },
};
const web: ServiceSpec = {
  name: 'web',
  image: 'nginx',
  resources: { cpu_millis: 100, memory_mb: 64, replicas: 1 },
};

const rendered: Record<'services' | 'manifests' | 'helm' | 'argocd', RenderedSource> = {
  services: { type: 'services', services: [web] },
  manifests: { type: 'manifests', manifests: { docs: ['kind: ConfigMap\n'] } },
  helm: { type: 'helm', helm: { chart: 'redis', values: { a: 1 } } },
  argocd: { type: 'argocd', argocd: { repo_url: 'https://git.example.com/x' } },
};

const ROUTES = {
  services: ['provision', 'deprovision', 'status'],
  manifests: ['manifests.apply', 'manifests.remove', 'manifests.status'],
  helm: ['helm.apply', 'helm.remove', 'helm.status'],
  argocd: ['argocd.apply', 'argocd.remove', 'argocd.status'],
} as const;

async function rejects(p: Promise<unknown>, code: SourceErrorCode, message?: RegExp): Promise<void> {
  let caught: unknown;
  try {
    await p;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof SourceError, `expected a SourceError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  if (message) assert.match(caught.message, message);
}

describe('Dispatch: routing by source type', () => {
  for (const [type, [create, remove, status]] of Object.entries(ROUTES)) {
    it(`routes ${type} to ${create} / ${remove} / ${status}`, async () => {
      const { provider, calls } = fakeProvider('k8s', ALL_CAPS, {
        manifests: true,
        helm: true,
        argocd: true,
      });
      const result = await provisionSource(provider, rendered[type as keyof typeof rendered], target);
      assert.equal(result.provider_ref, `${create}:ref`);
      await deprovisionSource(provider, type, 'inst_1');
      const st = await sourceStatus(provider, type, 'inst_1');
      assert.equal(st.message, status);
      assert.deepEqual(
        calls.map((c) => c.method),
        [create, remove, status],
      );
      assert.equal(calls[1]!.arg, 'inst_1');
    });
  }

  it('passes the request fields each engine takes', async () => {
    const { provider, calls } = fakeProvider('k8s', ALL_CAPS, { manifests: true, helm: true, argocd: true });
    for (const source of Object.values(rendered)) await provisionSource(provider, source, target);
    assert.deepEqual(
      calls.map((c) => c.arg),
      [
        {
          instance_id: 'inst_1',
          tenant_id: 'tnt_1',
          name: 'web',
          kind: 'deployment',
          services: [web],
          labels: { team: 'a' },
        },
        {
          instance_id: 'inst_1',
          tenant_id: 'tnt_1',
          namespace: '',
          docs: ['kind: ConfigMap\n'],
          labels: { team: 'a' },
        },
        {
          instance_id: 'inst_1',
          tenant_id: 'tnt_1',
          namespace: '',
          chart: { chart: 'redis', values: { a: 1 } },
        },
        {
          instance_id: 'inst_1',
          tenant_id: 'tnt_1',
          app: { repo_url: 'https://git.example.com/x' },
          labels: { team: 'a' },
        },
      ],
    );
  });

  it('routes an empty or absent type on delete and status to the core methods', async () => {
    const { provider, calls } = fakeProvider('docker', []);
    await deprovisionSource(provider, '', 'inst_1');
    await deprovisionSource(provider, undefined, 'inst_2');
    await sourceStatus(provider, null, 'inst_3');
    assert.deepEqual(
      calls.map((c) => c.method),
      ['deprovision', 'deprovision', 'status'],
    );
  });

  it('never gates services by capability (Docker does not advertise provision)', async () => {
    const { provider, calls } = fakeProvider('docker', ['deploy', 'scale']);
    await provisionSource(provider, rendered.services, target);
    assert.equal(calls[0]!.method, 'provision');
    assert.equal(supportsSource(provider, 'services'), true);
  });
});

describe('Dispatch: unsupported and invalid', () => {
  for (const type of ['manifests', 'helm', 'argocd'] as const) {
    it(`a provider with only {provision} given ${type} → unsupported_source, for provision and deprovision`, async () => {
      const { provider, calls } = fakeProvider('docker', ['provision']);
      await rejects(
        provisionSource(provider, rendered[type], target),
        'unsupported_source',
        new RegExp(`provider docker does not support the ${type} source`),
      );
      await rejects(deprovisionSource(provider, type, 'inst_1'), 'unsupported_source');
      await rejects(sourceStatus(provider, type, 'inst_1'), 'unsupported_source');
      assert.equal(supportsSource(provider, type), false);
      assert.deepEqual(calls, []);
    });
  }

  it('needs both the capability and the engine', async () => {
    const capsOnly = fakeProvider('p', ['source:helm']);
    await rejects(provisionSource(capsOnly.provider, rendered.helm, target), 'unsupported_source');
    const engineOnly = fakeProvider('p', ['provision'], { helm: true });
    await rejects(provisionSource(engineOnly.provider, rendered.helm, target), 'unsupported_source');
    assert.deepEqual(engineOnly.calls, []);
  });

  it('fails an unknown type with invalid_source', async () => {
    const { provider } = fakeProvider('k8s', ALL_CAPS, { manifests: true, helm: true, argocd: true });
    await rejects(
      provisionSource(provider, { type: 'weird' } as unknown as RenderedSource, target),
      'invalid_source',
      /"weird"/,
    );
    await rejects(deprovisionSource(provider, 'weird', 'inst_1'), 'invalid_source');
    await rejects(sourceStatus(provider, 'weird', 'inst_1'), 'invalid_source');
  });

  it('fails a rendered source without its payload with invalid_source', async () => {
    const { provider } = fakeProvider('k8s', ALL_CAPS, { helm: true });
    await rejects(provisionSource(provider, { type: 'helm' }, target), 'invalid_source');
  });
});

describe('Source: a templated manifests source on a kubernetes provider', () => {
  it('resolves, renders and applies through the manifests engine (not provision), and deletes with it', async () => {
    const { provider, calls } = fakeProvider('kubernetes', ['provision', 'source:manifests'], {
      manifests: true,
    });
    const source = validateSource({
      type: 'manifests',
      manifests: { inline: 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .var.n }}\n' },
    });
    const { scope, bindings } = resolve(
      [{ name: 'n', type: 'string', default: 'x' }],
      { n: 'cm1' },
      {
        instance: { id: 'inst_1', name: 'web' },
        tenant: { id: 'tnt_1' },
        region: '',
      },
    );
    checkSecretBindings(source, bindings);
    await provisionSource(provider, await render(source, scope), target);
    assert.equal(source.type, 'manifests');
    assert.deepEqual(
      calls.map((c) => c.method),
      ['manifests.apply'],
    );
    assert.deepEqual((calls[0]!.arg as { docs: string[] }).docs, [
      'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm1\n',
    ]);
    await deprovisionSource(provider, source.type, 'inst_1');
    assert.equal(calls[1]!.method, 'manifests.remove');
  });
});

describe('Secret bindings → service env', () => {
  const binding = { var_name: 'db-password', env_key: 'DB_PASSWORD', ref: 'tenant/db/password' };

  it('adds the resolved secrets to every service env, leaving the input alone', () => {
    const source: RenderedSource = {
      type: 'services',
      services: [
        { ...web, env: { A: '1' } },
        { ...web, name: 'side', role: 'sidecar' },
      ],
    };
    const out = injectSecretEnv(source, [binding], { DB_PASSWORD: 's3cret' });
    assert.deepEqual(
      out.services!.map((s) => s.env),
      [{ A: '1', DB_PASSWORD: 's3cret' }, { DB_PASSWORD: 's3cret' }],
    );
    assert.deepEqual(source.services![0]!.env, { A: '1' });
  });

  it('refuses secrets on a non-services source and an env key a service already sets', () => {
    const helm: DeploymentSource = { type: 'helm', helm: { chart: 'redis' } };
    assert.throws(
      () => checkSecretBindings(helm, [binding]),
      (e: unknown) => e instanceof SourceError && e.code === 'unsupported_source',
    );
    assert.doesNotThrow(() => checkSecretBindings(helm, []));
    const clash: DeploymentSource = { type: 'services', services: [{ ...web, env: { DB_PASSWORD: 'x' } }] };
    assert.throws(
      () => checkSecretBindings(clash, [binding]),
      /service web env DB_PASSWORD is also set by the secret variable/,
    );
  });

  it('refuses a binding without a resolved value', () => {
    assert.throws(
      () => injectSecretEnv(rendered.services, [binding], {}),
      (e: unknown) => e instanceof SourceError && e.variable === 'db-password',
    );
  });
});
