import { z } from 'zod';

/** Limits of POST /v1/instances/{id}/exec: what a tenant may ask a container to run, and for how long. */
export const EXEC_LIMITS = {
  /** Arguments of one command, the program included. */
  maxArgs: 256,
  maxArgBytes: 4096,
  /** All arguments together: a command line, not a payload (stdin is for data). */
  maxCommandBytes: 16_384,
  // Below the API's JSON body limit (256 KiB), so that a too-large stdin is a 400 naming it.
  maxStdinBytes: 65_536,
  /** Seconds; the default when no timeout is given. */
  defaultTimeoutSeconds: 30,
  maxTimeoutSeconds: 60,
  /** Of stdout and of stderr, each: what is beyond is cut and the answer says so. */
  maxOutputBytes: 1_048_576,
} as const;

/** UTF-8 length without Buffer, which the workflow sandbox (it parses these arguments too) does not have. */
export function utf8Length(s: string): number {
  let n = 0;
  for (const ch of s) {
    const code = ch.codePointAt(0) ?? 0;
    n += code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
  }
  return n;
}

const byteLength = utf8Length;

/** The program and its arguments, run as given (no shell); no NUL, which no exec can pass on. */
export const execArgvSchema = z
  .array(
    z
      .string()
      .refine((arg) => byteLength(arg) <= EXEC_LIMITS.maxArgBytes, {
        message: `must be at most ${EXEC_LIMITS.maxArgBytes} bytes`,
      })
      .refine((arg) => !arg.includes('\0'), { message: 'must not contain a NUL character' }),
  )
  .min(1, 'must name the program to run')
  .max(EXEC_LIMITS.maxArgs)
  .refine((argv) => argv[0] !== '', { message: 'must name the program to run', path: [0] })
  .refine((argv) => argv.reduce((n, arg) => n + byteLength(arg), 0) <= EXEC_LIMITS.maxCommandBytes, {
    message: `must be at most ${EXEC_LIMITS.maxCommandBytes} bytes in all`,
  });
