import { ApplicationFailure, Context } from '@temporalio/activity';
import { CtrlplaneError } from '../domain/errors.ts';
import { SourceError } from '../domain/sources/errors.ts';
import { deprovisionSource, sourceStatus } from '../providers/dispatch.ts';
import { type CallOptions, PermanentProviderError, type Provider } from '../providers/provider.ts';
import type { ProviderRegistry } from '../providers/registry.ts';
import type { SecretStore } from '../providers/secret-store.ts';
import type { InstanceActivities } from './instance-activity-types.ts';
import { provisionFromSource } from './provision-source.ts';

const HEARTBEAT_INTERVAL_MS = 3_000;

type ProviderActivities = Pick<
  InstanceActivities,
  | 'provisionInstance'
  | 'startInstance'
  | 'stopInstance'
  | 'restartInstance'
  | 'scaleInstance'
  | 'deprovisionInstance'
  | 'observeInstance'
>;

/** Provider calls as activities: heartbeating, cancellable, and with permanent errors marked non-retryable. */
export function createProviderActivities(
  providers: ProviderRegistry,
  secrets: SecretStore,
): ProviderActivities {
  return {
    provisionInstance: (input) =>
      callProvider(providers, input.provider_name, (p, opts) => provisionFromSource(p, input, secrets, opts)),
    startInstance: ({ provider_name, instance_id, source_type }) =>
      callProvider(providers, provider_name, async (p, opts) => {
        // A helm, manifests or argocd source is running once its engine applied it; start is for services.
        if (isServicesSource(source_type)) await p.start(instance_id, opts);
        const { endpoints } = await sourceStatus(p, source_type, instance_id, opts);
        return { endpoints };
      }),
    stopInstance: ({ provider_name, instance_id }) =>
      callProvider(providers, provider_name, (p, opts) => p.stop(instance_id, opts)),
    restartInstance: ({ provider_name, instance_id, source_type }) =>
      callProvider(providers, provider_name, async (p, opts) => {
        await p.restart(instance_id, opts);
        const { endpoints } = await sourceStatus(p, source_type, instance_id, opts);
        return { endpoints };
      }),
    scaleInstance: ({ provider_name, instance_id, resources }) =>
      callProvider(providers, provider_name, (p, opts) => p.scale(instance_id, resources, opts)),
    deprovisionInstance: ({ provider_name, instance_id, source_type }) =>
      callProvider(providers, provider_name, (p, opts) =>
        deprovisionSource(p, source_type, instance_id, opts),
      ),
    observeInstance: ({ provider_name, instance_id, source_type }) =>
      callProvider(providers, provider_name, async (p, opts) => {
        const status = await sourceStatus(p, source_type, instance_id, opts);
        return { state: status.state, ...(status.message ? { message: status.message } : {}) };
      }),
  };
}

async function callProvider<T>(
  providers: ProviderRegistry,
  providerName: string,
  call: (provider: Provider, opts: CallOptions) => Promise<T>,
): Promise<T> {
  const context = Context.current();
  let provider: Provider;
  try {
    provider = providers.get(providerName);
  } catch (err) {
    if (err instanceof CtrlplaneError) throw ApplicationFailure.nonRetryable(err.message, err.code);
    throw err;
  }
  let lastProgress = 'started';
  const heartbeat = setInterval(() => context.heartbeat(lastProgress), HEARTBEAT_INTERVAL_MS);
  try {
    return await call(provider, {
      signal: context.cancellationSignal,
      progress: (detail) => {
        lastProgress = detail;
        context.heartbeat(detail);
      },
    });
  } catch (err) {
    if (err instanceof PermanentProviderError || err instanceof SourceError) {
      throw ApplicationFailure.nonRetryable(err.message, err.code);
    }
    throw err;
  } finally {
    clearInterval(heartbeat);
  }
}

/** Start, stop, restart and scale act on a services source; the other source types are run by their engine. */
function isServicesSource(sourceType: string | undefined): boolean {
  return sourceType === undefined || sourceType === '' || sourceType === 'services';
}
