import { mkdirSync } from 'node:fs';
import { MikroORM } from '@mikro-orm/postgresql';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { loadConfig } from '../config/env.ts';
import { prepareDatabase } from '../db/database.ts';
import { ormConfig } from '../db/orm-config.ts';
import { ERRORS_ONLY_LOGGER, writeWorkflowBundle } from '../worker/workflow-bundle.ts';
import { CTRLPLANE_SEARCH_ATTRIBUTES } from '../workflows/search-attributes.ts';
import { freePort } from './free-port.ts';
import { type LocalKubernetes, startLocalKubernetes, stopAbandoned } from './kubernetes-cluster.ts';
import { REPO_ROOT, temporalCliPath } from './temporal-cli.ts';

/** What a test run (or the history recorder) gets: the environment variables that point at it. */
export interface TestEnvironment {
  env: Record<string, string>;
  teardown(): Promise<void>;
}

/**
 * One real Temporal dev server (with its Web UI, the search attributes registered, never downloaded: the
 * CLI setup.sh found or built), one fresh PostgreSQL database, and the workflow code bundled once. With
 * `kubernetes`, also a Kubernetes cluster for the run (see startTestKubernetes).
 */
export async function startTestEnvironment(options: { kubernetes?: boolean } = {}): Promise<TestEnvironment> {
  const kubernetes = options.kubernetes ? startTestKubernetes() : undefined;
  try {
    const rest = await startTemporalAndDatabase();
    const cluster = await kubernetes;
    if (!cluster) return rest;
    return {
      env: { ...rest.env, ...cluster.env },
      async teardown() {
        await Promise.all([rest.teardown(), cluster.teardown()]);
      },
    };
  } catch (err) {
    await (await kubernetes?.catch(() => undefined))?.teardown();
    throw err;
  }
}

/**
 * The cluster the Kubernetes tests run against, given to them as CTRLPLANE_TEST_KUBECONFIG (and taken out of
 * KUBECONFIG, so the other tests' stacks do not register a kubernetes provider):
 * - KUBECONFIG set: that cluster (CTRLPLANE_TEST_KUBERNETES=external); nothing is started;
 * - otherwise the local control plane of scripts/k8s-test-cluster.sh, fresh for this run under .data/test/
 *   (CTRLPLANE_TEST_KUBERNETES=local), stopped and removed by the teardown.
 */
export async function startTestKubernetes(): Promise<TestEnvironment> {
  const external = process.env.KUBECONFIG?.trim();
  if (external) {
    return {
      env: {
        CTRLPLANE_TEST_KUBECONFIG: external,
        CTRLPLANE_TEST_KUBERNETES: 'external',
        KUBECONFIG: '',
      },
      async teardown() {},
    };
  }
  const parent = `${REPO_ROOT}.data/test`;
  await stopAbandoned(parent, 'k8s-');
  const cluster: LocalKubernetes = await startLocalKubernetes(`${parent}/k8s-${process.pid}`);
  return {
    env: {
      CTRLPLANE_TEST_KUBECONFIG: cluster.kubeconfig,
      CTRLPLANE_TEST_KUBERNETES: 'local',
      KUBECONFIG: '',
    },
    async teardown() {
      await cluster.stop({ removeState: true });
    },
  };
}

async function startTemporalAndDatabase(): Promise<TestEnvironment> {
  const baseUrl = new URL(loadConfig().DATABASE_URL);
  const databaseName = `ctrlplane_test_${Date.now()}`;
  const databaseUrl = new URL(baseUrl);
  databaseUrl.pathname = `/${databaseName}`;

  await dropStaleTestDatabases(baseUrl);
  await prepareDatabase(databaseUrl.toString());

  const uiPort = await freePort();
  const temporal = await TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: temporalCliPath() },
      searchAttributes: [...CTRLPLANE_SEARCH_ATTRIBUTES],
      ui: true,
      uiPort,
      extraArgs: [
        '--sqlite-pragma',
        'journal_mode=WAL',
        '--sqlite-pragma',
        'synchronous=OFF',
        // Eager activity dispatch (off by default in the server): an activity scheduled by a workflow task comes
        // back in the answer to that task's completion, instead of one more trip through the matching service.
        '--dynamic-config-value',
        'system.enableActivityEagerExecution=true',
      ],
      log: { format: 'json', level: 'error' },
    },
  });

  mkdirSync(`${REPO_ROOT}.data/test`, { recursive: true });
  const bundlePath = `${REPO_ROOT}.data/test/workflow-bundle-${process.pid}.js`;
  await writeWorkflowBundle(bundlePath, ERRORS_ONLY_LOGGER);

  return {
    env: {
      TEMPORAL_ADDRESS: temporal.address,
      TEMPORAL_UI_URL: `http://127.0.0.1:${uiPort}`,
      DATABASE_URL: databaseUrl.toString(),
      CTRLPLANE_WORKFLOW_BUNDLE: bundlePath,
    },
    async teardown() {
      await temporal.teardown();
      await dropDatabase(baseUrl, databaseName);
    },
  };
}

async function withAdminOrm<T>(baseUrl: URL, fn: (orm: MikroORM) => Promise<T>): Promise<T> {
  const admin = new URL(baseUrl);
  admin.pathname = '/postgres';
  const orm = await MikroORM.init(ormConfig(admin.toString(), { poolMax: 1 }));
  try {
    return await fn(orm);
  } finally {
    await orm.close(true);
  }
}

async function dropDatabase(baseUrl: URL, name: string): Promise<void> {
  await withAdminOrm(baseUrl, (orm) =>
    orm.em.getConnection().execute(`drop database if exists "${name}" with (force)`),
  );
}

/** Databases of earlier runs that were killed before they could clean up (older than six hours). */
async function dropStaleTestDatabases(baseUrl: URL): Promise<void> {
  const stale = await withAdminOrm(baseUrl, (orm) =>
    orm.em
      .getConnection()
      .execute<{ datname: string }[]>(
        `select datname from pg_database where datname like 'ctrlplane\\_test\\_%' and datname < 'ctrlplane_test_${Date.now() - 6 * 3600_000}'`,
      ),
  );
  for (const { datname } of stale) await dropDatabase(baseUrl, datname);
}
