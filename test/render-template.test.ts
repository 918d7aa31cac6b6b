import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  hasTemplate,
  parseTemplate,
  renderTemplate,
  TemplateError,
  templatePaths,
} from '../domain/sources/template.ts';

/** The `{{ .path }}` template subset. */

const data = {
  var: { tag: '1.25', n: 3, on: true, off: false, nested: { deep: 'x' } },
  instance: { id: 'inst_1', name: 'web' },
  tenant: { id: 'tnt_1' },
  region: 'us-east',
};

function templateError(fn: () => unknown, kind: TemplateError['kind'], message?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof TemplateError, String(err));
    assert.equal(err.kind, kind);
    if (message) assert.match(err.message, message);
    return true;
  });
}

describe('template', () => {
  it('returns a string without {{ untouched, without parsing it', () => {
    assert.equal(renderTemplate('plain }} text {', {}), 'plain }} text {');
    assert.equal(hasTemplate('a {{'), true);
    assert.equal(hasTemplate('a }}'), false);
  });

  it('substitutes dotted paths, whitespace tolerant', () => {
    assert.equal(renderTemplate('nginx:{{ .var.tag }}', data), 'nginx:1.25');
    assert.equal(
      renderTemplate('{{.region}}-{{   .instance.name   }}-{{\n.tenant.id\n}}', data),
      'us-east-web-tnt_1',
    );
    assert.equal(renderTemplate('{{ .var.nested.deep }}', data), 'x');
  });

  it('formats ints in decimal and bools as true/false', () => {
    assert.equal(renderTemplate('{{ .var.n }} {{ .var.on }} {{ .var.off }}', data), '3 true false');
  });

  it('fails on a missing key, naming it', () => {
    templateError(
      () => renderTemplate('{{ .var.nope }}', data),
      'missing_key',
      /<\.var\.nope>: map has no entry for key "nope"/,
    );
    templateError(() => renderTemplate('{{ .Region }}', data), 'missing_key');
    templateError(() => renderTemplate('{{ .var.constructor }}', data), 'missing_key');
  });

  it('fails on a field of a non-map and on printing a map', () => {
    templateError(
      () => renderTemplate('{{ .region.x }}', data),
      'not_scalar',
      /can't evaluate field x in type string/,
    );
    templateError(() => renderTemplate('{{ .var.nested }}', data), 'not_scalar');
  });

  it('rejects every other construct', () => {
    for (const text of [
      '{{ . }}',
      '{{ .var.tag | upper }}',
      '{{ if .region }}x{{ end }}',
      '{{- .region -}}',
      '{{/* c */}}',
      '{{ printf "%s" .region }}',
      '{{ $x := 1 }}',
      '{{ .var.tag }',
      '{{ .var..tag }}',
      '{{ .var.db-password }}',
      '{{ }}',
    ]) {
      templateError(() => renderTemplate(text, data), 'parse');
    }
  });

  it('lists the paths a template uses', () => {
    assert.deepEqual(templatePaths('{{ .var.a }}-{{ .region }}'), [['var', 'a'], ['region']]);
    assert.deepEqual(parseTemplate('x').paths, []);
  });
});
