import { PermanentProviderError, type Provider, type StopOptions } from './provider.ts';

/**
 * Whether a provider can do the per-instance operations that not every provider has (restart one service,
 * a chosen stop signal or timeout, exec), and the refusal naming the provider when it cannot. The API asks
 * before it sends anything (422 not_supported); the activity asks again, for commands sent by hand.
 */

function nameOf(provider: Provider): string {
  return provider.info().name;
}

export function restartServiceUnsupported(providerName: string): string {
  return `provider ${providerName} cannot restart a single service (capability restart:service)`;
}

/** Why the provider cannot restart one service, or undefined when it can. */
export function restartServiceProblem(provider: Provider): string | undefined {
  return provider.restartService && provider.capabilities().includes('restart:service')
    ? undefined
    : restartServiceUnsupported(nameOf(provider));
}

/** Why the provider cannot run a command in a container, or undefined when it can. */
export function execProblem(provider: Provider): string | undefined {
  return provider.exec && provider.capabilities().includes('exec')
    ? undefined
    : `provider ${nameOf(provider)} cannot run a command in an instance (capability exec)`;
}

/** The first stop option the provider cannot honour, with the field it came in, or undefined. */
export function stopOptionsProblem(
  provider: Provider,
  options: StopOptions,
): { field: 'signal' | 'timeout'; message: string } | undefined {
  const caps = provider.capabilities();
  if (options.signal !== undefined && !caps.includes('stop:signal')) {
    return {
      field: 'signal',
      message: `provider ${nameOf(provider)} cannot send a chosen stop signal (capability stop:signal)`,
    };
  }
  if (options.timeout_seconds !== undefined && !caps.includes('stop:timeout')) {
    return {
      field: 'timeout',
      message: `provider ${nameOf(provider)} cannot apply a chosen stop timeout (capability stop:timeout)`,
    };
  }
  return undefined;
}

/** The options to pass to the provider's stop; not_supported when it cannot honour one of them. */
export function stopOptionsFor(provider: Provider, options: StopOptions): StopOptions {
  const problem = stopOptionsProblem(provider, options);
  if (problem) throw new PermanentProviderError(problem.message, 'not_supported');
  return options;
}
