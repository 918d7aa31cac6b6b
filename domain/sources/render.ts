import type { ServiceSpec } from '../instance.ts';
import type {
  ArgoCDSource,
  DeploymentSource,
  HelmSource,
  KustomizeSource,
  RenderedHelm,
  RenderedSource,
  SourceInput,
} from './deployment-source.ts';
import { isSourceType, kustomizePath } from './deployment-source.ts';
import { SourceError } from './errors.ts';
import { renderTemplate, TemplateError } from './template.ts';
import type { TemplateScope } from './variables.ts';
import { splitYamlDocuments } from './yaml-split.ts';

/**
 * Render(source, scope): the templated fields of a source, executed against the
 * scope of resolved variables. Errors are SourceError render_failed naming the field (`service web env FOO: …`).
 * Plain TS; a kustomize build and YAML validation are injected (providers/dispatch-render.ts wires both).
 */

/** Builds a kustomization from an in-memory tree; returns the multi-document YAML output. */
export type KustomizeBuilder = (
  tree: { files: Record<string, string>; root: string },
  opts?: { signal?: AbortSignal },
) => Promise<string>;

/** Splits (and may validate) multi-document YAML; `field` names the origin for errors. */
export type DocumentSplitter = (text: string, field: string) => string[];

export interface RenderOptions {
  /** Needed for manifests with kustomize; absent → unsupported_source. */
  kustomize?: KustomizeBuilder;
  /** Default: the textual splitter of yaml-split.ts (drops empty documents, parses nothing). */
  splitDocuments?: DocumentSplitter;
  signal?: AbortSignal;
}

/** Renders any source; a kustomize source runs `options.kustomize`. */
export async function render(
  source: DeploymentSource | SourceInput,
  scope: TemplateScope,
  options: RenderOptions = {},
): Promise<RenderedSource> {
  if (source.type === 'manifests' && source.manifests?.kustomize) {
    const kustomize = source.manifests.kustomize;
    const tree = renderKustomizeTree(kustomize, scope);
    if (!options.kustomize) {
      throw new SourceError(
        'unsupported_source',
        'kustomize is not installed: cannot build manifests.kustomize here',
        {
          field: 'source.manifests.kustomize',
        },
      );
    }
    const output = await options.kustomize(tree, options.signal ? { signal: options.signal } : {});
    const split = options.splitDocuments ?? ((text: string) => splitYamlDocuments(text));
    return { type: 'manifests', manifests: { docs: split(output, 'manifests kustomize output') } };
  }
  return renderSync(source, scope, options);
}

/** Renders every source but a kustomize one (which throws unsupported_source: it needs the async build). */
export function renderSync(
  source: DeploymentSource | SourceInput,
  scope: TemplateScope,
  options: Pick<RenderOptions, 'splitDocuments'> = {},
): RenderedSource {
  const missing = (payload: string): never => {
    throw new SourceError(
      'invalid_source',
      `invalid source: a ${source.type} source needs source.${payload}`,
      {
        field: `source.${payload}`,
      },
    );
  };
  if (!isSourceType(source.type)) {
    throw new SourceError('unsupported_source', `unsupported source type ${JSON.stringify(source.type)}`, {
      field: 'source.type',
    });
  }
  switch (source.type) {
    case 'services':
      return { type: 'services', services: renderServices(source.services ?? missing('services'), scope) };
    case 'helm':
      return { type: 'helm', helm: renderHelm(source.helm ?? missing('helm'), scope) };
    case 'argocd':
      return { type: 'argocd', argocd: renderArgo(source.argocd ?? missing('argocd'), scope) };
    case 'manifests': {
      const manifests = source.manifests ?? missing('manifests');
      if (manifests.kustomize) {
        throw new SourceError(
          'unsupported_source',
          'a kustomize source needs the asynchronous render with a kustomize build',
          {
            field: 'source.manifests.kustomize',
          },
        );
      }
      const inline = template(manifests.inline ?? '', scope, 'manifests inline');
      const split = options.splitDocuments ?? ((text: string) => splitYamlDocuments(text));
      return { type: 'manifests', manifests: { docs: split(inline, 'manifests inline') } };
    }
  }
}

/** image, env values (not keys), command[] and args[]; everything else passes through. */
export function renderServices(services: readonly ServiceSpec[], scope: TemplateScope): ServiceSpec[] {
  return services.map((svc) => {
    const at = `service ${svc.name}`;
    const out: ServiceSpec = { ...svc, image: template(svc.image, scope, `${at} image`) };
    if (svc.env) {
      const env: Record<string, string> = {};
      for (const [key, value] of Object.entries(svc.env))
        env[key] = template(value, scope, `${at} env ${key}`);
      out.env = env;
    }
    if (svc.command) out.command = svc.command.map((arg, i) => template(arg, scope, `${at} command[${i}]`));
    if (svc.args) out.args = svc.args.map((arg, i) => template(arg, scope, `${at} args[${i}]`));
    return out;
  });
}

/** Deep-templates the values' string leaves (keys untouched); repo/chart/version/release_name/namespace copied. */
export function renderHelm(helm: HelmSource, scope: TemplateScope): RenderedHelm {
  const out: RenderedHelm = { chart: helm.chart };
  if (helm.repo !== undefined) out.repo = helm.repo;
  if (helm.version !== undefined) out.version = helm.version;
  if (helm.release_name !== undefined) out.release_name = helm.release_name;
  if (helm.namespace !== undefined) out.namespace = helm.namespace;
  if (helm.values !== undefined && helm.values !== null) {
    out.values = renderValue(helm.values, scope, 'helm values', '') as Record<string, unknown>;
  }
  return out;
}

function renderValue(value: unknown, scope: TemplateScope, field: string, path: string): unknown {
  if (typeof value === 'string') return template(value, scope, path === '' ? field : `${field} ${path}`);
  if (Array.isArray(value)) return value.map((v, i) => renderValue(v, scope, field, `${path}[${i}]`));
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value)) {
      out[key] = renderValue(v, scope, field, path === '' ? key : `${path}.${key}`);
    }
    return out;
  }
  return value;
}

const ARGO_FIELDS = [
  'project',
  'repo_url',
  'path',
  'target_revision',
  'dest_server',
  'dest_namespace',
] as const;

/** project, repo_url, path, target_revision, dest_server, dest_namespace; helm and sync_policy are copied. */
export function renderArgo(argocd: ArgoCDSource, scope: TemplateScope): ArgoCDSource {
  const out = { ...argocd };
  for (const key of ARGO_FIELDS) {
    const value = argocd[key];
    if (typeof value === 'string') out[key] = template(value, scope, `argocd ${key}`);
  }
  if (argocd.helm) {
    out.helm = { ...argocd.helm };
    if (argocd.helm.value_files) out.helm.value_files = [...argocd.helm.value_files];
    if (argocd.helm.parameters) out.helm.parameters = { ...argocd.helm.parameters };
  }
  if (argocd.sync_policy) out.sync_policy = { ...argocd.sync_policy };
  return out;
}

/** Templates every file of a kustomize tree; paths are normalised (relative to the tree root) and checked. */
export function renderKustomizeTree(
  kustomize: KustomizeSource,
  scope: TemplateScope,
): { files: Record<string, string>; root: string } {
  const files: Record<string, string> = {};
  for (const [path, content] of Object.entries(kustomize.files ?? {})) {
    const normalised = kustomizePath(path);
    if (!normalised) {
      throw new SourceError(
        'invalid_source',
        `invalid source: manifests kustomize file ${JSON.stringify(path)}: not a path inside the tree`,
        {
          field: `source.manifests.kustomize.files`,
        },
      );
    }
    files[normalised] = template(content, scope, `manifests kustomize file ${path}`);
  }
  const root = kustomizePath(kustomize.root ?? '/');
  if (root === undefined) {
    throw new SourceError(
      'invalid_source',
      'invalid source: manifests kustomize root: not a path inside the tree',
      {
        field: 'source.manifests.kustomize.root',
      },
    );
  }
  return { files, root };
}

function template(text: string, scope: TemplateScope, field: string): string {
  if (typeof text !== 'string') return text;
  try {
    return renderTemplate(text, scope);
  } catch (err) {
    if (err instanceof TemplateError) {
      throw new SourceError('render_failed', `${field}: ${err.message}`, {
        field,
        ...(err.path?.[0] === 'var' && err.path[1] !== undefined ? { variable: err.path[1] } : {}),
      });
    }
    throw err;
  }
}
