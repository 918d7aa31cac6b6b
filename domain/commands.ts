import { z } from 'zod';
import { instanceNameSchema, labelsSchema, suspendReasonSchema } from './schemas/instance-fields.ts';
import { POLICY_FIELDS, updatePolicyFields } from './schemas/lifecycle-policy.ts';
import { servicesSchema } from './schemas/service-spec.ts';

/**
 * The eight lifecycle commands and their arguments: one schema per command, which both the API (request bodies)
 * and the instance workflow (update validators, signals) parse with, so every limit is written once here. What
 * each command may do in which state is the rules table of domain/command-rules.ts; docs/lifecycle.md tells the
 * whole story.
 */
export const COMMAND_NAMES = [
  'start',
  'stop',
  'restart',
  'scale',
  'suspend',
  'unsuspend',
  'update',
  'delete',
] as const;
export type CommandName = (typeof COMMAND_NAMES)[number];

/** start, stop, restart and delete take no arguments; an empty object is accepted. */
export const emptyBodySchema = z.strictObject({}).meta({ id: 'EmptyRequest' });

/** Resources of the main service; the fields given replace the current ones. */
export const scaleInstanceSchema = z
  .strictObject({
    cpu_millis: z.number().int().min(0).max(1_000_000).optional(),
    memory_mb: z.number().int().min(0).max(16_777_216).optional(),
    replicas: z.number().int().min(1).max(1000).optional(),
  })
  .superRefine((req, ctx) => {
    if (req.cpu_millis === undefined && req.memory_mb === undefined && req.replicas === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: [],
        message: 'give at least one of cpu_millis, memory_mb, replicas',
      });
    }
  })
  .meta({ id: 'ScaleRequest' });

/** Operator only: stops the instance and refuses start, restart and scale until it is lifted. */
export const suspendInstanceSchema = z
  .strictObject({ reason: suspendReasonSchema })
  .meta({ id: 'SuspendRequest' });

/** Operator only: with a reason, lifts only a suspension for that reason (the billing sweep lifts `billing`). */
export const unsuspendInstanceSchema = z
  .strictObject({ reason: suspendReasonSchema.optional() })
  .meta({ id: 'UnsuspendRequest' });

/** Rename, relabel, respecify or change lifecycle policies; each field present replaces the stored one. */
export const updateInstanceSchema = z
  .strictObject({
    name: instanceNameSchema.optional(),
    services: servicesSchema.optional(),
    labels: labelsSchema.optional(),
    ...updatePolicyFields,
  })
  .superRefine((req, ctx) => {
    const fields = ['name', 'services', 'labels', ...POLICY_FIELDS] as const;
    if (fields.every((field) => req[field] === undefined)) {
      ctx.addIssue({ code: 'custom', path: [], message: `give at least one of ${fields.join(', ')}` });
    }
  })
  .meta({ id: 'UpdateRequest' });

export const COMMAND_ARGUMENTS = {
  start: emptyBodySchema,
  stop: emptyBodySchema,
  restart: emptyBodySchema,
  scale: scaleInstanceSchema,
  suspend: suspendInstanceSchema,
  unsuspend: unsuspendInstanceSchema,
  update: updateInstanceSchema,
  delete: emptyBodySchema,
} as const satisfies Record<CommandName, z.ZodType>;

/** Arguments as a command carries them once parsed (defaults filled in). */
export type CommandArgs = { [N in CommandName]: NoneAsEmpty<z.output<(typeof COMMAND_ARGUMENTS)[N]>> };
/** Arguments as a caller may send them. */
export type CommandInput = { [N in CommandName]: NoneAsEmpty<z.input<(typeof COMMAND_ARGUMENTS)[N]>> };

/** zod types a strict empty object as `Record<string, never>`, which no request (with its request_id) fits. */
type NoneAsEmpty<T> = T extends Record<string, never> ? Record<never, never> : T;

/** One command with its arguments: `switch (command.name)` narrows `command.args`. */
export type CommandOf<N extends CommandName> = { [K in N]: { name: K; args: CommandArgs[K] } }[N];
export type Command = CommandOf<CommandName>;

/** Why arguments were refused: the first problem, naming its field (`replicas: Too small…`). */
export type ParsedCommand = { ok: true; command: Command } | { ok: false; message: string };

/** Parses `args` as the arguments of `name`. Deterministic: the workflow runs it in update validators too. */
export function parseCommand(name: CommandName, args: unknown): ParsedCommand {
  const parsed = COMMAND_ARGUMENTS[name].safeParse(args ?? {});
  if (parsed.success) return { ok: true, command: { name, args: parsed.data } as Command };
  const [issue] = parsed.error.issues;
  const field = issue?.path.map(String).join('.') ?? '';
  const message = issue?.message ?? 'invalid arguments';
  return { ok: false, message: field ? `${field}: ${message}` : `${name}: ${message}` };
}
