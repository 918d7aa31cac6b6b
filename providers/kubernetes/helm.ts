import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PermanentProviderError, type RenderedHelm } from '../provider.ts';

export { findExecutable } from '../find-executable.ts';

export function helmUnavailable(): PermanentProviderError {
  return new PermanentProviderError(
    'the helm source needs the helm CLI, and no helm executable was found on the PATH of the worker ' +
      '(install helm 3 or set CTRLPLANE_K8S_HELM_BIN)',
    'unsupported_source',
  );
}

interface HelmContext {
  binary: string;
  /** A kubeconfig for the CLI; absent in-cluster, where helm finds the service account itself. */
  kubeconfig?: string;
  kubeContext?: string;
  signal?: AbortSignal;
}

/** Runs helm; a non-zero exit becomes an Error carrying helm's stderr. */
export function runHelm(
  ctx: HelmContext,
  args: string[],
  env: NodeJS.ProcessEnv = { ...process.env, HELM_NO_PLUGINS: '1' },
): Promise<string> {
  const full = [...args];
  if (ctx.kubeconfig) full.push('--kubeconfig', ctx.kubeconfig);
  if (ctx.kubeContext) full.push('--kube-context', ctx.kubeContext);
  return new Promise((resolve, reject) => {
    execFile(
      ctx.binary,
      full,
      { maxBuffer: 32 * 1024 * 1024, signal: ctx.signal, env },
      (err, stdout, stderr) => {
        if (err) {
          const detail = String(stderr || err.message).trim();
          const error = new Error(`helm ${args[0]} failed: ${detail}`) as Error & { stderr?: string };
          error.stderr = String(stderr ?? '');
          reject(error);
          return;
        }
        resolve(String(stdout));
      },
    );
  });
}

/** A private temp directory for values and kubeconfig files, removed afterwards. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'ctrlplane-helm-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function writePrivate(path: string, content: string): Promise<string> {
  await writeFile(path, content, { mode: 0o600 });
  return path;
}

function trimSlashes(value: string): string {
  return value.replace(/\/+$/, '');
}

/**
 * Refuses (invalid_spec, naming it) a chart whose repository is not in the operator's allowlist: an http(s):// or
 * oci:// repository (or chart URL) must start with an allowed URL, and a chart without a repository must be an
 * absolute directory inside an allowed one (no repository aliases: helm runs with an empty configuration).
 */
export function checkChartSource(chart: RenderedHelm, allowed: readonly string[]): void {
  const name = chart.chart?.trim() ?? '';
  if (!name) throw new PermanentProviderError('a helm source needs a chart', 'invalid_spec');
  const remote = chart.repo?.trim() || (/^(https?|oci):\/\//.test(name) ? name : '');
  const urls = allowed.filter((a) => !a.startsWith('/')).map(trimSlashes);
  const dirs = allowed.filter((a) => a.startsWith('/')).map((a) => trimSlashes(resolve(a)));
  if (remote) {
    const repo = trimSlashes(remote);
    if (urls.some((u) => repo === u || repo.startsWith(`${u}/`))) return;
    throw new PermanentProviderError(
      `the helm chart repository ${JSON.stringify(remote)} is not one the operator allows (CTRLPLANE_K8S_HELM_REPOS)`,
      'invalid_spec',
    );
  }
  const path = resolve(name);
  if (name.startsWith('/') && dirs.some((d) => path.startsWith(`${d}/`))) return;
  throw new PermanentProviderError(
    `the helm chart ${JSON.stringify(name)} has no repository the operator allows (CTRLPLANE_K8S_HELM_REPOS lists the chart repositories and local chart directories)`,
    'invalid_spec',
  );
}

/**
 * `helm template` arguments: helm renders offline (no cluster: `lookup` finds nothing, nothing is installed), and
 * the objects go through the manifests path.
 */
export function templateArgs(
  release: string,
  namespace: string,
  chart: RenderedHelm,
  valuesFile?: string,
): string[] {
  const args = ['template', release];
  if (chart.repo?.startsWith('oci://')) {
    args.push(`${chart.repo.replace(/\/+$/, '')}/${chart.chart}`);
  } else if (chart.repo) {
    args.push(chart.chart, '--repo', chart.repo);
  } else {
    args.push(chart.chart);
  }
  args.push('--namespace', namespace, '--skip-tests');
  if (chart.version) args.push('--version', chart.version);
  if (valuesFile) args.push('--values', valuesFile);
  return args;
}

/**
 * The environment of `helm template`: no kubeconfig and no credentials of this process, and helm's configuration,
 * cache and data in the call's own directory (no repository aliases, no plugins, nothing shared between tenants).
 */
export function offlineHelmEnv(dir: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: dir,
    KUBECONFIG: join(dir, 'no-kubeconfig'),
    HELM_CONFIG_HOME: join(dir, 'config'),
    HELM_CACHE_HOME: join(dir, 'cache'),
    HELM_DATA_HOME: join(dir, 'data'),
    HELM_NO_PLUGINS: '1',
  };
}
