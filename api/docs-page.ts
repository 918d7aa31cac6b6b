import type { OpenApiDocument } from './openapi.ts';

/**
 * /docs: the OpenAPI document rendered as one self-contained HTML page (no scripts, styles or fonts fetched
 * from anywhere): every operation with its parameters, body and responses, then every schema.
 */
export function docsPage(doc: OpenApiDocument): string {
  const operations: string[] = [];
  const toc: string[] = [];
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    for (const method of ['get', 'post', 'patch', 'put', 'delete'] as const) {
      const op = (item as Record<string, OperationLike | undefined>)[method];
      if (!op) continue;
      operations.push(operation(method, path, op));
      toc.push(
        `<li><a href="#${esc(anchor(method, path, op))}"><span class="m">${esc(method)}</span> <code>${esc(path)}</code></a> ${esc(op.summary ?? '')}</li>`,
      );
    }
  }
  const schemas = Object.entries(doc.components?.schemas ?? {}).map(
    ([name, schema]) =>
      `<section id="schema-${esc(name)}"><h3>${esc(name)}</h3><pre>${linkRefs(esc(JSON.stringify(schema, null, 2)))}</pre></section>`,
  );
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(doc.info.title)} API ${esc(doc.info.version)}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:70rem;padding:0 1rem;line-height:1.4}
code,pre{font-family:ui-monospace,monospace;font-size:.85rem}pre{background:#f5f5f5;padding:.6rem;overflow:auto}
.op{border-top:1px solid #ddd;padding:.5rem 0}.m{display:inline-block;min-width:4.5rem;font-weight:bold;text-transform:uppercase}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left;vertical-align:top}
</style></head><body>
<h1>${esc(doc.info.title)} API <small>${esc(doc.info.version)}</small></h1>
<p>${esc(doc.info.description ?? '')}</p>
<p>The machine-readable document: <a href="/openapi.json">/openapi.json</a> (OpenAPI ${esc(doc.openapi)}).</p>
<h2>Operations</h2>
<ul>${toc.join('')}</ul>
${operations.join('\n')}
<h2>Schemas</h2>
${schemas.join('\n')}
</body></html>`;
}

interface OperationLike {
  summary?: string;
  operationId?: string;
  security?: unknown[];
  parameters?: { name: string; in: string; required?: boolean; description?: string; schema?: unknown }[];
  requestBody?: { content?: Record<string, { schema?: unknown }> };
  responses?: Record<string, { description?: string; content?: Record<string, { schema?: unknown }> }>;
}

function operation(method: string, path: string, op: OperationLike): string {
  const params = (op.parameters ?? [])
    .map(
      (p) =>
        `<tr><td><code>${esc(p.name)}</code></td><td>${esc(p.in)}</td><td>${p.required ? 'yes' : ''}</td>` +
        `<td>${esc(p.description ?? '')}</td><td><code>${linkRefs(esc(JSON.stringify(p.schema ?? {})))}</code></td></tr>`,
    )
    .join('');
  const body = Object.entries(op.requestBody?.content ?? {})
    .map(
      ([type, c]) =>
        `<p>Body (<code>${esc(type)}</code>): <code>${linkRefs(esc(JSON.stringify(c.schema ?? {})))}</code></p>`,
    )
    .join('');
  const responses = Object.entries(op.responses ?? {})
    .map(([status, r]) => {
      const content = Object.entries(r.content ?? {})
        .map(([type, c]) => `<code>${esc(type)}</code> ${linkRefs(esc(JSON.stringify(c.schema ?? {})))}`)
        .join('<br>');
      return `<tr><td>${esc(status)}</td><td>${esc(r.description ?? '')}</td><td>${content}</td></tr>`;
    })
    .join('');
  const auth = op.security && op.security.length === 0 ? ' (no authentication)' : '';
  return `<div class="op" id="${esc(anchor(method, path, op))}">
<p><span class="m">${esc(method)}</span> <code>${esc(path)}</code> — ${esc(op.summary ?? '')}${auth}</p>
${params ? `<table><tr><th>parameter</th><th>in</th><th>required</th><th>meaning</th><th>schema</th></tr>${params}</table>` : ''}
${body}
<table><tr><th>status</th><th>meaning</th><th>content</th></tr>${responses}</table></div>`;
}

function anchor(method: string, path: string, op: OperationLike): string {
  return op.operationId ?? `${method}-${path}`;
}

function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Turns `#/components/schemas/X` references (already escaped) into links to the schema's section. */
function linkRefs(escaped: string): string {
  return escaped.replace(/#\/components\/schemas\/([A-Za-z0-9_]+)/g, '<a href="#schema-$1">$1</a>');
}
