import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { Provider } from '../providers/provider.ts';
import { ProviderRegistry } from '../providers/registry.ts';

const tracer = trace.getTracer('ctrlplane-provider');

/** The provider calls an activity makes that wait on the outside world: each is a client span. */
const TRACED_CALLS = new Set<string>([
  'provision',
  'deprovision',
  'start',
  'stop',
  'restart',
  'restartService',
  'exec',
  'scale',
  'status',
  'resources',
  'healthCheck',
  'capacitySnapshot',
  'applyManifests',
  'deleteManifests',
  'manifestStatus',
  'argoApply',
  'argoDelete',
  'argoStatus',
  'helmInstall',
  'helmUninstall',
  'helmStatus',
]);

/**
 * The same providers, each call of TRACED_CALLS a span `provider <name>.<call>` in the caller's trace (the
 * activity's), so a request's trace reaches into Docker or Kubernetes.
 */
export function tracedProviders(providers: ProviderRegistry): ProviderRegistry {
  const traced = new ProviderRegistry(providers.defaultName);
  for (const name of providers.names()) {
    traced.register(name, tracedProvider(name, providers.get(name)), providers.site(name));
  }
  return traced;
}

function tracedProvider(name: string, provider: Provider): Provider {
  return new Proxy(provider, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== 'function' || typeof property !== 'string' || !TRACED_CALLS.has(property)) {
        return typeof value === 'function' ? value.bind(target) : value;
      }
      return (...args: unknown[]) =>
        tracer.startActiveSpan(
          `provider ${name}.${property}`,
          { kind: SpanKind.CLIENT, attributes: { 'ctrlplane.provider': name } },
          async (span) => {
            try {
              return await value.apply(target, args);
            } catch (err) {
              span.recordException(err instanceof Error ? err : String(err));
              span.setStatus({
                code: SpanStatusCode.ERROR,
                message: err instanceof Error ? err.message : String(err),
              });
              throw err;
            } finally {
              span.end();
            }
          },
        );
    },
  });
}
