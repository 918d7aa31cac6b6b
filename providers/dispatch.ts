import type { WorkloadKind } from '../domain/instance.ts';
import type { RenderedSource } from '../domain/sources/deployment-source.ts';
import { SourceError } from '../domain/sources/errors.ts';
import type {
  ArgoEngine,
  CallOptions,
  Capability,
  HelmEngine,
  InstanceStatus,
  ManifestEngine,
  Provider,
  ProvisionResult,
} from './provider.ts';

/**
 * Dispatch by source type: services go to the core provider methods (never gated by
 * a capability); manifests, helm and argocd go to the provider's engine, which it must both advertise in
 * capabilities() and implement, else unsupported_source naming provider and type. An unknown type is
 * invalid_source. Both are SourceErrors, which no retry can fix.
 */

export interface DispatchTarget {
  instance_id: string;
  tenant_id: string;
  name: string;
  kind: WorkloadKind;
  labels?: Record<string, string>;
}

type EngineType = 'manifests' | 'helm' | 'argocd';

const ENGINES: Record<EngineType, { capability: Capability; methods: readonly string[] }> = {
  manifests: {
    capability: 'source:manifests',
    methods: ['applyManifests', 'deleteManifests', 'manifestStatus'],
  },
  helm: { capability: 'source:helm', methods: ['helmInstall', 'helmUninstall', 'helmStatus'] },
  argocd: { capability: 'source:argocd', methods: ['argoApply', 'argoDelete', 'argoStatus'] },
};

type SourceKind = 'services' | EngineType;

/** '' and absent mean services (rows created before sources existed); anything unknown is invalid_source. */
function sourceKind(type: string | null | undefined): SourceKind {
  if (type === undefined || type === null || type === '' || type === 'services') return 'services';
  if (type === 'manifests' || type === 'helm' || type === 'argocd') return type;
  throw new SourceError('invalid_source', `invalid source: unknown source type ${JSON.stringify(type)}`, {
    field: 'source.type',
  });
}

function providerName(provider: Provider): string {
  try {
    return provider.info().name;
  } catch {
    return 'unknown';
  }
}

/** Whether the provider can run a source of this type (services: always). */
export function supportsSource(provider: Provider, type: string | null | undefined): boolean {
  const kind = sourceKind(type);
  if (kind === 'services') return true;
  const engine = ENGINES[kind];
  const methods = provider as unknown as Record<string, unknown>;
  return (
    provider.capabilities().includes(engine.capability) &&
    engine.methods.every((m) => typeof methods[m] === 'function')
  );
}

/** The provider as the engine of `kind`, when it advertises the capability and has `method`. */
function engine<T>(provider: Provider, kind: EngineType, method: string): T {
  const methods = provider as unknown as Record<string, unknown>;
  if (!provider.capabilities().includes(ENGINES[kind].capability) || typeof methods[method] !== 'function') {
    throw new SourceError(
      'unsupported_source',
      `provider ${providerName(provider)} does not support the ${kind} source (capability ${ENGINES[kind].capability})`,
      { field: 'source.type' },
    );
  }
  return provider as unknown as T;
}

function payload<T>(value: T | undefined, kind: string): T {
  if (value === undefined || value === null) {
    throw new SourceError(
      'invalid_source',
      `invalid source: the rendered ${kind} source has no ${kind} payload`,
      {
        field: `source.${kind}`,
      },
    );
  }
  return value;
}

/** Provisions a rendered source: Provision / ApplyManifests / HelmInstall / ArgoApply. */
export async function provisionSource(
  provider: Provider,
  rendered: RenderedSource,
  target: DispatchTarget,
  opts?: CallOptions,
): Promise<ProvisionResult> {
  const kind = sourceKind(rendered.type);
  const labels = target.labels ? { labels: target.labels } : {};
  switch (kind) {
    case 'services':
      return provider.provision(
        {
          instance_id: target.instance_id,
          tenant_id: target.tenant_id,
          name: target.name,
          kind: target.kind,
          services: payload(rendered.services, 'services'),
          ...labels,
        },
        opts,
      );
    case 'manifests':
      return engine<ManifestEngine>(provider, kind, 'applyManifests').applyManifests(
        {
          instance_id: target.instance_id,
          tenant_id: target.tenant_id,
          namespace: '',
          docs: payload(rendered.manifests, 'manifests').docs,
          ...labels,
        },
        opts,
      );
    case 'helm':
      return engine<HelmEngine>(provider, kind, 'helmInstall').helmInstall(
        {
          instance_id: target.instance_id,
          tenant_id: target.tenant_id,
          namespace: '',
          chart: payload(rendered.helm, 'helm'),
        },
        opts,
      );
    case 'argocd':
      return engine<ArgoEngine>(provider, kind, 'argoApply').argoApply(
        {
          instance_id: target.instance_id,
          tenant_id: target.tenant_id,
          app: payload(rendered.argocd, 'argocd'),
          ...labels,
        },
        opts,
      );
  }
}

/** Removes what provisionSource created (convergent, as the engines are): Deprovision / Delete* / *Uninstall. */
export async function deprovisionSource(
  provider: Provider,
  type: string | null | undefined,
  instanceId: string,
  opts?: CallOptions,
): Promise<void> {
  const kind = sourceKind(type);
  switch (kind) {
    case 'services':
      return provider.deprovision(instanceId, opts);
    case 'manifests':
      return engine<ManifestEngine>(provider, kind, 'deleteManifests').deleteManifests(instanceId, opts);
    case 'helm':
      return engine<HelmEngine>(provider, kind, 'helmUninstall').helmUninstall(instanceId, opts);
    case 'argocd':
      return engine<ArgoEngine>(provider, kind, 'argoDelete').argoDelete(instanceId, opts);
  }
}

/** The instance's status from the engine that runs it: Status / ManifestStatus / HelmStatus / ArgoStatus. */
export async function sourceStatus(
  provider: Provider,
  type: string | null | undefined,
  instanceId: string,
  opts?: CallOptions,
): Promise<InstanceStatus> {
  const kind = sourceKind(type);
  switch (kind) {
    case 'services':
      return provider.status(instanceId, opts);
    case 'manifests':
      return engine<ManifestEngine>(provider, kind, 'manifestStatus').manifestStatus(instanceId, opts);
    case 'helm':
      return engine<HelmEngine>(provider, kind, 'helmStatus').helmStatus(instanceId, opts);
    case 'argocd':
      return engine<ArgoEngine>(provider, kind, 'argoStatus').argoStatus(instanceId, opts);
  }
}
