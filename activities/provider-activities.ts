import { ApplicationFailure, Context } from '@temporalio/activity';
import { CtrlplaneError } from '../domain/errors.ts';
import { isServicesSource } from '../domain/sources/deployment-source.ts';
import { deprovisionSource, sourceStatus } from '../providers/dispatch.ts';
import type { KustomizeOptions } from '../providers/kustomize.ts';
import { restartServiceUnsupported, stopOptionsFor } from '../providers/operation-support.ts';
import { type CallOptions, PermanentProviderError, type Provider } from '../providers/provider.ts';
import type { ProviderRegistry } from '../providers/registry.ts';
import type { SecretStore } from '../providers/secret-store.ts';
import type { InstanceActivities, ProviderCall } from './instance-activity-types.ts';
import type { ProviderActivityName } from './provider-activity-names.ts';
import { provisionFromSource } from './provision-source.ts';
import { RedactionScope, redactorFor } from './secret-redaction-scope.ts';

const HEARTBEAT_INTERVAL_MS = 3_000;

export type ProviderActivities = Pick<InstanceActivities, ProviderActivityName>;

/**
 * Provider calls as activities: heartbeating, cancellable, with permanent errors marked non-retryable, and the
 * instance's secret values redacted from every error, status message and heartbeat they let out.
 */
export function createProviderActivities(
  providers: ProviderRegistry,
  secrets: SecretStore,
  kustomize: KustomizeOptions = {},
): ProviderActivities {
  /** A call on an existing instance: the redactor comes from its secret references, resolved first. */
  const onInstance = <T>(
    input: ProviderCall,
    call: (provider: Provider, opts: CallOptions, redaction: RedactionScope) => Promise<T>,
  ): Promise<T> =>
    callProvider(providers, input.provider_name, async (provider, opts, redaction) => {
      redaction.use(await redactorFor(secrets, input.secret_refs, Context.current().cancellationSignal));
      return call(provider, opts, redaction);
    });

  return {
    // Provision resolves the secrets itself (it injects them) and hands them to the scope as it does.
    provisionInstance: (input) =>
      callProvider(providers, input.provider_name, (p, opts, redaction) =>
        provisionFromSource(p, input, secrets, opts, redaction, kustomize),
      ),
    startInstance: (input) =>
      onInstance(input, async (p, opts) => {
        // A helm, manifests or argocd source is running once its engine applied it; start is for services.
        if (isServicesSource(input.source_type)) await p.start(input.instance_id, opts);
        const { endpoints } = await sourceStatus(p, input.source_type, input.instance_id, opts);
        return { endpoints };
      }),
    stopInstance: (input) =>
      onInstance(input, (p, opts) =>
        input.stop
          ? p.stop(input.instance_id, opts, stopOptionsFor(p, input.stop))
          : p.stop(input.instance_id, opts),
      ),
    restartService: (input) =>
      onInstance(input, (p, opts) => {
        if (!p.restartService || !p.capabilities().includes('restart:service')) {
          throw new PermanentProviderError(restartServiceUnsupported(p.info().name), 'not_supported');
        }
        return p.restartService(input.instance_id, input.service, opts);
      }),
    restartInstance: (input) =>
      onInstance(input, async (p, opts) => {
        await p.restart(input.instance_id, opts);
        const { endpoints } = await sourceStatus(p, input.source_type, input.instance_id, opts);
        return { endpoints };
      }),
    scaleInstance: (input) =>
      onInstance(input, (p, opts) => p.scale(input.instance_id, input.resources, opts)),
    deprovisionInstance: (input) =>
      onInstance(input, (p, opts) => deprovisionSource(p, input.source_type, input.instance_id, opts)),
    observeInstance: (input) =>
      onInstance(input, async (p, opts, redaction) => {
        const status = await sourceStatus(p, input.source_type, input.instance_id, opts);
        const message = status.message ? redaction.redact(status.message) : '';
        return { state: status.state, ...(message ? { message } : {}) };
      }),
  };
}

async function callProvider<T>(
  providers: ProviderRegistry,
  providerName: string,
  call: (provider: Provider, opts: CallOptions, redaction: RedactionScope) => Promise<T>,
): Promise<T> {
  const context = Context.current();
  let provider: Provider;
  try {
    provider = providers.get(providerName);
  } catch (err) {
    if (err instanceof CtrlplaneError) throw ApplicationFailure.nonRetryable(err.message, err.code);
    throw err;
  }
  const redaction = new RedactionScope();
  let lastProgress = 'started';
  const heartbeat = setInterval(() => context.heartbeat(lastProgress), HEARTBEAT_INTERVAL_MS);
  try {
    return await call(
      provider,
      {
        signal: context.cancellationSignal,
        progress: (detail) => {
          lastProgress = redaction.redact(detail);
          context.heartbeat(lastProgress);
        },
        redact: redaction.redact,
      },
      redaction,
    );
  } catch (err) {
    throw redaction.failure(err, context.cancellationSignal.aborted);
  } finally {
    clearInterval(heartbeat);
  }
}
