import { z } from 'zod';
import { execArgvSchema } from './schemas/exec-command.ts';
import { instanceNameSchema, labelsSchema, suspendReasonSchema } from './schemas/instance-fields.ts';
import { POLICY_FIELDS, updatePolicyFields } from './schemas/lifecycle-policy.ts';
import { serviceNameSchema, servicesSchema } from './schemas/service-spec.ts';
import { stopSignalSchema, stopTimeoutSchema } from './schemas/stop-options.ts';

/**
 * The lifecycle commands and their arguments: one schema per command, which both the API (request bodies)
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
  'rollback',
  'restart_service',
  'record_exec',
] as const;
export type CommandName = (typeof COMMAND_NAMES)[number];

/** start, restart and delete take no arguments; an empty object is accepted. */
export const emptyBodySchema = z.strictObject({}).meta({ id: 'EmptyRequest' });

/** How the containers are stopped; each field absent keeps the default (an empty body: as before). */
export const stopInstanceSchema = z
  .strictObject({ signal: stopSignalSchema.optional(), timeout: stopTimeoutSchema.optional() })
  .meta({ id: 'StopRequest' });

/** Restarts one service's container, the others left running. */
export const restartServiceSchema = z
  .strictObject({ service: serviceNameSchema })
  .meta({ id: 'RestartServiceRequest' });

/**
 * Not a change of the instance: the API ran a command in one of its containers (POST /exec) and has the
 * workflow record it, in order with the instance's other events. The output is never recorded.
 */
export const recordExecSchema = z
  .strictObject({
    service: serviceNameSchema,
    argv: execArgvSchema,
    exit_code: z.number().int().nullable(),
    timed_out: z.boolean(),
  })
  .meta({ id: 'RecordExecRequest' });

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

const updateFields = z.strictObject({
  name: instanceNameSchema.optional(),
  services: servicesSchema.optional(),
  labels: labelsSchema.optional(),
  ...updatePolicyFields,
});

function somethingToUpdate(req: z.infer<typeof updateFields>, ctx: z.RefinementCtx): void {
  const fields = ['name', 'services', 'labels', ...POLICY_FIELDS] as const;
  if (fields.every((field) => req[field] === undefined)) {
    ctx.addIssue({ code: 'custom', path: [], message: `give at least one of ${fields.join(', ')}` });
  }
}

/** Rename, relabel, respecify or change lifecycle policies; each field present replaces the stored one. */
export const updateInstanceSchema = updateFields.superRefine(somethingToUpdate).meta({ id: 'UpdateRequest' });

/**
 * A new release that fails to deploy on a running instance goes back to the previous one (safe deploys);
 * `false` leaves the instance failed, as it was before releases. The API takes it from the query string.
 */
const rollbackOnFailure = z.boolean().optional();

/** The update command: the request body and whether a failed deploy goes back to the previous release. */
export const updateCommandSchema = updateFields
  .extend({ rollback_on_failure: rollbackOnFailure })
  .superRefine(somethingToUpdate);

/** A release of the instance: its number (1, 2, 3 …) or its rel_ id. */
export const releaseSelectorSchema = z.union([
  z.number().int().min(1).max(2_147_483_647),
  z
    .string()
    .regex(/^rel_[0-7][0-9a-hjkmnp-tv-z]{25}$/, 'must be a release number or a rel_ id')
    .max(64),
]);

/** Re-applies a release's spec as a new release (`rollback to v3`). */
export const rollbackInstanceSchema = z
  .strictObject({ release: releaseSelectorSchema })
  .meta({ id: 'RollbackRequest' });

export const rollbackCommandSchema = rollbackInstanceSchema.extend({
  rollback_on_failure: rollbackOnFailure,
});

export const COMMAND_ARGUMENTS = {
  start: emptyBodySchema,
  stop: stopInstanceSchema,
  restart: emptyBodySchema,
  scale: scaleInstanceSchema,
  suspend: suspendInstanceSchema,
  unsuspend: unsuspendInstanceSchema,
  update: updateCommandSchema,
  delete: emptyBodySchema,
  rollback: rollbackCommandSchema,
  restart_service: restartServiceSchema,
  record_exec: recordExecSchema,
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
