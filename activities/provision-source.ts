import { injectSecretEnv } from '../domain/sources/secret-env.ts';
import { resolve } from '../domain/sources/variables.ts';
import { provisionSource } from '../providers/dispatch.ts';
import { renderSource } from '../providers/dispatch-render.ts';
import type { KustomizeOptions } from '../providers/kustomize.ts';
import type { CallOptions, Provider, ProvisionResult } from '../providers/provider.ts';
import { resolveSecretBindings, type SecretStore } from '../providers/secret-store.ts';
import type { ProvisionInput } from './instance-activity-types.ts';
import type { RedactionScope } from './secret-redaction-scope.ts';

/**
 * Resolves the variables, renders the source, fills secret variables from the secret store (the tenant's
 * secrets only) and hands the result to the provider's engine for the source type. The rendered source holds
 * secret values: it lives only here and in the provider call, never in a return value, a log line or the
 * workflow's history; the resolved values go to `redaction`, which takes them out of whatever the call lets out.
 */
export async function provisionFromSource(
  provider: Provider,
  input: ProvisionInput,
  secrets: SecretStore,
  opts: CallOptions,
  redaction: RedactionScope,
  kustomize: KustomizeOptions = {},
): Promise<ProvisionResult> {
  const { request } = input;
  const source = input.source ?? { type: 'services' as const, services: request.services };
  const { scope, bindings } = resolve(input.variables, input.variable_values, {
    instance: { id: request.instance_id, name: request.name },
    tenant: { id: request.tenant_id },
    region: input.region ?? '',
  });
  let rendered = await renderSource(source, scope, {
    kustomize,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  if (bindings.length > 0) {
    const values = await resolveSecretBindings(secrets, bindings, {
      tenant_id: request.tenant_id,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    redaction.useResolved(bindings, values);
    rendered = injectSecretEnv(rendered, bindings, values);
  }
  return provisionSource(
    provider,
    rendered,
    {
      instance_id: request.instance_id,
      tenant_id: request.tenant_id,
      name: request.name,
      kind: request.kind,
      ...(request.labels ? { labels: request.labels } : {}),
    },
    opts,
  );
}
