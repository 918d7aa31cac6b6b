/**
 * `npm start`: the whole dev stack in one terminal. Starts the Temporal dev server (persistent SQLite under
 * .data/, Web UI on 8233, search attributes registered) unless TEMPORAL_ADDRESS is set, prepares PostgreSQL,
 * starts the worker and the API, and prints where everything is plus a dev token. Ctrl-C stops it all.
 * With CTRLPLANE_DEV_KUBERNETES=1 it also starts the local Kubernetes control plane (scripts/k8s-test-cluster.sh,
 * state kept in .data/k8s) and gives it to the worker and API, which then register the `kubernetes` provider.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { issueToken } from '../api/dev-token.ts';
import { OPERATOR_ROLE, TENANT_ADMIN_ROLE } from '../api/roles.ts';
import { exitOnConfigError } from '../config/config-error.ts';
import { loadConfig } from '../config/env.ts';
import { prepareDatabase } from '../db/database.ts';
import { CTRLPLANE_SEARCH_ATTRIBUTES } from '../workflows/search-attributes.ts';
import { type LocalKubernetes, startLocalKubernetes, TOOLS_BIN } from './kubernetes-cluster.ts';
import { REPO_ROOT, searchAttributeFlags, temporalCliPath } from './temporal-cli.ts';

const DEV_TEMPORAL_PORT = 7233;
const DEV_UI_PORT = 8233;
const DEV_TENANT = 'ten_dev';
/** The operator token's own tenant: its tenant routes act there, never in ten_dev. */
const DEV_OPERATOR_TENANT = 'ten_dev_operator';

// The dev stack signs its own tokens with a random secret kept under .data/ (never a built-in one).
if (!process.env.CTRLPLANE_JWT_SECRET && !process.env.CTRLPLANE_JWKS_URL) {
  const secretFile = `${REPO_ROOT}.data/dev-jwt-secret`;
  mkdirSync(`${REPO_ROOT}.data`, { recursive: true });
  if (!existsSync(secretFile)) writeFileSync(secretFile, randomBytes(32).toString('hex'), { mode: 0o600 });
  process.env.CTRLPLANE_JWT_SECRET = readFileSync(secretFile, 'utf8').trim();
}
// The key of the Docker spec-hash HMAC, kept under .data/ like the token secret, so restarts adopt containers.
if (!process.env.CTRLPLANE_SPEC_HASH_KEY) {
  const keyFile = `${REPO_ROOT}.data/dev-spec-hash-key`;
  if (!existsSync(keyFile)) writeFileSync(keyFile, randomBytes(32).toString('hex'), { mode: 0o600 });
  process.env.CTRLPLANE_SPEC_HASH_KEY = readFileSync(keyFile, 'utf8').trim();
}
// The key that encrypts webhook secrets in the database, kept under .data/ so stored secrets keep opening.
if (!process.env.CTRLPLANE_WEBHOOK_SECRET_KEY) {
  const keyFile = `${REPO_ROOT}.data/dev-webhook-secret-key`;
  if (!existsSync(keyFile)) writeFileSync(keyFile, randomBytes(32).toString('hex'), { mode: 0o600 });
  process.env.CTRLPLANE_WEBHOOK_SECRET_KEY = readFileSync(keyFile, 'utf8').trim();
}
// The dev stack's example image (made by setup with `docker import`) runs for every tenant.
process.env.CTRLPLANE_DOCKER_ALLOWED_IMAGES ??= 'docker.io/ctrlplane-test/*';
const config = exitOnConfigError(loadConfig);
const children: { name: string; process: ChildProcess }[] = [];
mkdirSync(`${REPO_ROOT}.data/logs`, { recursive: true });

let temporalAddress = process.env.TEMPORAL_ADDRESS;
let temporalUi = process.env.TEMPORAL_UI_URL ?? '(your Temporal cluster UI)';
if (!temporalAddress) {
  temporalAddress = `127.0.0.1:${DEV_TEMPORAL_PORT}`;
  temporalUi = `http://localhost:${DEV_UI_PORT}`;
  if (await portAnswers('127.0.0.1', DEV_TEMPORAL_PORT)) {
    console.log(`start: a Temporal server already answers on ${temporalAddress}; using it`);
  } else {
    const log = openSync(`${REPO_ROOT}.data/logs/temporal.log`, 'a');
    const temporal = spawn(
      temporalCliPath(),
      [
        'server',
        'start-dev',
        '--ip',
        '127.0.0.1',
        '--port',
        String(DEV_TEMPORAL_PORT),
        '--ui-port',
        String(DEV_UI_PORT),
        '--db-filename',
        `${REPO_ROOT}.data/temporal.sqlite`,
        '--namespace',
        config.TEMPORAL_NAMESPACE,
        ...searchAttributeFlags(CTRLPLANE_SEARCH_ATTRIBUTES),
      ],
      { stdio: ['ignore', log, log] },
    );
    children.push({ name: 'temporal', process: temporal });
    await waitFor('the Temporal dev server', () => portAnswers('127.0.0.1', DEV_TEMPORAL_PORT), 60_000);
  }
}

const applied = await prepareDatabase(config.DATABASE_URL);
console.log(`start: database ready${applied.length ? ` (applied ${applied.join(', ')})` : ''}`);

const env: NodeJS.ProcessEnv = { ...process.env, TEMPORAL_ADDRESS: temporalAddress };
let kubernetes: LocalKubernetes | undefined;
if (/^(1|true|yes|on)$/i.test(process.env.CTRLPLANE_DEV_KUBERNETES ?? '')) {
  console.log('start: starting the local Kubernetes control plane (.data/k8s)');
  try {
    kubernetes = await startLocalKubernetes(`${REPO_ROOT}.data/k8s`);
  } catch (err) {
    console.error(`start: ${(err as Error).message}`);
    await shutdown(1);
  }
  env.CTRLPLANE_K8S_KUBECONFIG = kubernetes?.kubeconfig;
  // helm (and kubectl for kustomize) as built by setup.
  env.PATH = `${TOOLS_BIN}:${process.env.PATH ?? ''}`;
}
// With a fleet file (CTRLPLANE_PROVIDERS_FILE), every provider an agent drives gets its agent process here.
const agents = (config.fleet?.providers ?? []).filter((p) => p.agent).map((p) => p.name);
for (const [name, args] of [
  ['worker', ['worker/main.ts']],
  ...agents.map((provider) => [`agent ${provider}`, ['worker/main.ts', '--provider', provider]] as const),
  ['api', ['api/main.ts']],
] as const) {
  children.push({
    name,
    process: spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: REPO_ROOT, env, stdio: 'inherit' }),
  });
}
const apiUrl = `http://localhost:${config.PORT}`;
await waitFor(
  'the API',
  async () => (await fetch(`${apiUrl}/healthz`).catch(() => undefined))?.ok === true,
  60_000,
);

const token = await issueToken(
  config.CTRLPLANE_JWT_SECRET ?? '',
  { sub: 'dev-user', tenant_id: DEV_TENANT, roles: [TENANT_ADMIN_ROLE] },
  '7d',
);
// The platform's powers (suspend, billing, capacity, other tenants' lists) are this token's, never the tenant's.
const operatorToken = await issueToken(
  config.CTRLPLANE_JWT_SECRET ?? '',
  { sub: 'dev-operator', tenant_id: DEV_OPERATOR_TENANT, roles: [OPERATOR_ROLE] },
  '7d',
);
console.log(`
ctrlplane is running
  API          ${apiUrl}   (GET /readyz, /v1/instances)
  Temporal UI  ${temporalUi}
  Temporal     ${temporalAddress}  namespace ${config.TEMPORAL_NAMESPACE}, task queue ${config.CTRLPLANE_TASK_QUEUE}
${config.fleet ? `  Fleet        ${config.fleet.path}: ${config.fleet.providers.map((p) => (p.agent ? `${p.name} (agent)` : p.name)).join(', ')}\n` : ''}${
  kubernetes
    ? `  Kubernetes   provider "kubernetes", kubectl: export KUBECONFIG=${kubernetes.kubeconfig}; .tools/bin/kubectl get pods -A\n`
    : ''
}  Dev token    (tenant ${DEV_TENANT}, role admin, 7 days)
    export CTRLPLANE_TOKEN=${token}
  Operator     (role operator: suspend/unsuspend any instance, billing, capacity; 7 days)
    export CTRLPLANE_OPERATOR_TOKEN=${operatorToken}
  Try
    curl -s -H "Authorization: Bearer $CTRLPLANE_TOKEN" -H 'content-type: application/json' \\
      -d '{"name":"hello","services":[{"name":"web","image":"ctrlplane-test/busybox:1","command":["httpd","-f","-p","80","-h","/"],"ports":[{"container":80}]}]}' \\
      '${apiUrl}/v1/instances?wait=true'${
        kubernetes
          ? `
  Try on Kubernetes (kwok's fake node reports the pods Running; no container runs)
    curl -s -H "Authorization: Bearer $CTRLPLANE_TOKEN" -H 'content-type: application/json' \\
      -d '{"name":"hello-k8s","provider_name":"kubernetes","services":[{"name":"web","image":"nginx:1.27","ports":[{"container":80}],"resources":{"replicas":2}}]}' \\
      '${apiUrl}/v1/instances?wait=true'`
          : ''
      }
Ctrl-C stops everything started here.
`);

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => void shutdown(0));
for (const child of children) {
  child.process.on('exit', (code) => {
    if (!stopping) {
      console.error(`start: ${child.name} exited (${code}); stopping the stack`);
      void shutdown(1);
    }
  });
}

async function shutdown(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  // API and worker first (they drain in-flight work), the Temporal server last.
  for (const child of [...children].reverse()) {
    if (child.process.exitCode !== null || child.process.signalCode !== null) continue;
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => child.process.kill('SIGKILL'), 40_000);
      child.process.once('exit', () => {
        clearTimeout(force);
        resolve();
      });
      child.process.kill('SIGTERM');
    });
  }
  // The control plane keeps its state in .data/k8s for the next start.
  await kubernetes?.stop().catch((err: Error) => console.error(`start: stopping Kubernetes: ${err.message}`));
  process.exit(code);
}

function portAnswers(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) {
      console.error(`start: ${what} did not come up within ${timeoutMs / 1000}s (see .data/logs/)`);
      await shutdown(1);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}
