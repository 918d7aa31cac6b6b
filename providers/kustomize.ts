import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { kustomizePath } from '../domain/sources/deployment-source.ts';
import { SourceError } from '../domain/sources/errors.ts';
import type { KustomizeBuilder } from '../domain/sources/render.ts';
import { findExecutable } from './find-executable.ts';

/**
 * The kustomize build of a manifests source: the rendered files are written to a
 * private temp dir and built with `kustomize build <root>`, or `kubectl kustomize <root>` when only kubectl is on
 * the PATH (options.binary, from CTRLPLANE_KUSTOMIZE_BIN, may name either binary). Kustomize's default load restrictor keeps file loads
 * inside the root. Builds run where the source is created (the API process) with its network, so before kustomize
 * runs, every path a kustomization (or a built-in generator/transformer config) names must be a file or directory
 * of the submitted tree: remote bases, resources, components and patches (URLs, git specs, absolute paths, paths
 * leaving the tree) are refused as invalid_source, and helm chart inflation is refused outright. Kustomize itself
 * runs with a minimal environment whose proxies go nowhere and whose git may use no protocol.
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
/** How much of kustomize's stderr an error carries. */
const STDERR_LIMIT = 300;
const KUSTOMIZATION_FILES = new Set(['kustomization.yaml', 'kustomization.yml', 'Kustomization']);
/** Built-in plugin configs (referenced from `generators`/`transformers`) with path fields. */
const PLUGIN_KINDS = new Set([
  'PatchTransformer',
  'PatchStrategicMergeTransformer',
  'PatchJson6902Transformer',
  'ReplacementTransformer',
  'ConfigMapGenerator',
  'SecretGenerator',
]);
const HELM_KINDS = new Set(['HelmChartInflationGenerator']);
/**
 * A URL (`scheme://`), go-getter / kustomize forced getters (`git::`, `gh:`), scp-like git (`git@host:`,
 * `user@host:path`), a `?ref=`/`?version=` query, or a host-qualified path (`github.com/org/repo`, `example.com/x`).
 */
const REMOTE =
  /^(?:[a-z][a-z0-9+.-]*:\/\/|[a-z][a-z0-9+.-]*::|gh:|git@|[^\s/@]+@[^\s/:]+:)|[?&](?:ref|version|timeout|submodules)=|^(?:www\.)?[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|org|net|io|dev|sh|co|cloud|app)(?::\d+)?\//i;

/** The kustomize command available, if any. */
export function findKustomize(options: KustomizeOptions = {}): KustomizeCommand | undefined {
  const configured = options.binary;
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

type Json = Record<string, unknown>;

function isRecord(value: unknown): value is Json {
  return !!value && typeof value === 'object' && !Array.isArray(value);
}

function strings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

function records(value: unknown): Json[] {
  return Array.isArray(value) ? value.filter(isRecord) : [];
}

/** Multi-line text in a path-or-inline field is inline YAML, not a path. */
function isInline(value: string): boolean {
  return value.includes('\n');
}

function refusal(file: string, message: string): SourceError {
  return new SourceError(
    'invalid_source',
    `invalid source: manifests kustomize file ${JSON.stringify(file)}: ${message}`,
    {
      field: 'source.manifests.kustomize.files',
    },
  );
}

/** The tree's files and directories, normalised as kustomizePath does. */
interface Tree {
  files: Set<string>;
  dirs: Set<string>;
}

/**
 * A path field must be a relative path inside the tree: anything remote, absolute or leaving the tree is refused.
 * A path the tree does not have is left to kustomize (a plain missing file fails the build), unless it could be a
 * host (`host.example/org/repo`, `user@host:repo`): then it is refused as well.
 */
function checkPath(tree: Tree, file: string, field: string, raw: string): void {
  const value = raw.trim();
  const remote = () =>
    refusal(
      file,
      `${field} ${JSON.stringify(value)} is a remote reference; remote bases, resources, components and patches are not allowed (put the files in the source)`,
    );
  if (REMOTE.test(value)) throw remote();
  if (value.startsWith('/')) {
    throw refusal(
      file,
      `${field} ${JSON.stringify(value)} is an absolute path, which is not allowed: use a path relative to the kustomization`,
    );
  }
  const dir = posix.dirname(file);
  const resolved = kustomizePath(dir === '.' ? value : `${dir}/${value}`);
  if (resolved === undefined) {
    throw refusal(
      file,
      `${field} ${JSON.stringify(value)} leaves the kustomize tree, which is not allowed (put the files in the source)`,
    );
  }
  if (tree.files.has(resolved) || tree.dirs.has(resolved)) return;
  const [first = '', ...rest] = value.split('/');
  const hostLike =
    /[@:]/.test(value) || (rest.length > 0 && first !== '.' && first !== '..' && first.includes('.'));
  if (hostLike) throw remote();
}

function checkGenerator(tree: Tree, file: string, field: string, generator: Json): void {
  for (const entry of strings(generator.files)) {
    const eq = entry.indexOf('=');
    checkPath(tree, file, `${field}.files`, eq >= 0 ? entry.slice(eq + 1) : entry);
  }
  for (const env of [...strings(generator.envs), ...strings(generator.env)])
    checkPath(tree, file, `${field}.envs`, env);
}

/** A built-in generator/transformer config (a file, or inline in `generators`/`transformers`). */
function checkPluginConfig(tree: Tree, file: string, doc: Json): void {
  const kind = typeof doc.kind === 'string' ? doc.kind : '';
  if (HELM_KINDS.has(kind))
    throw refusal(file, `${kind} is not allowed (charts would be fetched while building)`);
  if (!PLUGIN_KINDS.has(kind)) return;
  for (const path of [...strings(doc.path), ...strings(doc.paths)]) {
    if (!isInline(path)) checkPath(tree, file, `${kind}.path`, path);
  }
  for (const r of records(doc.replacements))
    if (typeof r.path === 'string') checkPath(tree, file, `${kind}.replacements.path`, r.path);
  if (kind === 'ConfigMapGenerator' || kind === 'SecretGenerator') checkGenerator(tree, file, kind, doc);
}

function checkInlineConfigs(tree: Tree, file: string, text: string): void {
  for (const doc of parseAllDocuments(text)) {
    const value: unknown = doc.toJS();
    if (isRecord(value)) checkPluginConfig(tree, file, value);
  }
}

function checkKustomization(tree: Tree, file: string, k: Json): void {
  for (const field of ['helmCharts', 'helmChartInflationGenerator', 'helmGlobals']) {
    if (k[field] !== undefined)
      throw refusal(file, `${field} is not allowed (charts would be fetched while building)`);
  }
  for (const field of ['resources', 'bases', 'components', 'crds', 'configurations']) {
    for (const path of strings(k[field])) checkPath(tree, file, field, path);
  }
  for (const field of ['generators', 'transformers', 'validators']) {
    for (const entry of strings(k[field])) {
      if (isInline(entry)) checkInlineConfigs(tree, file, entry);
      else checkPath(tree, file, field, entry);
    }
  }
  for (const patch of strings(k.patchesStrategicMerge)) {
    if (!isInline(patch)) checkPath(tree, file, 'patchesStrategicMerge', patch);
  }
  for (const field of ['patches', 'patchesJson6902', 'replacements']) {
    for (const entry of records(k[field])) {
      if (typeof entry.path === 'string') checkPath(tree, file, `${field}.path`, entry.path);
    }
  }
  for (const field of ['configMapGenerator', 'secretGenerator']) {
    for (const generator of records(k[field])) checkGenerator(tree, file, field, generator);
  }
  if (isRecord(k.openapi) && typeof k.openapi.path === 'string')
    checkPath(tree, file, 'openapi.path', k.openapi.path);
}

/**
 * Refuses (invalid_source, naming the file) a tree whose kustomizations or built-in plugin configs reference
 * anything but its own files: URLs and git specs, absolute paths, paths leaving the tree, helm charts. Files that do
 * not parse are left to kustomize, which refuses them itself.
 */
export function checkKustomizeTree(files: Record<string, string>): void {
  const tree: Tree = { files: new Set(), dirs: new Set(['']) };
  const normalised: Array<[string, string]> = [];
  for (const [path, content] of Object.entries(files)) {
    const rel = kustomizePath(path);
    if (!rel) continue; // refused by the build with its own message
    normalised.push([rel, content]);
    tree.files.add(rel);
    for (let dir = posix.dirname(rel); dir !== '.' && !tree.dirs.has(dir); dir = posix.dirname(dir))
      tree.dirs.add(dir);
  }
  for (const [file, content] of normalised) {
    const base = posix.basename(file);
    const isKustomization = KUSTOMIZATION_FILES.has(base);
    if (!isKustomization && !/\.ya?ml$/i.test(base)) continue;
    for (const doc of parseAllDocuments(content)) {
      if (doc.errors.length > 0) continue;
      const value: unknown = doc.toJS();
      if (!isRecord(value)) continue;
      const kind = typeof value.kind === 'string' ? value.kind : '';
      if (isKustomization || kind === 'Kustomization' || kind === 'Component')
        checkKustomization(tree, file, value);
      else checkPluginConfig(tree, file, value);
    }
  }
}

/** Builds the tree; a missing binary is unsupported_source, a failed build render_failed with kustomize's stderr. */
export async function kustomizeBuild(
  tree: { files: Record<string, string>; root: string },
  options: KustomizeOptions & { signal?: AbortSignal } = {},
): Promise<string> {
  checkKustomizeTree(tree.files);
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
        env: buildEnv(tempDir),
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
        const detail = trimmed(
          String(stderr || err.message)
            .split(tempDir)
            .join('')
            .replace(/^[EWI]\d{4} [\d:.]+\s+\d+ [^\]]+\] "command failed" /gm, '')
            .trim(),
        );
        reject(
          new SourceError('render_failed', `manifests kustomize build failed: ${detail}`, {
            field: 'source.manifests.kustomize',
          }),
        );
      },
    );
  });
}

/** At most STDERR_LIMIT characters of kustomize's complaint. */
function trimmed(text: string): string {
  return text.length <= STDERR_LIMIT
    ? text
    : `${text.slice(0, STDERR_LIMIT)}… (${text.length - STDERR_LIMIT} more characters)`;
}

/** No credentials of this process, proxies that go nowhere, and a git that may use no protocol. */
function buildEnv(home: string): NodeJS.ProcessEnv {
  const nowhere = 'http://127.0.0.1:9';
  return {
    PATH: process.env.PATH ?? '',
    HOME: home,
    HTTP_PROXY: nowhere,
    HTTPS_PROXY: nowhere,
    http_proxy: nowhere,
    https_proxy: nowhere,
    NO_PROXY: '',
    no_proxy: '',
    GIT_ALLOW_PROTOCOL: 'none',
    GIT_TERMINAL_PROMPT: '0',
    GIT_CONFIG_NOSYSTEM: '1',
  };
}
