import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ServiceSpec } from '../domain/instance.ts';
import {
  type HelmSource,
  kustomizePath,
  projectSource,
  type RenderedSource,
  sourceProblem,
  validateSource,
} from '../domain/sources/deployment-source.ts';
import { SourceError } from '../domain/sources/errors.ts';

/** Source.validate: the cases of the Go library's source tests. */

const web: ServiceSpec = {
  name: 'web',
  image: 'nginx:1.25',
  resources: { cpu_millis: 100, memory_mb: 64, replicas: 1 },
};

function invalid(input: unknown, field: string, message?: RegExp): void {
  assert.throws(
    () => validateSource(input),
    (err: unknown) => {
      assert.ok(err instanceof SourceError, `expected a SourceError, got ${String(err)}`);
      assert.equal(err.code, 'invalid_source');
      assert.equal(err.field, field);
      assert.equal(err.status, 400);
      if (message) assert.match(err.message, message);
      return true;
    },
  );
}

describe('Source.validate: the reference cases', () => {
  it('accepts services with 1 service', () => {
    const source = { type: 'services', services: [web] };
    assert.equal(validateSource(source), source);
  });

  it('accepts helm with chart "redis"', () => {
    assert.doesNotThrow(() => validateSource({ type: 'helm', helm: { chart: 'redis' } }));
  });

  it('accepts manifests with inline', () => {
    assert.doesNotThrow(() =>
      validateSource({ type: 'manifests', manifests: { inline: 'kind: ConfigMap\n' } }),
    );
  });

  it('accepts manifests with kustomize, even {"kustomization.yaml": ""}', () => {
    assert.doesNotThrow(() =>
      validateSource({
        type: 'manifests',
        manifests: { kustomize: { files: { 'kustomization.yaml': '' } } },
      }),
    );
    assert.doesNotThrow(() => validateSource({ type: 'manifests', manifests: { kustomize: { files: {} } } }));
  });

  it('accepts argocd with repo_url', () => {
    assert.doesNotThrow(() =>
      validateSource({ type: 'argocd', argocd: { repo_url: 'https://git.example.com/app' } }),
    );
  });

  it('rejects services with no services', () => {
    invalid({ type: 'services', services: [] }, 'source.services', /at least one service/);
    invalid({ type: 'services' }, 'source.services');
  });

  it('rejects helm with an empty chart', () => {
    invalid({ type: 'helm', helm: { chart: '' } }, 'source.helm.chart', /is required/);
    invalid({ type: 'helm', helm: { chart: '   ' } }, 'source.helm.chart');
    invalid({ type: 'helm' }, 'source.helm');
  });

  it('rejects manifests with neither inline nor kustomize', () => {
    invalid({ type: 'manifests', manifests: {} }, 'source.manifests', /inline YAML or kustomize/);
    invalid({ type: 'manifests', manifests: { inline: ' \n ' } }, 'source.manifests');
    invalid({ type: 'manifests' }, 'source.manifests');
  });

  it('rejects argocd with no repo', () => {
    invalid({ type: 'argocd', argocd: {} }, 'source.argocd.repo_url', /is required/);
    invalid({ type: 'argocd', argocd: { repo_url: '' } }, 'source.argocd.repo_url');
  });

  it('rejects type "weird" (and a missing type)', () => {
    invalid({ type: 'weird' }, 'source.type', /unknown source type "weird"/);
    invalid({}, 'source.type', /is required/);
    invalid(null, 'source');
  });

  it('does not reject payloads that belong to another type', () => {
    assert.doesNotThrow(() =>
      validateSource({ type: 'helm', helm: { chart: 'redis' }, services: [], argocd: { repo_url: '' } }),
    );
  });

  it('returns the problem instead of throwing with sourceProblem()', () => {
    assert.equal(sourceProblem({ type: 'helm', helm: { chart: 'redis' } }), undefined);
    const problem = sourceProblem({ type: 'weird' });
    assert.ok(problem instanceof SourceError);
    assert.equal(problem.code, 'invalid_source');
  });
});

describe('Source.validate: field types', () => {
  it('checks the helm repo scheme and field types', () => {
    assert.doesNotThrow(() =>
      validateSource({ type: 'helm', helm: { chart: 'redis', repo: 'oci://ghcr.io/x' } }),
    );
    assert.doesNotThrow(() =>
      validateSource({ type: 'helm', helm: { chart: 'redis', repo: 'https://charts.bitnami.com/bitnami' } }),
    );
    invalid(
      { type: 'helm', helm: { chart: 'redis', repo: 'file:///etc' } },
      'source.helm.repo',
      /https:\/\/ or oci:\/\//,
    );
    invalid({ type: 'helm', helm: { chart: 'redis', values: [1] } }, 'source.helm.values');
    invalid({ type: 'helm', helm: { chart: 'redis', version: 3 } }, 'source.helm.version');
  });

  it('keeps kustomize paths inside the tree', () => {
    invalid(
      { type: 'manifests', manifests: { kustomize: { files: { '../etc/passwd': 'x' } } } },
      'source.manifests.kustomize.files["../etc/passwd"]',
    );
    invalid(
      { type: 'manifests', manifests: { kustomize: { files: { 'a.yaml': 5 } } } },
      'source.manifests.kustomize.files["a.yaml"]',
    );
    invalid(
      { type: 'manifests', manifests: { kustomize: { files: {}, root: '/../x' } } },
      'source.manifests.kustomize.root',
    );
    assert.equal(kustomizePath('/base/./k.yaml'), 'base/k.yaml');
    assert.equal(kustomizePath('a/../b'), 'b');
    assert.equal(kustomizePath('/'), '');
    assert.equal(kustomizePath('../x'), undefined);
  });
});

describe('projectSource (create step 2)', () => {
  it('uses source when it has a type', () => {
    const source = projectSource({ source: { type: 'helm', helm: { chart: 'redis' } }, services: [web] });
    assert.equal(source.type, 'helm');
  });

  it('projects services onto a services source', () => {
    assert.deepEqual(projectSource({ services: [web] }), { type: 'services', services: [web] });
  });

  it('fails without either', () => {
    assert.throws(() => projectSource({ services: [] }), /a source or services is required/);
    assert.throws(
      () => projectSource({}),
      (err: unknown) => err instanceof SourceError && err.code === 'invalid_source',
    );
  });
});

describe('JSON round-trips', () => {
  it('keeps the helm source fields (numbers come back as numbers)', () => {
    const helm: HelmSource = {
      repo: 'oci://registry-1.docker.io/bitnamicharts',
      chart: 'redis',
      version: '19.0.1',
      release_name: 'cache',
      namespace: 'data',
      values: { replicaCount: 3, image: { tag: '7.2' }, tls: true, ratio: 0.5, nothing: null },
      values_files: ['prod.yaml'],
    };
    assert.deepEqual(JSON.parse(JSON.stringify(helm)), helm);
  });

  it('keeps the RenderedSource fields', () => {
    const rendered: RenderedSource = {
      type: 'helm',
      helm: {
        repo: 'https://charts.example.com',
        chart: 'web',
        version: '1.0.0',
        values: { replicaCount: 2 },
      },
    };
    const back = JSON.parse(JSON.stringify(rendered)) as RenderedSource;
    assert.deepEqual(back, rendered);
    assert.equal(typeof back.helm?.values?.replicaCount, 'number');
  });
});
