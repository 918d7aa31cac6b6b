import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { kustomizePath } from '../domain/sources/deployment-source';
import { SourceError } from '../domain/sources/errors';
import type { KustomizeBuilder } from '../domain/sources/render';
import { findExecutable } from './find-executable';

/**
 * The kustomize build of a manifests source (reference-behaviour.md §5.8): the rendered files are written to a
 * private temp dir and built with `kustomize build <root>`, or `kubectl kustomize <root>` when only kubectl is on
 * the PATH (CTRLPLANE_KUSTOMIZE_BIN may name either binary). Kustomize's default load restrictor keeps the build
 * inside the root; remote bases (URLs) are not blocked.
 */

export interface KustomizeCommand {
  binary: string;
  /** The arguments before the directory: `['build']` or `['kustomize']`. */
  args: string[];
}

export interface KustomizeOptions {
  /** Default: process.env.PATH. */
  path?: string;
  /** A binary to use instead of looking one up (kustomize, or kubectl when its name ends with kubectl). */
  binary?: string;
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 60_000;

/** The kustomize command available, if any. */
export function findKustomize(options: KustomizeOptions = {}): KustomizeCommand | undefined {
  const configured = options.binary ?? process.env.CTRLPLANE_KUSTOMIZE_BIN;
  const path = options.path ?? process.env.PATH ?? '';
  const asCommand = (binary: string): KustomizeCommand => ({
    binary,
    args: /(^|[/\\])kubectl(\.exe)?$/.test(binary) ? ['kustomize'] : ['build'],
  });
  if (configured) {
    const found = findExecutable(configured, path);
    return found ? asCommand(found) : undefined;
  }
  for (const name of ['kustomize', 'kubectl']) {
    const found = findExecutable(name, path);
    if (found) return asCommand(found);
  }
  return undefined;
}

export function kustomizeNotInstalled(): SourceError {
  return new SourceError(
    'unsupported_source',
    'kustomize is not installed: the manifests.kustomize source needs a kustomize or kubectl binary on the PATH of the worker (or CTRLPLANE_KUSTOMIZE_BIN)',
    { field: 'source.manifests.kustomize' },
  );
}

/** A KustomizeBuilder for render(); the binary is looked up on each build. */
export function kustomizeBuilder(options: KustomizeOptions = {}): KustomizeBuilder {
  return (tree, opts) =>
    kustomizeBuild(tree, { ...options, ...(opts?.signal ? { signal: opts.signal } : {}) });
}

/** Builds the tree; a missing binary is unsupported_source, a failed build render_failed with kustomize's stderr. */
export async function kustomizeBuild(
  tree: { files: Record<string, string>; root: string },
  options: KustomizeOptions & { signal?: AbortSignal } = {},
): Promise<string> {
  const command = findKustomize(options);
  if (!command) throw kustomizeNotInstalled();
  const dir = await mkdtemp(join(tmpdir(), 'ctrlplane-kustomize-'));
  try {
    for (const [path, content] of Object.entries(tree.files)) {
      const rel = kustomizePath(path);
      if (!rel) {
        throw new SourceError(
          'invalid_source',
          `invalid source: kustomize file ${JSON.stringify(path)} is outside the tree`,
          {
            field: 'source.manifests.kustomize.files',
          },
        );
      }
      const file = join(dir, rel);
      await mkdir(dirname(file), { recursive: true, mode: 0o700 });
      await writeFile(file, content, { mode: 0o600 });
    }
    const root = kustomizePath(tree.root);
    if (root === undefined) {
      throw new SourceError('invalid_source', 'invalid source: kustomize root is outside the tree', {
        field: 'source.manifests.kustomize.root',
      });
    }
    const rootDir = join(dir, root);
    await mkdir(rootDir, { recursive: true, mode: 0o700 });
    return await run(command, rootDir, dir, options);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function run(
  command: KustomizeCommand,
  dir: string,
  tempDir: string,
  options: KustomizeOptions & { signal?: AbortSignal },
): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      command.binary,
      [...command.args, dir],
      {
        cwd: dir,
        maxBuffer: 32 * 1024 * 1024,
        timeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
        ...(options.signal ? { signal: options.signal } : {}),
      },
      (err, stdout, stderr) => {
        if (!err) {
          resolve(String(stdout));
          return;
        }
        if (options.signal?.aborted || (err as NodeJS.ErrnoException).code === 'ABORT_ERR') {
          reject(err);
          return;
        }
        const detail = String(stderr || err.message)
          .split(tempDir)
          .join('')
          .replace(/^[EWI]\d{4} [\d:.]+\s+\d+ [^\]]+\] "command failed" /gm, '')
          .trim();
        reject(
          new SourceError('render_failed', `manifests kustomize build failed: ${detail}`, {
            field: 'source.manifests.kustomize',
          }),
        );
      },
    );
  });
}
