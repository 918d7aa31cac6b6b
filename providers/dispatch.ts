import type { WorkloadKind } from '../domain/instance.ts';
import { isServicesSource, type RenderedSource } from '../domain/sources/deployment-source.ts';
import { SourceError } from '../domain/sources/errors.ts';
import {
  type CallOptions,
  ENGINE_CAPABILITY,
  type EngineSourceType,
  type InstanceStatus,
  type Provider,
  type ProvisionResult,
  type SourceEngines,
} from './provider.ts';

/**
 * Dispatch by source type: services go to the core provider methods (never gated by a capability); manifests,
 * helm and argocd go to the provider's engine for that type, which it must both have and advertise in
 * capabilities(), else unsupported_source naming provider and type. An unknown type is invalid_source. Both are
 * SourceErrors, which no retry can fix. docs/providers.md has the table.
 */

export interface DispatchTarget {
  instance_id: string;
  tenant_id: string;
  name: string;
  kind: WorkloadKind;
  labels?: Record<string, string>;
}

type SourceKind = 'services' | EngineSourceType;

/** Services (absent and '' included: rows created before sources existed), an engine's type, or invalid_source. */
function sourceKind(type: string | null | undefined): SourceKind {
  if (isServicesSource(type)) return 'services';
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

/** The provider's engine of `kind` when it has one and advertises its capability. */
function usableEngine<K extends EngineSourceType>(provider: Provider, kind: K): SourceEngines[K] | undefined {
  if (!provider.capabilities().includes(ENGINE_CAPABILITY[kind])) return undefined;
  return provider.engines?.[kind];
}

/** Whether the provider can run a source of this type (services: always). */
export function supportsSource(provider: Provider, type: string | null | undefined): boolean {
  const kind = sourceKind(type);
  return kind === 'services' || usableEngine(provider, kind) !== undefined;
}

/** The engine of `kind`, or unsupported_source naming the provider and the capability. */
function engine<K extends EngineSourceType>(provider: Provider, kind: K): NonNullable<SourceEngines[K]> {
  const found = usableEngine(provider, kind);
  if (found) return found;
  throw new SourceError(
    'unsupported_source',
    `provider ${providerName(provider)} does not support the ${kind} source (capability ${ENGINE_CAPABILITY[kind]})`,
    { field: 'source.type' },
  );
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

/** Provisions a rendered source: the provider's provision, or the engine's apply. */
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
      return engine(provider, kind).apply(
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
      return engine(provider, kind).apply(
        {
          instance_id: target.instance_id,
          tenant_id: target.tenant_id,
          namespace: '',
          chart: payload(rendered.helm, 'helm'),
        },
        opts,
      );
    case 'argocd':
      return engine(provider, kind).apply(
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

/** Removes what provisionSource created (convergent, as the engines are): deprovision, or the engine's remove. */
export async function deprovisionSource(
  provider: Provider,
  type: string | null | undefined,
  instanceId: string,
  opts?: CallOptions,
): Promise<void> {
  const kind = sourceKind(type);
  if (kind === 'services') return provider.deprovision(instanceId, opts);
  return engine(provider, kind).remove(instanceId, opts);
}

/** The instance's status from what runs it: the provider's status, or the engine's. */
export async function sourceStatus(
  provider: Provider,
  type: string | null | undefined,
  instanceId: string,
  opts?: CallOptions,
): Promise<InstanceStatus> {
  const kind = sourceKind(type);
  if (kind === 'services') return provider.status(instanceId, opts);
  return engine(provider, kind).status(instanceId, opts);
}
