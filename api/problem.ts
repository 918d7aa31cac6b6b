import type { Response } from 'express';
import { CtrlplaneError, ERROR_STATUS, type ErrorCode, type FieldIssue } from '../domain/errors.ts';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

const TITLES: Record<ErrorCode, string> = {
  invalid_request: 'Invalid request',
  invalid_spec: 'Spec refused by the provider',
  image_not_found: 'Image not found',
  image_not_allowed: 'Image not allowed',
  provider_not_found: 'Provider not found',
  invalid_source: 'Invalid deployment source',
  unsupported_source: 'Unsupported deployment source',
  invalid_definition: 'Invalid variable definition',
  invalid_secret_key: "Secret key outside the tenant's secrets",
  missing_required: 'Missing required variable',
  invalid_value: 'Invalid variable value',
  cycle: 'Variable cycle',
  render_failed: 'Template rendering failed',
  datacenter_not_found: 'Datacenter not found',
  datacenter_unavailable: 'Datacenter unavailable',
  unauthorized: 'Unauthorized',
  forbidden: 'Forbidden',
  not_found: 'Not found',
  method_not_allowed: 'Method not allowed',
  request_timeout: 'Timed out',
  already_exists: 'Already exists',
  invalid_state: 'Invalid state transition',
  suspended: 'Instance is suspended',
  request_in_progress: 'Request in progress',
  precondition_failed: 'Precondition failed',
  idempotency_key_reused: 'Idempotency key reused',
  payload_too_large: 'Payload too large',
  unsupported_media_type: 'Unsupported media type',
  not_supported: 'Not supported by the provider',
  rate_limited: 'Too many requests',
  internal: 'Internal error',
  provider_unavailable: 'Provider unavailable',
  capacity_exhausted: 'Host full',
  temporal_unavailable: 'Workflow service unavailable',
  database_unavailable: 'Database unavailable',
  provider_failed: 'Provider call failed',
};

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  instance?: string;
  errors?: FieldIssue[];
}

/** An RFC 9457 problem document; `code` is the stable machine-readable error code. */
export function problem(code: ErrorCode, detail: string, extras: Partial<Problem> = {}): Problem {
  return {
    type: `https://ctrlplane.dev/problems/${code.replaceAll('_', '-')}`,
    title: TITLES[code],
    status: ERROR_STATUS[code],
    detail,
    code,
    ...extras,
  };
}

export function sendProblem(res: Response, body: Problem): void {
  res.status(body.status).type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(body));
}

/** An error the caller may simply retry later: the problem response carries `Retry-After`. */
export class RetryableError extends CtrlplaneError {
  constructor(
    code: ErrorCode,
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(code, message);
  }
}
