/**
 * `npm test`: one real Temporal dev server (with its Web UI) and one fresh PostgreSQL database for the whole
 * run, the workflow code bundled once, then node's test runner over test/*.test.ts (or the files given).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { stripVTControlCharacters } from 'node:util';
import { MikroORM } from '@mikro-orm/postgresql';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode } from '@temporalio/worker';
import { loadConfig } from '../config/env';
import { prepareDatabase } from '../db/database';
import { ormConfig } from '../db/orm-config';
import { WORKFLOWS_PATH } from '../worker/create-worker';
import { CTRLPLANE_SEARCH_ATTRIBUTES } from '../workflows/search-attributes';
import { REPO_ROOT, temporalCliPath } from './temporal-cli';

const started = Date.now();
const files = process.argv.slice(2).length
  ? process.argv.slice(2)
  : readdirSync(`${REPO_ROOT}test`)
      .filter((f) => f.endsWith('.test.ts'))
      .sort()
      .map((f) => `test/${f}`);

const baseUrl = new URL(loadConfig().DATABASE_URL);
const databaseName = `ctrlplane_test_${Date.now()}`;
const databaseUrl = new URL(baseUrl);
databaseUrl.pathname = `/${databaseName}`;

await dropStaleTestDatabases();
await prepareDatabase(databaseUrl.toString());

const uiPort = await freePort();
const temporal = await TestWorkflowEnvironment.createLocal({
  server: {
    executable: { type: 'existing-path', path: temporalCliPath() },
    searchAttributes: [...CTRLPLANE_SEARCH_ATTRIBUTES],
    ui: true,
    uiPort,
    extraArgs: ['--sqlite-pragma', 'journal_mode=WAL', '--sqlite-pragma', 'synchronous=OFF'],
    log: { format: 'json', level: 'error' },
  },
});

mkdirSync(`${REPO_ROOT}.data/test`, { recursive: true });
const bundlePath = `${REPO_ROOT}.data/test/workflow-bundle.js`;
const { code } = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quietLogger() });
writeFileSync(bundlePath, code);
console.log(
  `test setup: temporal ${temporal.address} (ui http://127.0.0.1:${uiPort}), database ${databaseName}, ` +
    `${files.length} files, ready in ${((Date.now() - started) / 1000).toFixed(1)}s`,
);

/** Reads the spec reporter's closing `ℹ pass N` / `ℹ fail N` lines as they stream by. */
const tally = {
  pass: 0,
  fail: 0,
  pending: '',
  observe(text: string) {
    const lines = (this.pending + text).split('\n');
    this.pending = lines.pop() ?? '';
    for (const line of lines) {
      const match = /^\S*\s*(pass|fail) (\d+)\s*$/u.exec(stripVTControlCharacters(line));
      if (match) this[match[1] as 'pass' | 'fail'] = Number(match[2]);
    }
  },
};

let exitCode = 1;
try {
  exitCode = await new Promise<number>((resolve) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-concurrency=1', ...files],
      {
        cwd: REPO_ROOT,
        stdio: ['inherit', 'pipe', 'inherit'],
        env: {
          ...process.env,
          TEMPORAL_ADDRESS: temporal.address,
          TEMPORAL_UI_URL: `http://127.0.0.1:${uiPort}`,
          DATABASE_URL: databaseUrl.toString(),
          CTRLPLANE_WORKFLOW_BUNDLE: bundlePath,
          LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
        },
      },
    );
    child.stdout.on('data', (chunk: Buffer) => {
      process.stdout.write(chunk);
      tally.observe(chunk.toString('utf8'));
    });
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
} finally {
  await temporal.teardown();
  await dropDatabase(databaseName);
}
console.log(`tests finished in ${((Date.now() - started) / 1000).toFixed(1)}s`);
// The plain closing line CI reads, after the teardown output.
console.log(`tests: ${tally.pass} passed, ${tally.fail} failed`);
process.exit(exitCode);

async function withAdminOrm<T>(fn: (orm: MikroORM) => Promise<T>): Promise<T> {
  const admin = new URL(baseUrl);
  admin.pathname = '/postgres';
  const orm = await MikroORM.init(ormConfig(admin.toString(), { poolMax: 1 }));
  try {
    return await fn(orm);
  } finally {
    await orm.close(true);
  }
}

async function dropDatabase(name: string): Promise<void> {
  await withAdminOrm((orm) =>
    orm.em.getConnection().execute(`drop database if exists "${name}" with (force)`),
  );
}

/** Databases of earlier runs that were killed before they could clean up. */
async function dropStaleTestDatabases(): Promise<void> {
  const stale = await withAdminOrm((orm) =>
    orm.em
      .getConnection()
      .execute<{ datname: string }[]>(
        `select datname from pg_database where datname like 'ctrlplane\\_test\\_%' and datname < 'ctrlplane_test_${Date.now() - 6 * 3600_000}'`,
      ),
  );
  for (const { datname } of stale) await dropDatabase(datname);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
    server.once('error', reject);
  });
}

function quietLogger() {
  const noop = () => {};
  return {
    log: noop,
    trace: noop,
    debug: noop,
    info: noop,
    warn: noop,
    error: (m: string) => console.error(m),
  };
}
