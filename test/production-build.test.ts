import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { issueToken } from '../api/dev-token.ts';
import { REPO_ROOT } from '../scripts/temporal-cli.ts';
import { containersOf, httpdService, removeInstances, removeTenantLeftovers } from './support/docker.ts';
import { fetchText, publicUrl } from './support/docker-fixtures.ts';
import { apiClient } from './support/http.ts';
import { type NodeProcess, spawnPlainNode } from './support/node-process.ts';
import { uniqueTenant } from './support/stack.ts';

// What the production image does (Dockerfile): `npm run build`'s two steps (tsc with tsconfig.build.json, then
// the workflow bundle), here into a directory of this run, and then the migrate, worker and API entry points
// run from it with plain node against the run's real Temporal, PostgreSQL and Docker engine.
describe('the production build runs on plain node', () => {
  const out = join(REPO_ROOT, '.data', 'test', `build-${process.pid}`);
  const bundle = join(out, 'workflow-bundle.js');
  const tenant = uniqueTenant('prodbuild');
  const created: string[] = [];
  const running: NodeProcess[] = [];

  function runToEnd(args: string[], env: Record<string, string> = {}) {
    const { NODE_OPTIONS: _dropped, ...inherited } = process.env;
    const result = spawnSync(process.execPath, args, {
      cwd: REPO_ROOT,
      env: { ...inherited, ...env },
      encoding: 'utf8',
      timeout: 300_000,
    });
    assert.equal(result.status, 0, `${args.join(' ')} failed:\n${result.stdout}\n${result.stderr}`);
    return result.stdout;
  }

  before(async () => {
    await removeTenantLeftovers('ten_prodbuild_');
    rmSync(out, { recursive: true, force: true });
    runToEnd(['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json', '--outDir', out]);
    runToEnd([join(out, 'worker', 'bundle-workflows-cli.js'), bundle]);
  });

  after(async () => {
    for (const child of running) await child.stop('SIGKILL');
    await removeInstances(created);
    rmSync(out, { recursive: true, force: true });
  });

  it('compiles every production entry point to JavaScript and bundles the workflows once', () => {
    for (const entry of ['api/main.js', 'worker/main.js', 'db/migrate-cli.js']) {
      assert.ok(existsSync(join(out, entry)), `${entry} is built`);
    }
    const files = readdirSync(out, { recursive: true, encoding: 'utf8' });
    assert.deepEqual(
      files.filter((f) => f.endsWith('.ts')),
      [],
      'no TypeScript is left to run',
    );
    assert.ok(statSync(bundle).size > 100_000, 'the workflow bundle holds the workflow code');
  });

  it('migrate, worker and API from the build run an instance through its life', async () => {
    const env = {
      LOG_LEVEL: 'info',
      PORT: '0',
      HOST: '127.0.0.1',
      CTRLPLANE_TASK_QUEUE: `test-prodbuild-${process.pid}`,
      CTRLPLANE_BILLING_SCHEDULE_ID: `billing-prodbuild-${process.pid}`,
      CTRLPLANE_JWT_SECRET: `prodbuild-secret-${process.pid}-0123456789`,
      CTRLPLANE_WORKFLOW_BUNDLE: bundle,
      CTRLPLANE_DOCKER_STOP_TIMEOUT: '2',
    };
    // The run's database is migrated already: the compiled migrator finds nothing to do.
    assert.match(runToEnd([join(out, 'db', 'migrate-cli.js')], env), /database is up to date/);

    const worker = spawnPlainNode(join(out, 'worker', 'main.js'), [], env);
    running.push(worker);
    const apiProcess = spawnPlainNode(join(out, 'api', 'main.js'), [], env);
    running.push(apiProcess);
    await worker.waitForLine(/"worker polling"/);
    const listening = JSON.parse(await apiProcess.waitForLine(/"api listening"/)) as { url: string };

    const api = apiClient(
      listening.url,
      await issueToken(env.CTRLPLANE_JWT_SECRET, { sub: 'u', tenant_id: tenant, roles: [] }),
    );
    const create = await api('POST', '/v1/instances?wait=60s', {
      name: 'built',
      services: [httpdService('built')],
    });
    assert.equal(create.status, 201, JSON.stringify(create.body));
    created.push(create.body.id);
    assert.equal(create.body.state, 'running');
    assert.equal((await fetchText(publicUrl(create.body.endpoints, 'web'))).trim(), 'built');

    const removed = await api('DELETE', `/v1/instances/${create.body.id}?wait=60s`);
    assert.equal(removed.status, 204, JSON.stringify(removed.body));
    assert.equal((await containersOf(create.body.id)).length, 0);

    assert.deepEqual(
      worker.lines.filter((l) => /Workflow bundle created/.test(l)),
      [],
      'the worker loaded the prebuilt bundle instead of bundling at start',
    );
    assert.equal(await apiProcess.stop('SIGTERM'), 0, 'the API drains and exits cleanly');
    assert.equal(await worker.stop('SIGTERM'), 0, 'the worker drains and exits cleanly');
  });
});
