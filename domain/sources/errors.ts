/**
 * Errors of the deployment-source library. Every one is a client error
 * (HTTP 400; invalid_secret_key 422) that no retry can fix; `field` and `variable` say what was wrong, never a
 * secret value.
 */
export const SOURCE_ERROR_CODES = [
  /** The source is malformed (ErrInvalidSource), or its type is unknown. */
  'invalid_source',
  /** The source cannot be rendered or run here: an unknown type at render, an engine the provider lacks, no kustomize. */
  'unsupported_source',
  /** A variable definition is malformed (ErrInvalidDefinition). */
  'invalid_definition',
  /** A secret variable's key would name something outside the caller's tenant (or is no key at all): 422. */
  'invalid_secret_key',
  /** A required variable has neither a value nor a default (ErrMissingRequired). */
  'missing_required',
  /** A variable's value (or default) fails its type, enum or pattern (ErrInvalidValue). */
  'invalid_value',
  /** Computed variables depend on each other (ErrCycle). */
  'cycle',
  /** A template in the source failed: a missing key, an unsupported construct, a kustomize build error. */
  'render_failed',
] as const;

export type SourceErrorCode = (typeof SOURCE_ERROR_CODES)[number];

export interface SourceErrorDetails {
  /** The request field at fault, e.g. `source.helm.chart`, `variables[2].pattern`, `service web env FOO`. */
  field?: string;
  /** The variable at fault. */
  variable?: string;
  /** For a cycle: the variables involved. */
  variables?: string[];
}

export class SourceError extends Error {
  override readonly name = 'SourceError';
  readonly field?: string;
  readonly variable?: string;
  readonly variables?: string[];

  constructor(
    readonly code: SourceErrorCode,
    message: string,
    details: SourceErrorDetails = {},
  ) {
    super(message);
    if (details.field !== undefined) this.field = details.field;
    if (details.variable !== undefined) this.variable = details.variable;
    if (details.variables !== undefined) this.variables = details.variables;
  }

  /** All of them are the caller's fault. */
  get status(): number {
    return this.code === 'invalid_secret_key' ? 422 : 400;
  }
}

export function isSourceError(err: unknown): err is SourceError {
  return err instanceof SourceError;
}
