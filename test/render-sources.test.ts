import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ServiceSpec } from '../domain/instance.ts';
import type { DeploymentSource } from '../domain/sources/deployment-source.ts';
import { SourceError, type SourceErrorCode } from '../domain/sources/errors.ts';
import { render, renderSync } from '../domain/sources/render.ts';
import { splitManifestDocuments } from '../domain/sources/render-manifests.ts';
import type { TemplateScope } from '../domain/sources/variables.ts';
import { splitYamlDocuments } from '../domain/sources/yaml-split.ts';
import { renderSource } from '../providers/dispatch-render.ts';
import { findKustomize, kustomizeBuild } from '../providers/kustomize.ts';

/** Render of a source: the cases of the Go library's render tests, kept as its behaviour. */

const scope: TemplateScope = {
  var: { tag: '1.25', host: 'app.example.com', replicas: 2, repo: 'deploy', env: 'prod', name: 'cm1' },
  instance: { id: 'inst_1', name: 'web' },
  tenant: { id: 'tnt_1' },
  region: 'us-east',
};

const resources = { cpu_millis: 100, memory_mb: 64, replicas: 1 };

async function rejects(
  p: Promise<unknown>,
  code: SourceErrorCode,
  field?: string | RegExp,
): Promise<SourceError> {
  let caught: unknown;
  try {
    await p;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof SourceError, `expected a SourceError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  if (typeof field === 'string') assert.equal(caught.field, field);
  else if (field) assert.match(caught.message, field);
  return caught;
}

describe('Render: services', () => {
  const svc: ServiceSpec = {
    name: 'web',
    image: 'nginx:{{ .var.tag }}',
    resources,
    env: { REGION: '{{ .region }}', STATIC: 'unchanged', '{{ .region }}': 'key not templated' },
    command: ['/bin/app', '--name={{ .instance.name }}'],
    args: ['--tenant={{ .tenant.id }}'],
    ports: [{ container: 80 }],
    labels: undefined,
  } as ServiceSpec;
  const source: DeploymentSource = { type: 'services', services: [svc] };

  it('templates image, env values, command and args; the rest passes through', async () => {
    const rendered = await render(source, scope);
    assert.equal(rendered.type, 'services');
    const out = rendered.services![0]!;
    assert.equal(out.image, 'nginx:1.25');
    assert.equal(out.env!.REGION, 'us-east');
    assert.equal(out.env!.STATIC, 'unchanged');
    assert.equal(out.env!['{{ .region }}'], 'key not templated');
    assert.deepEqual(out.command, ['/bin/app', '--name=web']);
    assert.deepEqual(out.args, ['--tenant=tnt_1']);
    assert.deepEqual(out.ports, [{ container: 80 }]);
    assert.equal(out.resources, svc.resources);
    assert.equal(svc.image, 'nginx:{{ .var.tag }}', 'the input is not mutated');
  });

  it('fails on an absent var, naming the field', async () => {
    const bad: DeploymentSource = {
      type: 'services',
      services: [{ name: 'web', image: 'nginx', resources, env: { FOO: '{{ .var.absent }}' } }],
    };
    const err = await rejects(render(bad, scope), 'render_failed', 'service web env FOO');
    assert.match(err.message, /^service web env FOO: .*no entry for key "absent"/);
    assert.equal(err.variable, 'absent');
    await rejects(
      render({ type: 'services', services: [{ ...svc, image: '{{ .var.x }}' }] }, scope),
      'render_failed',
      'service web image',
    );
    await rejects(
      render({ type: 'services', services: [{ ...svc, args: ['ok', '{{ bad }}'] }] }, scope),
      'render_failed',
      'service web args[1]',
    );
  });
});

describe('Render: manifests inline', () => {
  it('renders 2 docs with substitutions', async () => {
    const inline =
      'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .var.name }}\n---\n' +
      'apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ .instance.name }}\n';
    const rendered = await render({ type: 'manifests', manifests: { inline } }, scope);
    assert.equal(rendered.manifests?.docs.length, 2);
    assert.match(rendered.manifests!.docs[0]!, /name: cm1/);
    assert.match(rendered.manifests!.docs[1]!, /kind: Service\nmetadata:\n {2}name: web/);
  });

  it('keeps exactly 1 doc of "---\\nkind: Pod\\n---\\n---\\n"', async () => {
    const rendered = renderSync(
      { type: 'manifests', manifests: { inline: '---\nkind: Pod\n---\n---\n' } },
      scope,
    );
    assert.deepEqual(rendered.manifests?.docs, ['kind: Pod\n']);
    assert.deepEqual(splitManifestDocuments('---\nkind: Pod\n---\n---\n', 'x'), ['kind: Pod\n']);
  });

  it('splits at markers only, keeps marker content, handles ... and CRLF', () => {
    assert.deepEqual(splitYamlDocuments('a: 1\r\n--- # c\r\nb: 2\r\n...\r\n'), ['a: 1\n', 'b: 2\n']);
    assert.deepEqual(splitYamlDocuments('x: "---"\n  ---\n'), ['x: "---"\n  ---\n']);
    assert.deepEqual(splitYamlDocuments('--- |\n  text\n'), ['--- |\n  text\n']);
    assert.deepEqual(splitYamlDocuments('   \n\n---\n  \n'), []);
  });

  it('checks YAML with the yaml-aware splitter, naming the document', async () => {
    assert.deepEqual(splitManifestDocuments('# only a comment\n---\nkind: Pod\n', 'manifests inline'), [
      'kind: Pod\n',
    ]);
    const source: DeploymentSource = {
      type: 'manifests',
      manifests: { inline: 'kind: Pod\n---\nkind: [\n' },
    };
    await rejects(renderSource(source, scope), 'render_failed', 'manifests inline document 2');
    await rejects(
      renderSource({ type: 'manifests', manifests: { inline: '- a\n' } }, scope),
      'render_failed',
      /must be a mapping/,
    );
  });

  it('fails on an absent var, naming the field', async () => {
    await rejects(
      render({ type: 'manifests', manifests: { inline: 'x: {{ .var.no }}' } }, scope),
      'render_failed',
      'manifests inline',
    );
  });
});

describe('Render: manifests kustomize', () => {
  const source: DeploymentSource = {
    type: 'manifests',
    manifests: {
      kustomize: {
        files: {
          '/kustomization.yaml': 'namePrefix: prod-\nresources:\n  - deploy.yaml\n',
          '/deploy.yaml':
            'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  replicas: {{ .var.replicas }}\n' +
            '  selector:\n    matchLabels: {app: app}\n  template:\n    metadata:\n      labels: {app: app}\n' +
            '    spec:\n      containers:\n        - name: app\n          image: nginx:{{ .var.tag }}\n',
        },
      },
    },
  };
  const available = findKustomize() !== undefined;

  it('namePrefix prod- and replicas {{ .var.replicas }}=2 → 1 doc with name: prod-app and replicas: 2', {
    skip: available
      ? false
      : 'no kustomize or kubectl binary on PATH (the missing-binary error is tested below)',
  }, async () => {
    const rendered = await renderSource(source, scope);
    assert.equal(rendered.type, 'manifests');
    assert.equal(rendered.manifests?.docs.length, 1);
    assert.match(rendered.manifests!.docs[0]!, /name: prod-app/);
    assert.match(rendered.manifests!.docs[0]!, /replicas: 2/);
    assert.match(rendered.manifests!.docs[0]!, /image: nginx:1.25/);
  });

  it('builds at a root below the tree top', { skip: !available }, async () => {
    const nested: DeploymentSource = {
      type: 'manifests',
      manifests: {
        kustomize: {
          root: '/overlays/prod',
          files: {
            'base/kustomization.yaml': 'resources: [cm.yaml]\n',
            'base/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .instance.name }}\n',
            'overlays/prod/kustomization.yaml': 'namePrefix: prod-\nresources: [../../base]\n',
          },
        },
      },
    };
    const rendered = await renderSource(nested, scope);
    assert.match(rendered.manifests!.docs[0]!, /name: prod-web/);
  });

  it('reports a failed build as render_failed with kustomize output', { skip: !available }, async () => {
    const broken: DeploymentSource = {
      type: 'manifests',
      manifests: { kustomize: { files: { 'kustomization.yaml': 'resources: [missing.yaml]\n' } } },
    };
    const err = await rejects(renderSource(broken, scope), 'render_failed', 'source.manifests.kustomize');
    assert.match(err.message, /kustomize build failed/);
    assert.doesNotMatch(err.message, /ctrlplane-kustomize-/);
  });

  it('fails clearly with unsupported_source when kustomize is not installed', async () => {
    const err = await rejects(
      kustomizeBuild({ files: { 'kustomization.yaml': '' }, root: '' }, { path: '' }),
      'unsupported_source',
      'source.manifests.kustomize',
    );
    assert.match(err.message, /kustomize is not installed/);
    await rejects(
      renderSource(source, scope, { kustomize: { path: '/nonexistent' } }),
      'unsupported_source',
      /not installed/,
    );
  });

  it('without a builder (workflow-side render) a kustomize source is unsupported_source', async () => {
    await rejects(render(source, scope), 'unsupported_source', /kustomize is not installed/);
    assert.throws(
      () => renderSync(source, scope),
      (e: unknown) => e instanceof SourceError && e.code === 'unsupported_source',
    );
  });

  it('templates every file before the build, naming the file on error', async () => {
    let seen: Record<string, string> = {};
    const rendered = await render(source, scope, {
      kustomize: async (tree) => {
        seen = tree.files;
        assert.equal(tree.root, '');
        return 'a: 1\n---\nb: 2\n';
      },
    });
    assert.deepEqual(Object.keys(seen).sort(), ['deploy.yaml', 'kustomization.yaml']);
    assert.match(seen['deploy.yaml']!, /replicas: 2/);
    assert.deepEqual(rendered.manifests?.docs, ['a: 1\n', 'b: 2\n']);
    const bad: DeploymentSource = {
      type: 'manifests',
      manifests: { kustomize: { files: { 'k.yaml': '{{ .var.zz }}' } } },
    };
    await rejects(
      render(bad, scope, { kustomize: async () => '' }),
      'render_failed',
      'manifests kustomize file k.yaml',
    );
  });
});

describe('Render: helm', () => {
  const source: DeploymentSource = {
    type: 'helm',
    helm: {
      repo: 'https://charts.example.com',
      chart: 'web-{{ .var.tag }}',
      version: '1.2.3',
      release_name: 'rel',
      namespace: 'ns',
      values_files: ['prod.yaml'],
      values: {
        image: { tag: '{{ .var.tag }}', repository: 'nginx' },
        replicaCount: 3,
        tls: true,
        nothing: null,
        hosts: ['{{ .var.host }}', 'static.example.com'],
        '{{ .region }}': 'keys are not templated',
        list: [{ name: '{{ .instance.name }}' }, 7],
      },
    },
  };

  it('deep-templates string leaves, keeps numbers/bools/null, copies chart/version/repo, drops values_files', async () => {
    const rendered = await render(source, scope);
    assert.deepEqual(rendered, {
      type: 'helm',
      helm: {
        repo: 'https://charts.example.com',
        chart: 'web-{{ .var.tag }}',
        version: '1.2.3',
        release_name: 'rel',
        namespace: 'ns',
        values: {
          image: { tag: '1.25', repository: 'nginx' },
          replicaCount: 3,
          tls: true,
          nothing: null,
          hosts: ['app.example.com', 'static.example.com'],
          '{{ .region }}': 'keys are not templated',
          list: [{ name: 'web' }, 7],
        },
      },
    });
  });

  it('names the values path on error', async () => {
    const bad: DeploymentSource = {
      type: 'helm',
      helm: { chart: 'c', values: { a: { b: ['x', '{{ .var.no }}'] } } },
    };
    await rejects(render(bad, scope), 'render_failed', 'helm values a.b[1]');
  });
});

describe('Render: argocd', () => {
  it('templates repo_url, path and dest_namespace (and project, target_revision, dest_server)', async () => {
    const rendered = await render(
      {
        type: 'argocd',
        argocd: {
          project: '{{ .tenant.id }}',
          repo_url: 'https://git.example.com/{{ .var.repo }}.git',
          path: 'envs/{{ .var.env }}',
          target_revision: 'v{{ .var.tag }}',
          dest_server: 'https://{{ .region }}.k8s',
          dest_namespace: '{{ .instance.name }}-{{ .var.env }}',
          helm: { parameters: { p: '{{ .var.tag }}' }, value_files: ['v.yaml'] },
          sync_policy: { automated: true, self_heal: true },
        },
      },
      scope,
    );
    assert.deepEqual(rendered.argocd, {
      project: 'tnt_1',
      repo_url: 'https://git.example.com/deploy.git',
      path: 'envs/prod',
      target_revision: 'v1.25',
      dest_server: 'https://us-east.k8s',
      dest_namespace: 'web-prod',
      helm: { parameters: { p: '{{ .var.tag }}' }, value_files: ['v.yaml'] },
      sync_policy: { automated: true, self_heal: true },
    });
  });

  it('names the field on error', async () => {
    await rejects(
      render({ type: 'argocd', argocd: { repo_url: '{{ .var.no }}' } }, scope),
      'render_failed',
      'argocd repo_url',
    );
  });
});

describe('Render: types', () => {
  it('fails an unknown type with unsupported_source', async () => {
    await rejects(render({ type: 'weird' }, scope), 'unsupported_source', 'source.type');
  });

  it('fails a type without its payload with invalid_source', async () => {
    await rejects(render({ type: 'helm' }, scope), 'invalid_source', 'source.helm');
  });
});
