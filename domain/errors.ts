/** Stable error codes: the API maps them to HTTP statuses and they appear in problem+json bodies. */
export const ERROR_STATUS = {
  invalid_request: 400,
  provider_not_found: 400,
  /** Deployment sources and variables (domain/sources/errors.ts SourceError codes): the caller's fault. */
  invalid_source: 400,
  unsupported_source: 400,
  invalid_definition: 400,
  missing_required: 400,
  invalid_value: 400,
  cycle: 400,
  render_failed: 400,
  /** datacenter_id names no datacenter of the caller's tenant. */
  datacenter_not_found: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  request_timeout: 408,
  already_exists: 409,
  invalid_state: 409,
  suspended: 409,
  /** The datacenter is in maintenance, draining or offline: it takes no new instances. */
  datacenter_unavailable: 409,
  /** A request with the same Idempotency-Key is still being processed. */
  request_in_progress: 409,
  /** If-Match named a version of the instance that is no longer current. */
  precondition_failed: 412,
  payload_too_large: 413,
  unsupported_media_type: 415,
  /** An Idempotency-Key was reused with a different request. */
  idempotency_key_reused: 422,
  /** A secret variable's key is not a key inside the caller's tenant (an absolute path, `..`, …). */
  invalid_secret_key: 422,
  /** The provider refused the spec for good (a container config the engine rejects, an object the API rejects). */
  invalid_spec: 422,
  /** The image is neither present nor pullable. */
  image_not_found: 422,
  /** The image is not on the operator's allowlist and the tenant's registry credentials could not pull it. */
  image_not_allowed: 422,
  /** The instance's provider cannot do this (restart one service, send a chosen stop signal, exec). */
  not_supported: 422,
  rate_limited: 429,
  internal: 500,
  provider_unavailable: 503,
  /** The provider's host cannot take another instance (its network pool or its instance limit is used up). */
  capacity_exhausted: 503,
  temporal_unavailable: 503,
  /** The read model's database could not be reached (restarting, or connections cut): retry shortly. */
  database_unavailable: 503,
  provider_failed: 502,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export interface FieldIssue {
  field: string;
  message: string;
}

export class CtrlplaneError extends Error {
  override readonly name = 'CtrlplaneError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly issues: FieldIssue[] = [],
  ) {
    super(message);
  }

  get status(): number {
    return ERROR_STATUS[this.code];
  }
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && value in ERROR_STATUS;
}
