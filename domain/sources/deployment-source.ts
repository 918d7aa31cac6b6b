import type { ServiceSpec } from '../instance.ts';
import { SourceError } from './errors.ts';

/**
 * DeploymentSource: a tagged union whose `type` names the payload that is used.
 * Payloads of other types may be present and are ignored (the reference does not reject them). Plain TS.
 */

export const SOURCE_TYPES = ['services', 'helm', 'manifests', 'argocd'] as const;
export type SourceType = (typeof SOURCE_TYPES)[number];

/**
 * Whether a source type (as stored on an instance) is a services source. Absent and '' mean services: rows and
 * histories from before sources existed carry no type.
 */
export function isServicesSource(type: string | null | undefined): boolean {
  return type === undefined || type === null || type === '' || type === 'services';
}

export interface HelmSource {
  /** `https://…` chart repository or `oci://…` registry; absent for a chart reference the engine resolves. */
  repo?: string;
  chart: string;
  version?: string;
  /** A hint; the Kubernetes engine names the release after the instance. */
  release_name?: string;
  namespace?: string;
  values?: Record<string, unknown>;
  /** Accepted and dropped by render. */
  values_files?: string[];
}

export interface KustomizeSource {
  /** path → content; the paths form an in-memory tree rooted at `/`. */
  files: Record<string, string>;
  /** The directory to build, default `/`. */
  root?: string;
}

export interface ManifestsSource {
  /** Multi-document YAML. */
  inline?: string;
  /** Takes precedence over `inline` when present. */
  kustomize?: KustomizeSource;
}

/** Structurally the same as providers' ArgoApplicationSpec. */
export interface ArgoCDSource {
  project?: string;
  repo_url: string;
  path?: string;
  target_revision?: string;
  dest_server?: string;
  dest_namespace?: string;
  helm?: { value_files?: string[]; parameters?: Record<string, string> };
  sync_policy?: { automated?: boolean; self_heal?: boolean; prune?: boolean };
}

interface SourcePayloads {
  services?: ServiceSpec[];
  helm?: HelmSource;
  manifests?: ManifestsSource;
  argocd?: ArgoCDSource;
}

export interface ServicesDeploymentSource extends SourcePayloads {
  type: 'services';
  services: ServiceSpec[];
}
export interface HelmDeploymentSource extends SourcePayloads {
  type: 'helm';
  helm: HelmSource;
}
export interface ManifestsDeploymentSource extends SourcePayloads {
  type: 'manifests';
  manifests: ManifestsSource;
}
export interface ArgoDeploymentSource extends SourcePayloads {
  type: 'argocd';
  argocd: ArgoCDSource;
}

export type DeploymentSource =
  | ServicesDeploymentSource
  | HelmDeploymentSource
  | ManifestsDeploymentSource
  | ArgoDeploymentSource;

/** What a request may carry before validation: any type string, any payloads. */
export interface SourceInput extends SourcePayloads {
  type: string;
}

/** The Kubernetes-ready form of a source, as providers receive it. Never holds a secret value. */
export interface RenderedHelm {
  repo?: string;
  chart: string;
  version?: string;
  release_name?: string;
  namespace?: string;
  values?: Record<string, unknown>;
}

export interface RenderedManifests {
  docs: string[];
}

export interface RenderedSource {
  type: SourceType;
  services?: ServiceSpec[];
  helm?: RenderedHelm;
  manifests?: RenderedManifests;
  argocd?: ArgoCDSource;
}

export function isSourceType(value: unknown): value is SourceType {
  return typeof value === 'string' && (SOURCE_TYPES as readonly string[]).includes(value);
}

/**
 * The source of a create request: `source` when it has a type, else `{type: services, services}`
 * when services are given, else an invalid_source error. The result is validated.
 */
export function projectSource(req: {
  source?: SourceInput | null;
  services?: ServiceSpec[] | null;
}): DeploymentSource {
  if (req.source?.type) return validateSource(req.source, 'source');
  if (req.services && req.services.length > 0)
    return validateSource({ type: 'services', services: req.services });
  throw new SourceError('invalid_source', 'a source or services is required', { field: 'source' });
}

/** The validation rules of a source, plus type checks of the fields it reads. Returns the first problem, or undefined. */
export function sourceProblem(input: unknown, field = 'source'): SourceError | undefined {
  try {
    validateSource(input, field);
    return undefined;
  } catch (err) {
    if (err instanceof SourceError) return err;
    throw err;
  }
}

/**
 * Source.validate(): services needs ≥1 service, helm a non-blank chart (and a repo, when given, that is
 * https:// or oci://), manifests a non-blank inline or a kustomize object (an empty files map is accepted; file
 * paths must stay inside the tree), argocd a non-blank repo_url. Any other type is an error. Payloads of other
 * types are not checked. Throws SourceError invalid_source naming the field; returns the input, typed.
 */
export function validateSource(input: unknown, field = 'source'): DeploymentSource {
  const fail = (at: string, message: string): never => {
    throw new SourceError('invalid_source', `invalid source: ${at}: ${message}`, { field: at });
  };
  if (!isRecord(input)) return fail(field, 'must be an object');
  const type = input.type;
  if (typeof type !== 'string' || type.trim() === '') return fail(`${field}.type`, 'is required');
  switch (type) {
    case 'services': {
      const services = input.services;
      if (services === undefined || services === null)
        return fail(`${field}.services`, 'a services source needs at least one service');
      if (!Array.isArray(services)) return fail(`${field}.services`, 'must be a list');
      if (services.length === 0)
        return fail(`${field}.services`, 'a services source needs at least one service');
      services.forEach((svc, i) => {
        if (!isRecord(svc)) fail(`${field}.services[${i}]`, 'must be an object');
      });
      break;
    }
    case 'helm': {
      const helm = input.helm;
      if (!isRecord(helm)) return fail(`${field}.helm`, 'a helm source needs the helm object with a chart');
      if (typeof helm.chart !== 'string' || helm.chart.trim() === '') {
        return fail(`${field}.helm.chart`, 'is required');
      }
      for (const key of ['repo', 'version', 'release_name', 'namespace'] as const) {
        if (helm[key] !== undefined && typeof helm[key] !== 'string')
          fail(`${field}.helm.${key}`, 'must be a string');
      }
      if (
        typeof helm.repo === 'string' &&
        helm.repo !== '' &&
        !/^(https:\/\/|oci:\/\/)\S+$/i.test(helm.repo)
      ) {
        fail(`${field}.helm.repo`, 'must be an https:// or oci:// URL');
      }
      if (helm.values !== undefined && helm.values !== null && !isRecord(helm.values)) {
        fail(`${field}.helm.values`, 'must be an object');
      }
      if (
        helm.values_files !== undefined &&
        helm.values_files !== null &&
        !isStringArray(helm.values_files)
      ) {
        fail(`${field}.helm.values_files`, 'must be a list of strings');
      }
      break;
    }
    case 'manifests': {
      const manifests = input.manifests;
      if (!isRecord(manifests))
        return fail(`${field}.manifests`, 'a manifests source needs inline YAML or kustomize');
      const { inline, kustomize } = manifests;
      if (inline !== undefined && inline !== null && typeof inline !== 'string') {
        fail(`${field}.manifests.inline`, 'must be a string');
      }
      if (kustomize !== undefined && kustomize !== null) {
        validateKustomize(kustomize, `${field}.manifests.kustomize`, fail);
      } else if (typeof inline !== 'string' || inline.trim() === '') {
        fail(`${field}.manifests`, 'a manifests source needs inline YAML or kustomize');
      }
      break;
    }
    case 'argocd': {
      const argocd = input.argocd;
      if (!isRecord(argocd))
        return fail(`${field}.argocd`, 'an argocd source needs the argocd object with a repo_url');
      if (typeof argocd.repo_url !== 'string' || argocd.repo_url.trim() === '') {
        return fail(`${field}.argocd.repo_url`, 'is required');
      }
      for (const key of ['project', 'path', 'target_revision', 'dest_server', 'dest_namespace'] as const) {
        if (argocd[key] !== undefined && typeof argocd[key] !== 'string')
          fail(`${field}.argocd.${key}`, 'must be a string');
      }
      break;
    }
    default:
      return fail(`${field}.type`, `unknown source type ${JSON.stringify(type)}`);
  }
  return input as unknown as DeploymentSource;
}

function validateKustomize(value: unknown, at: string, fail: (at: string, message: string) => never): void {
  if (!isRecord(value)) fail(at, 'must be an object with files');
  const k = value as Record<string, unknown>;
  if (k.root !== undefined && k.root !== null) {
    if (typeof k.root !== 'string') fail(`${at}.root`, 'must be a string');
    else if (kustomizePath(k.root) === undefined) fail(`${at}.root`, 'must be a path inside the file tree');
  }
  const files = k.files ?? {};
  if (!isRecord(files)) fail(`${at}.files`, 'must be an object of path → content');
  for (const [path, content] of Object.entries(files as Record<string, unknown>)) {
    if (typeof content !== 'string') fail(`${at}.files[${JSON.stringify(path)}]`, 'must be a string');
    if (!kustomizePath(path))
      fail(`${at}.files[${JSON.stringify(path)}]`, 'must be a relative file path inside the tree');
  }
}

/**
 * A kustomize tree path normalised to a relative path ('' for the root), or undefined when it is empty for a
 * file, leaves the tree through `..`, or holds a NUL byte. A leading `/` means the tree root.
 */
export function kustomizePath(path: string): string | undefined {
  if (path.includes('\0') || path.includes('\\')) return undefined;
  const segments: string[] = [];
  for (const segment of path.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') {
      if (segments.length === 0) return undefined;
      segments.pop();
      continue;
    }
    segments.push(segment);
  }
  return segments.join('/');
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'string');
}
