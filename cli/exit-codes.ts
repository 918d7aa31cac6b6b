/**
 * What `ctrlplane` exits with, so a script can tell a retry from a mistake. README "Command line" lists them.
 */
export const EXIT = {
  ok: 0,
  /** Anything else: an unexpected answer, a bug. */
  error: 1,
  /** The command line or the spec file is wrong; nothing was sent. */
  usage: 2,
  /** 401 or 403: no token, a bad or expired one, or a role the route needs. */
  unauthorized: 3,
  /** 404: no such instance (in the token's tenant). */
  notFound: 4,
  /** 400, 409, 412, 422: the API refused the request (invalid input, the state machine refused, a conflict). */
  refused: 5,
  /** The instance ended up `failed` (create --wait, wait, a command with --wait). */
  failed: 6,
  /** A wait ran out before the state was reached (408, or the --timeout of the command). */
  timeout: 7,
  /** The API did not answer, or answered 429/503: the same command may work when retried later. */
  unavailable: 8,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An error that ends the command with its exit code and a one-line message on stderr. */
export class CliError extends Error {
  constructor(
    readonly exitCode: ExitCode,
    message: string,
  ) {
    super(message);
  }
}

export function exitCodeForStatus(status: number): ExitCode {
  if (status === 401 || status === 403) return EXIT.unauthorized;
  if (status === 404) return EXIT.notFound;
  if (status === 408) return EXIT.timeout;
  if (status === 429 || status === 502 || status === 503 || status === 504) return EXIT.unavailable;
  if (status === 400 || status === 409 || status === 412 || status === 415 || status === 422)
    return EXIT.refused;
  return EXIT.error;
}
