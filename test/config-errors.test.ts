import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { REPO_ROOT } from '../scripts/temporal-cli.ts';

/**
 * The real entry points (`npm run api`, `npm run worker`, and what `npm start` runs after setup) started as
 * processes with a bad environment: one line per bad variable, naming it and saying why, exit code 2, no stack.
 */
const ENTRY_POINTS = {
  api: 'api/main.ts',
  worker: 'worker/main.ts',
  start: 'scripts/start.ts',
} as const;

function start(entry: keyof typeof ENTRY_POINTS, env: Record<string, string>) {
  const result = spawnSync(process.execPath, ['--import', 'tsx', ENTRY_POINTS[entry]], {
    cwd: REPO_ROOT,
    // Nothing reachable: a process that got past its configuration would fail differently (and slowly).
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/root',
      TEMPORAL_ADDRESS: '127.0.0.1:1',
      ...env,
    },
    encoding: 'utf8',
    timeout: 60_000,
  });
  const lines = result.stderr.split('\n').filter((l) => l.trim() !== '');
  return { code: result.status, lines, output: `${result.stdout}${result.stderr}` };
}

const KEY = 'k'.repeat(40);

const BAD = {
  CTRLPLANE_JWT_SECRET: 'too-short',
  CTRLPLANE_BILLING_SWEEP_INTERVAL: 'every now and then',
  PORT: 'eighty',
};

describe('a bad configuration stops a process with one line per bad variable and exit code 2', () => {
  for (const entry of Object.keys(ENTRY_POINTS) as (keyof typeof ENTRY_POINTS)[]) {
    it(`${entry}: each bad variable named with its reason, no stack trace`, () => {
      const { code, lines, output } = start(entry, BAD);
      assert.equal(code, 2, output);
      assert.deepEqual(lines.sort(), [
        'config: CTRLPLANE_BILLING_SWEEP_INTERVAL: must be a positive duration such as 5m, 1h or 3d',
        'config: CTRLPLANE_JWT_SECRET: must be at least 16 characters',
        'config: PORT: must be a number, not "eighty"',
      ]);
      assert.doesNotMatch(output, /^\s+at /m, 'no stack trace');
    });
  }

  it('api: no way to verify tokens is a configuration error too', () => {
    const { code, lines } = start('api', {});
    assert.equal(code, 2);
    assert.equal(lines.length, 1);
    assert.match(lines[0] ?? '', /^config: CTRLPLANE_JWT_SECRET: not set: .*CTRLPLANE_JWKS_URL/);
  });

  it('api: a JWKS without the issuer and audience its tokens must carry is refused, naming each', () => {
    const jwks = { CTRLPLANE_JWKS_URL: 'https://idp.example.test/.well-known/jwks.json' };
    const neither = start('api', jwks);
    assert.equal(neither.code, 2, neither.output);
    assert.deepEqual(neither.lines.sort(), [
      'config: CTRLPLANE_JWT_AUDIENCE: not set: required with CTRLPLANE_JWKS_URL (tokens must carry this aud)',
      'config: CTRLPLANE_JWT_ISSUER: not set: required with CTRLPLANE_JWKS_URL (tokens must carry this iss)',
    ]);
    const noAudience = start('api', { ...jwks, CTRLPLANE_JWT_ISSUER: 'https://idp.example.test/' });
    assert.equal(noAudience.code, 2, noAudience.output);
    assert.deepEqual(noAudience.lines, [
      'config: CTRLPLANE_JWT_AUDIENCE: not set: required with CTRLPLANE_JWKS_URL (tokens must carry this aud)',
    ]);
    assert.doesNotMatch(`${neither.output}${noAudience.output}`, /^\s+at /m, 'no stack trace');
  });

  it('worker: no spec-hash key, or one too short, is a configuration error', () => {
    const missing = start('worker', {});
    assert.equal(missing.code, 2, missing.output);
    assert.equal(missing.lines.length, 1, missing.output);
    assert.match(missing.lines[0] ?? '', /^config: CTRLPLANE_SPEC_HASH_KEY: not set: the worker signs/);
    const short = start('worker', { CTRLPLANE_SPEC_HASH_KEY: 'short' });
    assert.deepEqual(short.lines, ['config: CTRLPLANE_SPEC_HASH_KEY: must be at least 32 characters']);
  });

  it('worker: bad Docker limits, port range or image allowlist are named the same way', () => {
    const bad = start('worker', {
      CTRLPLANE_SPEC_HASH_KEY: KEY,
      CTRLPLANE_DOCKER_HOST_PORT_RANGE: '40000-30000',
      CTRLPLANE_DOCKER_HOST_PORT_ADDRESS: 'everywhere',
    });
    assert.equal(bad.code, 2, bad.output);
    assert.deepEqual(bad.lines.sort(), [
      'config: CTRLPLANE_DOCKER_HOST_PORT_ADDRESS: must be an IPv4 or IPv6 address such as 127.0.0.1',
      'config: CTRLPLANE_DOCKER_HOST_PORT_RANGE: must be a range of ports between 1 and 65535, the first not above the last',
    ]);
    const defaults = start('worker', {
      CTRLPLANE_SPEC_HASH_KEY: KEY,
      CTRLPLANE_DOCKER_DEFAULT_MEMORY_MB: '9000',
    });
    assert.deepEqual(defaults.lines, [
      'config: CTRLPLANE_DOCKER_DEFAULT_MEMORY_MB: must not be above CTRLPLANE_DOCKER_MAX_MEMORY_MB (8192)',
    ]);
    const images = start('worker', {
      CTRLPLANE_SPEC_HASH_KEY: KEY,
      CTRLPLANE_DOCKER_ALLOWED_IMAGES: 'ok/*, sha256:abc',
    });
    assert.equal(images.code, 2, images.output);
    assert.deepEqual(images.lines, [
      'config: CTRLPLANE_DOCKER_ALLOWED_IMAGES: image allowlist: "sha256:abc" is not an image name or a prefix/*',
    ]);
  });

  it('worker: a bad secret store or Kubernetes setting is named the same way', () => {
    const store = start('worker', { CTRLPLANE_SPEC_HASH_KEY: KEY, CTRLPLANE_SECRET_STORE: 'vault' });
    assert.equal(store.code, 2, store.output);
    assert.deepEqual(store.lines, [
      'config: CTRLPLANE_SECRET_STORE: must be env, env:<PREFIX> or dir:/absolute/path, not "vault"',
    ]);
    const kubernetes = start('worker', { CTRLPLANE_SPEC_HASH_KEY: KEY, CTRLPLANE_K8S_ENABLED: 'maybe' });
    assert.equal(kubernetes.code, 2, kubernetes.output);
    assert.deepEqual(kubernetes.lines, ['config: CTRLPLANE_K8S_ENABLED: expected a boolean, got "maybe"']);
  });

  it('api and worker: a variable under its old CP_K8S_ name stops the process, naming the new name', () => {
    for (const role of ['api', 'worker'] as const) {
      const renamed = start(role, { CTRLPLANE_SPEC_HASH_KEY: KEY, CP_K8S_KUBECONFIG: '/etc/kubeconfig' });
      assert.equal(renamed.code, 2, renamed.output);
      assert.deepEqual(renamed.lines, [
        'config: CP_K8S_KUBECONFIG: is no longer read: it was renamed CTRLPLANE_K8S_KUBECONFIG; set that instead',
      ]);
    }
  });
});
