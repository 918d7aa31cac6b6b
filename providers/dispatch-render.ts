import type { DeploymentSource, RenderedSource, SourceInput } from '../domain/sources/deployment-source.ts';
import { render } from '../domain/sources/render.ts';
import { splitManifestDocuments } from '../domain/sources/render-manifests.ts';
import type { TemplateScope } from '../domain/sources/variables.ts';
import { type KustomizeOptions, kustomizeBuilder } from './kustomize.ts';

/**
 * render() with the Node-side parts wired: kustomize builds through the binary (providers/kustomize.ts) and
 * manifests are split and checked with the YAML parser. For the API (create-time 400s) and the provision activity.
 */
export function renderSource(
  source: DeploymentSource | SourceInput,
  scope: TemplateScope,
  options: { signal?: AbortSignal; kustomize?: KustomizeOptions } = {},
): Promise<RenderedSource> {
  return render(source, scope, {
    kustomize: kustomizeBuilder(options.kustomize),
    splitDocuments: splitManifestDocuments,
    ...(options.signal ? { signal: options.signal } : {}),
  });
}
