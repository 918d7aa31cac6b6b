import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { REPO_ROOT } from './temporal-cli.ts';

const run = promisify(execFile);
const SCRIPT = `${REPO_ROOT}scripts/k8s-test-cluster.sh`;

/** The local control plane of scripts/k8s-test-cluster.sh (etcd, kube-apiserver & co., kwok) in one folder. */
export interface LocalKubernetes {
  /** An admin (system:masters) kubeconfig for https://127.0.0.1:<port>. */
  kubeconfig: string;
  dir: string;
  stop(options?: { removeState?: boolean }): Promise<void>;
}

/** The binaries the script builds (kubectl, helm, …), for a PATH. */
export const TOOLS_BIN = `${REPO_ROOT}.tools/bin`;

/**
 * Starts the control plane with its state in `dir` (kept across starts: a restarted dev cluster keeps its
 * objects). `owner` is recorded so a later run can stop what a killed one left behind (`stopAbandoned`).
 */
export async function startLocalKubernetes(dir: string, owner = process.pid): Promise<LocalKubernetes> {
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${dir}/owner.pid`, String(owner));
  let stdout = '';
  // The free ports are picked by probing: another run may take one in between, so a failed start is tried again.
  for (let attempt = 1; ; attempt++) {
    try {
      ({ stdout } = await run('bash', [SCRIPT, 'start', dir], { maxBuffer: 1 << 20 }));
      break;
    } catch (err) {
      await run('bash', [SCRIPT, 'stop', dir]).catch(() => undefined);
      if (attempt < 2) continue;
      const e = err as { stderr?: string; message: string };
      throw new Error(`the local Kubernetes control plane did not start: ${(e.stderr || e.message).trim()}`);
    }
  }
  const kubeconfig = stdout.trim().split('\n').at(-1) ?? '';
  return {
    kubeconfig,
    dir,
    async stop({ removeState = false } = {}) {
      await run('bash', [SCRIPT, 'stop', dir]);
      if (removeState) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Stops and removes the clusters under `parent` whose owning process is gone (a run killed before teardown). */
export async function stopAbandoned(parent: string, prefix: string): Promise<void> {
  if (!existsSync(parent)) return;
  for (const name of readdirSync(parent)) {
    if (!name.startsWith(prefix)) continue;
    const dir = `${parent}/${name}`;
    const owner = Number(existsSync(`${dir}/owner.pid`) ? readFileSync(`${dir}/owner.pid`, 'utf8') : '0');
    if (owner > 0 && alive(owner)) continue;
    await run('bash', [SCRIPT, 'stop', dir]).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
