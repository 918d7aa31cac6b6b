import { EXEC_LIMITS, execArgvSchema } from '../../domain/schemas/exec-command.ts';
import { serviceNameSchema } from '../../domain/schemas/service-spec.ts';
import { z } from './zod.ts';

/** POST /v1/instances/{id}/exec: no user, no TTY, no environment, no working directory: the container's own. */
export const execRequestSchema = z
  .strictObject({
    service: serviceNameSchema
      .optional()
      .openapi({ description: 'A service of the instance (default: the main service).' }),
    command: execArgvSchema.meta({
      description:
        `The program and its arguments, run as given (no shell): at most ${EXEC_LIMITS.maxArgs} arguments of ` +
        `${EXEC_LIMITS.maxArgBytes} bytes, ${EXEC_LIMITS.maxCommandBytes} bytes in all.`,
      example: ['cat', '/etc/os-release'],
    }),
    stdin: z
      .string()
      .refine((s) => Buffer.byteLength(s, 'utf8') <= EXEC_LIMITS.maxStdinBytes, {
        message: `must be at most ${EXEC_LIMITS.maxStdinBytes} bytes`,
      })
      .optional()
      .openapi({ description: "Written to the command's standard input, which is then closed." }),
    timeout: z
      .number()
      .int()
      .min(1)
      .max(EXEC_LIMITS.maxTimeoutSeconds)
      .optional()
      .openapi({
        description: `Seconds the command may run (default ${EXEC_LIMITS.defaultTimeoutSeconds}, at most ${EXEC_LIMITS.maxTimeoutSeconds}); then the answer has timed_out.`,
      }),
  })
  .meta({ id: 'ExecRequest' });

export type ExecRequestBody = z.infer<typeof execRequestSchema>;

export const execResultSchema = z
  .strictObject({
    exit_code: z
      .number()
      .int()
      .nullable()
      .openapi({ description: 'null when the command timed out or its exit code could not be learnt.' }),
    stdout: z.string(),
    stderr: z.string(),
    stdout_truncated: z
      .boolean()
      .openapi({ description: `stdout went beyond ${EXEC_LIMITS.maxOutputBytes} bytes and was cut there.` }),
    stderr_truncated: z.boolean(),
    timed_out: z.boolean(),
    service: z.string().openapi({ description: 'The service the command ran in.' }),
  })
  .meta({ id: 'ExecResult' });
