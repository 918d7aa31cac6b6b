import { z } from 'zod';

/** What the README's configuration table says about one variable (config/config-table.ts renders it). */
export interface SettingDoc {
  meaning: string;
  /**
   * The default as written in the table, when the parsed default is not a plain value (a range, a list) or the
   * variable has none but something else supplies one (e.g. `npm start`). Plain defaults are read off the schema.
   */
  default?: string;
}

/** The documentation of every setting, keyed by its schema. */
const settingDocs = new WeakMap<z.ZodType, SettingDoc>();

export function settingDoc(schema: z.ZodType): SettingDoc | undefined {
  return settingDocs.get(schema);
}

/** `schema` with its documentation: every variable of the configuration is declared through this. */
export function setting<T extends z.ZodType>(schema: T, meaning: string, defaultText?: string): T {
  settingDocs.set(schema, defaultText === undefined ? { meaning } : { meaning, default: defaultText });
  return schema;
}

/** A boolean variable: 1/true/yes/on or 0/false/no/off (any case); unset or empty: undefined. */
export function booleanVariable() {
  return z
    .string()
    .optional()
    .transform((raw, ctx): boolean | undefined => {
      const value = raw?.trim().toLowerCase();
      if (value === undefined || value === '') return undefined;
      if (['1', 't', 'true', 'yes', 'on'].includes(value)) return true;
      if (['0', 'f', 'false', 'no', 'off'].includes(value)) return false;
      ctx.addIssue({ code: 'custom', message: `expected a boolean, got "${raw}"` });
      return z.NEVER;
    });
}

/** A text variable whose unset or blank value means `fallback`; surrounding whitespace is dropped. */
export function textVariable(fallback: string) {
  return z
    .string()
    .optional()
    .transform((raw) => raw?.trim() || fallback);
}

/** An optional text variable, trimmed; blank is unset. */
export function optionalTextVariable() {
  return z
    .string()
    .optional()
    .transform((raw) => raw?.trim() || undefined);
}

/** A comma-separated list; blanks between commas are dropped. */
export function listVariable() {
  return z
    .string()
    .optional()
    .transform((raw) => splitList(raw));
}

export function splitList(raw: string | undefined): string[] {
  return (raw ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}
