import { SourceError } from './errors.ts';
import { compilePattern } from './pattern.ts';
import { envKeyOf, secretBindingOf } from './secret-bindings.ts';
import { SECRET_KEY_RULE, secretKeySegments } from './secret-key.ts';
import { parseTemplate, renderTemplate, TemplateError, templatePaths } from './template.ts';

/**
 * Variables: definitions, their structural validation and their resolution into
 * the template scope `{var, instance, tenant, region}` plus the secret bindings. Plain TS: safe in workflows.
 */

export { compilePattern } from './pattern.ts';

export const VARIABLE_TYPES = ['string', 'int', 'bool', 'enum', 'secret'] as const;
export type VariableType = (typeof VARIABLE_TYPES)[number];

export const SECRET_TYPES = ['env', 'file', 'registry', 'tls'] as const;
export type SecretType = (typeof SECRET_TYPES)[number];

export interface SecretRef {
  /** The key of one of the caller's tenant's secrets, e.g. `db/password` (see secret-key.ts). */
  key: string;
  type?: SecretType;
}

export interface Definition {
  name: string;
  description?: string;
  type: VariableType;
  required?: boolean;
  default?: unknown;
  enum?: string[];
  secret?: SecretRef;
  /** A template (`{{ .var.x }}.{{ .region }}`) computing the value; the result is always a string. */
  expression?: string;
  /** A regular expression the value must contain a match of (unanchored, like Go's MatchString). */
  pattern?: string;
}

export interface DerivedContext {
  instance: { id: string; name: string };
  tenant: { id: string };
  region?: string;
}

export type VariableValue = string | number | boolean;

/** The template root: `{{ .var.x }}`, `{{ .instance.id }}`, `{{ .instance.name }}`, `{{ .tenant.id }}`, `{{ .region }}`. */
export interface TemplateScope {
  var: Record<string, VariableValue>;
  instance: { id: string; name: string };
  tenant: { id: string };
  region: string;
}

/**
 * A secret variable: the provider activities resolve `ref` (a key of the instance's tenant) from the secret
 * store, into the env var `env_key`.
 */
export interface SecretBinding {
  var_name: string;
  env_key: string;
  ref: string;
}

export interface Resolution {
  scope: TemplateScope;
  bindings: SecretBinding[];
}

export { envKeyOf } from './secret-bindings.ts';

const ENV_KEY = /^[A-Z_][A-Z0-9_]*$/;

/**
 * Structural validation (ErrInvalidDefinition): a blank name, both default and expression, an unknown type, an
 * enum without members, a secret without `secret.key`, a secret with an expression, an invalid pattern, an
 * expression that does not parse, a duplicate name. Also rejected here: fields of the wrong JSON type, a secret
 * with a default (secret values come from the store only), a secret whose env key would not be a valid name.
 * Returns the definitions, typed; throws SourceError invalid_definition naming the variable and field.
 */
export function validateDefinitions(input: unknown, field = 'variables'): Definition[] {
  if (input === undefined || input === null) return [];
  if (!Array.isArray(input)) {
    throw new SourceError('invalid_definition', `invalid variable definitions: ${field} must be a list`, {
      field,
    });
  }
  const seen = new Set<string>();
  for (const [i, def] of input.entries()) {
    const at = `${field}[${i}]`;
    const name = isRecord(def) && typeof def.name === 'string' ? def.name : undefined;
    const fail = (where: string, message: string): never => {
      const label = name && name.trim() !== '' ? `variable ${JSON.stringify(name)}` : `variable #${i + 1}`;
      throw new SourceError('invalid_definition', `invalid definition of ${label}: ${message}`, {
        field: where,
        ...(name ? { variable: name } : {}),
      });
    };
    if (!isRecord(def)) return fail(at, 'must be an object');
    if (name === undefined || name.trim() === '') return fail(`${at}.name`, 'name is required');
    if (seen.has(name)) return fail(`${at}.name`, 'duplicate name');
    seen.add(name);

    if (!(VARIABLE_TYPES as readonly unknown[]).includes(def.type)) {
      return fail(
        `${at}.type`,
        `unknown type ${JSON.stringify(def.type)} (want ${VARIABLE_TYPES.join(', ')})`,
      );
    }
    const type = def.type as VariableType;
    if (def.description !== undefined && typeof def.description !== 'string')
      fail(`${at}.description`, 'must be a string');
    if (def.required !== undefined && typeof def.required !== 'boolean')
      fail(`${at}.required`, 'must be a boolean');
    const hasDefault = def.default !== undefined && def.default !== null;
    const expression = def.expression;
    if (expression !== undefined && typeof expression !== 'string')
      fail(`${at}.expression`, 'must be a string');
    const hasExpression = typeof expression === 'string' && expression !== '';
    if (hasDefault && hasExpression) fail(`${at}.default`, 'default and expression are mutually exclusive');

    if (def.enum !== undefined && def.enum !== null && !isStringArray(def.enum)) {
      fail(`${at}.enum`, 'must be a list of strings');
    }
    if (type === 'enum' && (!Array.isArray(def.enum) || def.enum.length === 0)) {
      fail(`${at}.enum`, 'an enum variable needs at least one member');
    }

    if (type === 'secret') {
      const secret = def.secret;
      if (!isRecord(secret) || typeof secret.key !== 'string' || secret.key.trim() === '') {
        fail(`${at}.secret`, 'a secret variable needs secret.key (the secret store reference)');
      }
      const s = secret as Record<string, unknown>;
      const key = secretKeySegments(s.key as string);
      if ('problem' in key) {
        throw new SourceError(
          'invalid_secret_key',
          `invalid definition of variable ${JSON.stringify(name)}: secret.key ${JSON.stringify(s.key)} ${key.problem}; ${SECRET_KEY_RULE}`,
          { field: `${at}.secret.key`, variable: name },
        );
      }
      if (s.type !== undefined && !(SECRET_TYPES as readonly unknown[]).includes(s.type)) {
        fail(
          `${at}.secret.type`,
          `unknown secret type ${JSON.stringify(s.type)} (want ${SECRET_TYPES.join(', ')})`,
        );
      }
      if (hasExpression) fail(`${at}.expression`, 'a secret variable cannot have an expression');
      if (hasDefault)
        fail(
          `${at}.default`,
          'a secret variable cannot have a default (its value comes from the secret store)',
        );
      if (!ENV_KEY.test(envKeyOf(name))) {
        fail(`${at}.name`, `a secret variable's name must make a valid env var name, not ${envKeyOf(name)}`);
      }
    }

    if (def.pattern !== undefined && def.pattern !== null && def.pattern !== '') {
      if (typeof def.pattern !== 'string') fail(`${at}.pattern`, 'must be a string');
      try {
        compilePattern(def.pattern as string);
      } catch (err) {
        fail(`${at}.pattern`, `invalid pattern: ${(err as Error).message}`);
      }
    }

    if (hasExpression) {
      try {
        parseTemplate(expression);
      } catch (err) {
        fail(`${at}.expression`, `expression does not parse: ${(err as Error).message}`);
      }
    }
  }
  return input as Definition[];
}

/**
 * Resolve(defs, values, derived). Secret variables become bindings and stay out of the scope. Plain
 * variables take `values[name]`, else the default; absent and required → missing_required, absent and optional
 * → left out of the scope; then the type checks (invalid_value). Computed variables are evaluated in rounds
 * until none is left, so their order does not matter; a round without progress is a cycle. Computed results are
 * strings. Values for unknown names are ignored (as in the reference); a value given for a secret variable is
 * refused, so a secret never travels in a request.
 */
export function resolve(
  defsInput: readonly Definition[] | undefined,
  values: Readonly<Record<string, unknown>> | undefined,
  derived: DerivedContext,
): Resolution {
  const defs = validateDefinitions(defsInput ?? []);
  const given = values ?? {};
  const scope: TemplateScope = {
    var: {},
    instance: { id: derived.instance.id, name: derived.instance.name },
    tenant: { id: derived.tenant.id },
    region: derived.region ?? '',
  };
  const bindings: SecretBinding[] = [];
  const computed: Definition[] = [];
  const unset = new Set<string>();
  const secrets = new Set<string>();

  for (const def of defs) {
    if (def.type === 'secret') {
      if (Object.hasOwn(given, def.name) && given[def.name] !== undefined) {
        throw new SourceError(
          'invalid_value',
          `variable ${JSON.stringify(def.name)} is a secret: its value comes from the secret store and must not be given`,
          { field: `variable_values.${def.name}`, variable: def.name },
        );
      }
      secrets.add(def.name);
      bindings.push(secretBindingOf(def)!);
      continue;
    }
    if (def.expression) {
      computed.push(def);
      continue;
    }
    const fromValues =
      Object.hasOwn(given, def.name) && given[def.name] !== undefined && given[def.name] !== null;
    const raw = fromValues ? given[def.name] : def.default;
    if (raw === undefined || raw === null) {
      if (def.required) {
        throw new SourceError('missing_required', `variable ${JSON.stringify(def.name)} is required`, {
          field: `variable_values.${def.name}`,
          variable: def.name,
        });
      }
      unset.add(def.name);
      continue;
    }
    scope.var[def.name] = checkValue(
      def,
      raw,
      fromValues ? `variable_values.${def.name}` : `variables.${def.name}.default`,
    );
  }

  let pending = computed;
  while (pending.length > 0) {
    const failures = new Map<string, unknown>();
    const next: Definition[] = [];
    for (const def of pending) {
      try {
        scope.var[def.name] = renderTemplate(def.expression!, scope);
      } catch (err) {
        failures.set(def.name, err);
        next.push(def);
      }
    }
    if (next.length === pending.length) throw stuck(next, failures, { unset, secrets });
    pending = next;
  }
  return { scope, bindings };
}

/** No progress in a round: a real cycle, or an expression that can never evaluate (reported as such). */
function stuck(
  pending: Definition[],
  failures: Map<string, unknown>,
  known: { unset: Set<string>; secrets: Set<string> },
): SourceError {
  const waiting = new Set(pending.map((d) => d.name));
  for (const def of pending) {
    const err = failures.get(def.name);
    const field = `variables.${def.name}.expression`;
    const label = `variable ${JSON.stringify(def.name)}`;
    if (!(err instanceof TemplateError) || err.kind !== 'missing_key' || !err.path) {
      return new SourceError('invalid_value', `${label}: expression failed: ${errorMessage(err)}`, {
        field,
        variable: def.name,
      });
    }
    const [root, name] = err.path;
    if (root === 'var' && name !== undefined && err.path.length === 2 && waiting.has(name)) continue;
    if (root === 'var' && name !== undefined && known.secrets.has(name)) {
      return new SourceError(
        'invalid_definition',
        `${label}: expression uses the secret variable ${JSON.stringify(name)}; secrets cannot be used in templates`,
        { field, variable: def.name },
      );
    }
    if (root === 'var' && name !== undefined && known.unset.has(name)) {
      return new SourceError(
        'missing_required',
        `${label}: expression uses variable ${JSON.stringify(name)}, which has no value`,
        { field: `variable_values.${name}`, variable: name },
      );
    }
    return new SourceError('invalid_definition', `${label}: expression failed: ${err.message}`, {
      field,
      variable: def.name,
    });
  }
  const names = pending.map((d) => d.name);
  return new SourceError('cycle', `variable cycle: [${names.join(' ')}]`, {
    variables: names,
    variable: names[0]!,
  });
}

/** The names of the variables an expression uses (`{{ .var.x }}`), for callers that want a dependency view. */
export function expressionVariables(expression: string): string[] {
  return templatePaths(expression)
    .filter((p) => p[0] === 'var' && p.length >= 2)
    .map((p) => p[1]!);
}

function checkValue(def: Definition, raw: unknown, field: string): VariableValue {
  const invalid = (message: string): never => {
    throw new SourceError('invalid_value', `variable ${JSON.stringify(def.name)}: ${message}`, {
      field,
      variable: def.name,
    });
  };
  switch (def.type) {
    case 'string':
    case 'enum': {
      if (typeof raw !== 'string') return invalid(`must be a string, not ${jsonType(raw)}`);
      if (def.type === 'enum' && !(def.enum ?? []).includes(raw)) {
        return invalid(
          `${JSON.stringify(raw)} is not one of ${(def.enum ?? []).map((e) => JSON.stringify(e)).join(', ')}`,
        );
      }
      if (def.pattern && !compilePattern(def.pattern).test(raw)) {
        return invalid(`${JSON.stringify(raw)} does not match the pattern ${def.pattern}`);
      }
      return raw;
    }
    case 'int': {
      const n = toInt(raw);
      if (n === undefined) return invalid(`must be an integer, not ${describe(raw)}`);
      return n;
    }
    case 'bool': {
      const b = toBool(raw);
      if (b === undefined) return invalid(`must be a boolean, not ${describe(raw)}`);
      return b;
    }
    default:
      return invalid(`cannot take a value of type ${def.type}`);
  }
}

/** Go's rules: an int, a float (truncated toward zero) or a decimal string (strconv.Atoi: optional sign, digits). */
function toInt(raw: unknown): number | undefined {
  if (typeof raw === 'number') {
    if (!Number.isFinite(raw)) return undefined;
    const n = Math.trunc(raw);
    return Number.isSafeInteger(n) ? n + 0 : undefined;
  }
  if (typeof raw === 'string' && /^[+-]?\d+$/.test(raw)) {
    const n = Number(raw);
    return Number.isSafeInteger(n) ? n + 0 : undefined;
  }
  return undefined;
}

const TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const FALSE = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);

/** A bool, or a string parsed like Go's strconv.ParseBool. */
function toBool(raw: unknown): boolean | undefined {
  if (typeof raw === 'boolean') return raw;
  if (typeof raw === 'string') {
    if (TRUE.has(raw)) return true;
    if (FALSE.has(raw)) return false;
  }
  return undefined;
}

function jsonType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  return `a ${typeof value}`;
}

function describe(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : jsonType(value);
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'string');
}
