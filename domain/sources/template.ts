/**
 * The template subset of variables and sources: Go text/template restricted to `{{ .a.b }}` field paths,
 * executed with `missingkey=error`. Whitespace inside the braces is free; every other construct (pipelines,
 * functions, `if`, comments, trim markers `{{-`, a bare `{{ . }}`) is a parse error, and so is a key missing from
 * the data. Values print as Go's defaults would: strings as they are, integers in decimal, bools `true`/`false`.
 * A text without `{{` is returned untouched, without being parsed. Plain TS: safe inside workflow code.
 */

export type TemplateErrorKind = 'parse' | 'missing_key' | 'not_scalar';

export class TemplateError extends Error {
  override readonly name = 'TemplateError';
  constructor(
    readonly kind: TemplateErrorKind,
    message: string,
    /** The path of the action that failed (for missing_key and not_scalar). */
    readonly path?: readonly string[],
  ) {
    super(message);
  }
}

type Part = { text: string } | { path: string[]; action: string };

export interface CompiledTemplate {
  readonly parts: readonly Part[];
  /** Every `{{ .path }}` the template uses, in order (duplicates kept). */
  readonly paths: readonly (readonly string[])[];
}

const OPEN = '{{';
const CLOSE = '}}';
const PATH = /^(?:\.[\p{L}_][\p{L}\p{N}_]*)+$/u;

export function hasTemplate(text: string): boolean {
  return text.includes(OPEN);
}

export function parseTemplate(text: string): CompiledTemplate {
  const parts: Part[] = [];
  const paths: string[][] = [];
  let at = 0;
  while (at < text.length) {
    const open = text.indexOf(OPEN, at);
    if (open < 0) {
      parts.push({ text: text.slice(at) });
      break;
    }
    if (open > at) parts.push({ text: text.slice(at, open) });
    const close = text.indexOf(CLOSE, open + OPEN.length);
    if (close < 0)
      throw new TemplateError('parse', `unclosed action at offset ${open}: ${excerpt(text.slice(open))}`);
    const action = text.slice(open, close + CLOSE.length);
    const inner = text.slice(open + OPEN.length, close).trim();
    if (!PATH.test(inner)) {
      throw new TemplateError(
        'parse',
        `unsupported template action ${excerpt(action)}: only field paths such as {{ .var.name }} are supported`,
      );
    }
    const path = inner.slice(1).split('.');
    parts.push({ path, action });
    paths.push(path);
    at = close + CLOSE.length;
  }
  return { parts, paths };
}

/** Executes a compiled template against `data` (nested plain objects). */
export function executeTemplate(template: CompiledTemplate, data: unknown): string {
  let out = '';
  for (const part of template.parts) {
    out += 'text' in part ? part.text : format(lookup(data, part.path), part.path);
  }
  return out;
}

/** Parses and executes `text`; a text without `{{` comes back as it is. */
export function renderTemplate(text: string, data: unknown): string {
  if (!hasTemplate(text)) return text;
  return executeTemplate(parseTemplate(text), data);
}

/** The field paths `text` uses (empty for a text without `{{`); throws a parse TemplateError. */
export function templatePaths(text: string): (readonly string[])[] {
  if (!hasTemplate(text)) return [];
  return [...parseTemplate(text).paths];
}

function lookup(data: unknown, path: readonly string[]): unknown {
  let current = data;
  for (let i = 0; i < path.length; i++) {
    const key = path[i]!;
    if (!isRecord(current)) {
      throw new TemplateError(
        'not_scalar',
        `at <.${path.join('.')}>: can't evaluate field ${key} in type ${typeName(current)}`,
        path,
      );
    }
    if (!Object.hasOwn(current, key) || current[key] === undefined) {
      throw new TemplateError(
        'missing_key',
        `at <.${path.join('.')}>: map has no entry for key "${key}"`,
        path,
      );
    }
    current = current[key];
  }
  return current;
}

function format(value: unknown, path: readonly string[]): string {
  switch (typeof value) {
    case 'string':
      return value;
    case 'number':
    case 'bigint':
      return String(value);
    case 'boolean':
      return value ? 'true' : 'false';
    default:
      throw new TemplateError(
        'not_scalar',
        `at <.${path.join('.')}>: a ${typeName(value)} cannot be printed, only strings, numbers and bools`,
        path,
      );
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'list';
  if (typeof value === 'object') return 'map';
  return typeof value;
}

function excerpt(text: string): string {
  const oneLine = text.replace(/\s+/g, ' ');
  return JSON.stringify(oneLine.length > 60 ? `${oneLine.slice(0, 57)}...` : oneLine);
}
