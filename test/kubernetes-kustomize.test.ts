/**
 * The kustomize build of a manifests source (providers/kustomize.ts): it runs where a source is created (the API
 * process), so nothing in the tree may make kustomize fetch anything. Remote references are refused before kustomize
 * runs (a stand-in binary records whether it ran); local trees still build, through the real kustomize or kubectl
 * when one is on the PATH (under `npm test`, .tools/bin's kubectl v1.33.13 comes first).
 */
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SourceError } from '../domain/sources/errors.ts';
import { checkKustomizeTree, findKustomize, kustomizeBuild } from '../providers/kustomize.ts';

const configMap = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  a: b\n';

function refusedFor(file: string, pattern: RegExp): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof SourceError, String(err));
    assert.equal(err.code, 'invalid_source');
    assert.ok(err.message.includes(JSON.stringify(file)), `names the file ${file}: ${err.message}`);
    assert.match(err.message, pattern);
    return true;
  };
}

describe('kustomize: remote references are refused before kustomize runs', () => {
  let dir: string;
  let binary: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fake-kustomize-'));
    binary = join(dir, 'kustomize');
    // Records that it ran and its environment; fails with a long complaint.
    await writeFile(
      binary,
      `#!/bin/sh\necho "$@" >> "${dir}/calls"\nenv > "${dir}/env"\nhead -c 5000 /dev/zero | tr '\\0' 'x' >&2\nexit 1\n`,
    );
    await chmod(binary, 0o755);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const remote: Array<[string, Record<string, string>, string]> = [
    [
      'an https resource',
      { 'kustomization.yaml': 'resources:\n  - https://example.com/app.yaml\n' },
      'kustomization.yaml',
    ],
    [
      'a github.com base with a ref',
      {
        'kustomization.yaml': 'resources:\n  - app.yaml\n',
        'app.yaml': configMap,
        'overlays/prod/kustomization.yaml':
          'resources:\n  - ../../\n  - github.com/kubernetes-sigs/kustomize//examples/multibases?ref=v1.0.6\n',
      },
      'overlays/prod/kustomization.yaml',
    ],
    [
      'a git@ base',
      { 'kustomization.yaml': 'bases:\n  - git@github.com:org/repo.git//base\n' },
      'kustomization.yaml',
    ],
    [
      'a git:: component',
      { 'kustomization.yaml': 'components:\n  - git::https://host/x\n' },
      'kustomization.yaml',
    ],
    [
      'a patch from a URL',
      {
        'kustomization.yaml':
          'resources: [app.yaml]\npatches:\n  - path: http://169.254.169.254/latest/meta-data\n',
        'app.yaml': configMap,
      },
      'kustomization.yaml',
    ],
    [
      'a strategic merge patch from a URL',
      { Kustomization: 'patchesStrategicMerge:\n  - https://example.com/p.yaml\n' },
      'Kustomization',
    ],
    [
      'a configMapGenerator file from a URL',
      {
        'kustomization.yml':
          'configMapGenerator:\n  - name: c\n    files:\n      - key=https://example.com/secret.txt\n',
      },
      'kustomization.yml',
    ],
    [
      'a transformer config with a remote path',
      {
        'kustomization.yaml': 'transformers: [t.yaml]\n',
        't.yaml':
          'apiVersion: builtin\nkind: PatchTransformer\nmetadata:\n  name: t\npath: https://example.com/p.yaml\n',
      },
      't.yaml',
    ],
    ['an absolute path', { 'kustomization.yaml': 'resources:\n  - /etc/kubernetes\n' }, 'kustomization.yaml'],
    [
      'a path leaving the tree',
      { 'base/kustomization.yaml': 'resources:\n  - ../../../../etc\n' },
      'base/kustomization.yaml',
    ],
    [
      'a host-qualified repo without scheme',
      { 'kustomization.yaml': 'resources:\n  - gitlab.com/org/repo\n' },
      'kustomization.yaml',
    ],
    [
      'a repo on an unknown host',
      { 'kustomization.yaml': 'resources:\n  - git.corp.internal/org/repo//deploy\n' },
      'kustomization.yaml',
    ],
    [
      'helm charts',
      { 'kustomization.yaml': 'helmCharts:\n  - name: x\n    repo: https://charts.example.com\n' },
      'kustomization.yaml',
    ],
  ];

  for (const [what, files, file] of remote) {
    it(`refuses ${what}, naming ${file}`, async () => {
      await assert.rejects(kustomizeBuild({ files, root: '/' }, { binary }), refusedFor(file, /not allowed/));
      await assert.rejects(readFile(join(dir, 'calls'), 'utf8'), 'kustomize did not run');
    });
  }

  it('leaves a plain missing file to kustomize (render_failed, not a refusal)', async () => {
    await assert.rejects(
      kustomizeBuild(
        { files: { 'kustomization.yaml': 'resources: [missing.yaml]\n' }, root: '/' },
        { binary },
      ),
      (err: unknown) => err instanceof SourceError && err.code === 'render_failed',
    );
    await rm(join(dir, 'calls'), { force: true });
  });

  it('accepts local resources, bases, patches and generators of the tree', () => {
    checkKustomizeTree({
      'base/kustomization.yaml': 'resources:\n  - app.yaml\n',
      'base/app.yaml': configMap,
      'overlays/prod/kustomization.yaml': [
        'resources:',
        '  - ../../base',
        'patches:',
        '  - path: patch.yaml',
        '  - patch: |-',
        '      - op: add',
        '        path: /data/url',
        '        value: https://example.com/',
        '    target: { kind: ConfigMap }',
        'configMapGenerator:',
        '  - name: gen',
        '    files: [conf=files/app.conf]',
        'images:',
        '  - name: app',
        '    newName: github.com/org/app',
        '',
      ].join('\n'),
      'overlays/prod/patch.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  c: d\n',
      'overlays/prod/files/app.conf': 'x=1\n',
    });
  });

  it("trims kustomize's complaint and runs it without this process's environment", async () => {
    process.env.CTRLPLANE_TEST_SECRET_FOR_KUSTOMIZE = 'do-not-pass';
    try {
      await assert.rejects(
        kustomizeBuild(
          { files: { 'kustomization.yaml': 'resources: [app.yaml]\n', 'app.yaml': configMap }, root: '/' },
          { binary },
        ),
        (err: unknown) => {
          assert.ok(err instanceof SourceError, String(err));
          assert.equal(err.code, 'render_failed');
          assert.ok(err.message.length < 500, `trimmed: ${err.message.length} characters`);
          assert.match(err.message, /x{300}… \(4700 more characters\)$/);
          return true;
        },
      );
      const env = await readFile(join(dir, 'env'), 'utf8');
      assert.doesNotMatch(env, /CTRLPLANE_TEST_SECRET_FOR_KUSTOMIZE/);
      assert.match(env, /^HTTPS_PROXY=http:\/\/127\.0\.0\.1:9$/m);
      assert.match(env, /^GIT_ALLOW_PROTOCOL=none$/m);
    } finally {
      delete process.env.CTRLPLANE_TEST_SECRET_FOR_KUSTOMIZE;
      await rm(join(dir, 'calls'), { force: true });
    }
  });
});

// A real build, when a kustomize or kubectl binary is on the PATH (not registered otherwise).
if (findKustomize()) {
  describe('kustomize: a local tree still builds (real binary from PATH)', () => {
    it('builds an overlay over a base with a patch and a generator', async () => {
      const out = await kustomizeBuild({
        files: {
          'base/kustomization.yaml': 'resources:\n  - app.yaml\n',
          'base/app.yaml': configMap,
          'overlays/prod/kustomization.yaml':
            'resources:\n  - ../../base\npatches:\n  - path: patch.yaml\nconfigMapGenerator:\n  - name: gen\n    files: [conf=app.conf]\n',
          'overlays/prod/patch.yaml':
            'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  c: d\n',
          'overlays/prod/app.conf': 'x=1\n',
        },
        root: '/overlays/prod',
      });
      assert.match(out, /name: app\n/);
      assert.match(out, /c: d/);
      assert.match(out, /name: gen-[a-z0-9]+/);
    });
  });
}
