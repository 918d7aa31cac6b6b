import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { SourceError } from '../domain/sources/errors.ts';
import { type ResolvedSecret, SecretRedactor } from '../domain/sources/secret-redaction.ts';
import type { SecretBinding } from '../domain/sources/variables.ts';
import { PermanentProviderError } from '../providers/provider.ts';
import { resolveSecretBindings, SecretNotFoundError, type SecretStore } from '../providers/secret-store.ts';
import type { SecretRefs } from './instance-activity-types.ts';

/**
 * What one provider activity knows about the instance's secret values, to redact them from everything the
 * activity lets out: the error it throws (which becomes the instance's error, an event and the Temporal
 * history), the status message it returns, its heartbeats. The provider gets `redact` too, to apply to
 * workload output before it cuts it.
 */
export class RedactionScope {
  private redactor = SecretRedactor.none;

  readonly redact = (text: string): string => this.redactor.redact(text);

  use(redactor: SecretRedactor): void {
    this.redactor = redactor;
  }

  useResolved(bindings: readonly SecretBinding[], values: Readonly<Record<string, string>>): void {
    this.redactor = redactorOf(bindings, values);
  }

  /**
   * The error as the activity throws it: a permanent error non-retryable, its message redacted; any other
   * error, when there is something to redact, as a retryable failure with its message and stack redacted.
   * A cancellation stays what it is (the SDK reports it as such; it carries no provider text).
   */
  failure(err: unknown, cancelled: boolean): unknown {
    if (err instanceof PermanentProviderError || err instanceof SourceError) {
      return ApplicationFailure.nonRetryable(this.redact(err.message), err.code);
    }
    if (!this.redactor.active || cancelled || err instanceof CancelledFailure) return err;
    if (err instanceof ApplicationFailure) {
      const copy = ApplicationFailure.create({
        message: this.redact(err.message),
        ...(err.type ? { type: err.type } : {}),
        nonRetryable: err.nonRetryable ?? false,
      });
      copy.stack = this.redact(err.stack ?? '');
      return copy;
    }
    const error = err instanceof Error ? err : new Error(String(err));
    const copy = ApplicationFailure.create({
      message: this.redact(error.message),
      type: error.name,
      nonRetryable: false,
    });
    copy.stack = this.redact(error.stack ?? '');
    return copy;
  }
}

/**
 * A redactor for a call on an instance with secret variables: their values, resolved in the instance's tenant.
 * When the store cannot give them (a secret removed since, the store away), the provider's text cannot be
 * checked, so it is withheld as a whole; the call itself goes on.
 */
export async function redactorFor(
  store: SecretStore,
  refs: SecretRefs | undefined,
  signal: AbortSignal,
): Promise<SecretRedactor> {
  if (!refs || refs.bindings.length === 0) return SecretRedactor.none;
  try {
    const values = await resolveSecretBindings(store, refs.bindings, { tenant_id: refs.tenant_id, signal });
    return redactorOf(refs.bindings, values);
  } catch (err) {
    signal.throwIfAborted();
    // Stop, deprovision and the drift check must not hang on the store: go on, showing no provider text.
    const why = err instanceof SecretNotFoundError ? err.message : 'the secret store failed';
    return SecretRedactor.withholding(`the secret values to redact it from could not be read: ${why}`);
  }
}

function redactorOf(
  bindings: readonly SecretBinding[],
  values: Readonly<Record<string, string>>,
): SecretRedactor {
  const secrets: ResolvedSecret[] = bindings.map((b) => ({
    var_name: b.var_name,
    value: values[b.env_key] ?? '',
  }));
  return SecretRedactor.of(secrets);
}
