import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InstanceState } from '../../domain/instance-state.ts';
import { PermanentProviderError, type RenderedHelm } from '../provider.ts';

export { findExecutable } from '../find-executable.ts';

export function helmUnavailable(): PermanentProviderError {
  return new PermanentProviderError(
    'the helm source needs the helm CLI, and no helm executable was found on the PATH of the worker ' +
      '(install helm 3 or set CP_K8S_HELM_BIN)',
    'unsupported_source',
  );
}

export interface HelmRelease {
  name: string;
  namespace: string;
  revision: number;
  status: string;
  description?: string;
}

interface HelmContext {
  binary: string;
  /** A kubeconfig for the CLI; absent in-cluster, where helm finds the service account itself. */
  kubeconfig?: string;
  kubeContext?: string;
  signal?: AbortSignal;
}

/** Runs helm; a non-zero exit becomes an Error carrying helm's stderr. */
export function runHelm(ctx: HelmContext, args: string[]): Promise<string> {
  const full = [...args];
  if (ctx.kubeconfig) full.push('--kubeconfig', ctx.kubeconfig);
  if (ctx.kubeContext) full.push('--kube-context', ctx.kubeContext);
  return new Promise((resolve, reject) => {
    execFile(
      ctx.binary,
      full,
      { maxBuffer: 32 * 1024 * 1024, signal: ctx.signal, env: { ...process.env, HELM_NO_PLUGINS: '1' } },
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

/** `helm upgrade --install` arguments for a rendered chart (repo URL, oci:// registry or local/repo-qualified chart). */
export function installArgs(
  release: string,
  namespace: string,
  chart: RenderedHelm,
  valuesFile?: string,
): string[] {
  if (!chart.chart?.trim()) throw new PermanentProviderError('a helm source needs a chart');
  const args = ['upgrade', '--install', release];
  if (chart.repo?.startsWith('oci://')) {
    args.push(`${chart.repo.replace(/\/+$/, '')}/${chart.chart}`);
  } else if (chart.repo) {
    args.push(chart.chart, '--repo', chart.repo);
  } else {
    args.push(chart.chart);
  }
  args.push('--namespace', namespace, '--output', 'json');
  if (chart.version) args.push('--version', chart.version);
  if (valuesFile) args.push('--values', valuesFile);
  return args;
}

export function parseRelease(json: string, fallback: { name: string; namespace: string }): HelmRelease {
  const parsed = JSON.parse(json) as {
    name?: string;
    namespace?: string;
    version?: number;
    info?: { status?: string; description?: string };
  };
  return {
    name: parsed.name ?? fallback.name,
    namespace: parsed.namespace ?? fallback.namespace,
    revision: parsed.version ?? 0,
    status: parsed.info?.status ?? 'unknown',
    description: parsed.info?.description,
  };
}

/** Helm release status → instance state (reference-behaviour.md §7 "Helm engine"). */
export function helmState(status: string): InstanceState {
  switch (status) {
    case 'deployed':
      return 'running';
    case 'failed':
      return 'failed';
    case 'pending-install':
    case 'pending-upgrade':
    case 'pending-rollback':
      return 'starting';
    case 'uninstalling':
      return 'stopping';
    case 'uninstalled':
      return 'stopped';
    default:
      return 'provisioning';
  }
}

export function isReleaseNotFound(err: unknown): boolean {
  const text =
    err instanceof Error ? `${err.message} ${(err as { stderr?: string }).stderr ?? ''}` : String(err);
  return /release: not found|not found/i.test(text);
}
