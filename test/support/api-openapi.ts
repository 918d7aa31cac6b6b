import assert from 'node:assert/strict';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import ajvFormats from 'ajv-formats';

// A CommonJS module: its default import is module.exports, which carries the plugin as `default`.
const addFormats = ajvFormats.default;

/**
 * Checks the API's answers against its own OpenAPI 3.1 document (GET /openapi.json) with ajv: the status
 * must be documented for the operation, the content type must be one the document names, and the body
 * must validate against the schema given for it.
 */
// biome-ignore lint/suspicious/noExplicitAny: an OpenAPI document is walked generically here
type Doc = any;

// biome-ignore lint/suspicious/noExplicitAny: tests read response bodies freely, as test/support/http.ts does
export interface CheckedResponse<T = any> {
  status: number;
  headers: Headers;
  /** Parsed JSON, or the text when the body is not JSON. */
  body: T;
  text: string;
}

export class OpenApiChecker {
  private readonly ajv: Ajv2020;
  private readonly validators = new Map<string, ValidateFunction>();
  private readonly templates: { method: string; template: string; pattern: RegExp }[] = [];
  /** Every (METHOD template status) the suite saw, for a coverage summary. */
  readonly seen = new Set<string>();

  constructor(readonly doc: Doc) {
    this.ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats(this.ajv);
    this.ajv.addSchema(doc, 'openapi.json');
    for (const [template, item] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) {
      const pattern = new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`);
      for (const method of Object.keys(item))
        this.templates.push({ method: method.toUpperCase(), template, pattern });
    }
  }

  static async load(baseUrl: string): Promise<OpenApiChecker> {
    const res = await fetch(`${baseUrl}/openapi.json`);
    assert.equal(res.status, 200);
    return new OpenApiChecker(await res.json());
  }

  /** The documented operation for a request, or undefined (an unknown route: it must answer 404/405). */
  operationOf(method: string, path: string): { template: string; operation: Doc } | undefined {
    const bare = path.split('?')[0] ?? '';
    const match = this.templates.find((t) => t.method === method && t.pattern.test(bare));
    if (!match) return undefined;
    return { template: match.template, operation: this.doc.paths[match.template][method.toLowerCase()] };
  }

  /** Asserts that the answer to `method path` is documented and matches its schema. */
  check(method: string, path: string, res: CheckedResponse): void {
    const found = this.operationOf(method === 'HEAD' ? 'GET' : method, path);
    const contentType = (res.headers.get('content-type') ?? '').split(';')[0]?.trim() ?? '';
    const where = `${method} ${path} → ${res.status}`;
    if (!found) {
      // Routes outside the document answer only with problems: unknown route, wrong method, no token.
      assert.ok([401, 404, 405, 400, 429].includes(res.status), `${where}: undocumented route answered`);
      assert.equal(contentType, 'application/problem+json', `${where}: problem+json`);
      this.validate('#/components/schemas/Problem', res.body, where);
      this.seen.add(`${method} (unrouted) ${res.status}`);
      return;
    }
    this.seen.add(`${method} ${found.template} ${res.status}`);
    const response = found.operation.responses?.[String(res.status)] ?? found.operation.responses?.default;
    assert.ok(response, `${where}: status ${res.status} is not documented for ${method} ${found.template}`);
    const content = response.content as Record<string, unknown> | undefined;
    if (!content) {
      assert.equal(res.text, '', `${where}: the document says no body`);
      return;
    }
    assert.ok(
      contentType in content,
      `${where}: content type ${contentType} not documented (${Object.keys(content)})`,
    );
    if (method === 'HEAD') return;
    const pointer = `#/paths/${escapePointer(found.template)}/${method.toLowerCase()}/responses/${res.status}/content/${escapePointer(contentType)}/schema`;
    if (contentType === 'application/x-ndjson') {
      for (const line of res.text.split('\n').filter(Boolean))
        this.validate(pointer, JSON.parse(line), where);
    } else if (contentType.endsWith('json')) {
      this.validate(pointer, res.body, where);
    }
  }

  validate(pointer: string, value: unknown, where: string): void {
    let validator = this.validators.get(pointer);
    if (!validator) {
      validator = this.ajv.compile({ $ref: `openapi.json${pointer}` });
      this.validators.set(pointer, validator);
    }
    if (!validator(value)) {
      assert.fail(
        `${where}: the body does not match the OpenAPI document: ${describe(validator.errors)}\n${JSON.stringify(value).slice(0, 2000)}`,
      );
    }
  }
}

function escapePointer(segment: string): string {
  return segment.replaceAll('~', '~0').replaceAll('/', '~1');
}

function describe(errors: ErrorObject[] | null | undefined): string {
  return (errors ?? [])
    .map((e) => `${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`)
    .join('; ');
}

export interface CallOptions {
  headers?: Record<string, string>;
  /** A raw body (sent as is) instead of JSON. */
  raw?: string | Buffer;
  signal?: AbortSignal;
  /** Skip the document check (the caller checks something the document cannot describe). */
  unchecked?: boolean;
}

// biome-ignore lint/suspicious/noExplicitAny: as above
export type ApiCall = <T = any>(
  method: string,
  path: string,
  body?: unknown,
  options?: CallOptions,
) => Promise<CheckedResponse<T>>;

/** A JSON client for the API under test whose every answer is checked against the OpenAPI document. */
export function checkedClient(baseUrl: string, checker: OpenApiChecker, token?: string): ApiCall {
  return async (method, path, body, options = {}) => {
    const headers: Record<string, string> = {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...options.headers,
    };
    const res = await fetch(`${baseUrl}${path}`, {
      method,
      headers,
      body: options.raw ?? (body === undefined ? undefined : JSON.stringify(body)),
      signal: options.signal,
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON: keep the text
    }
    const answer = { status: res.status, headers: res.headers, body: parsed as never, text };
    // Checked against the route the request reached: fetch resolves `..` (also `%2e%2e`) segments of the path.
    const reached = new URL(`${baseUrl}${path}`);
    if (!options.unchecked) checker.check(method, `${reached.pathname}${reached.search}`, answer);
    return answer;
  };
}
