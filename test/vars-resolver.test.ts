import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SourceError, type SourceErrorCode } from '../domain/sources/errors.ts';
import {
  compilePattern,
  type Definition,
  type DerivedContext,
  envKeyOf,
  expressionVariables,
  resolve,
  validateDefinitions,
} from '../domain/sources/variables.ts';

/** Variables: the cases of the Go library's resolver tests (derived region "us-east"). */

const derived: DerivedContext = {
  instance: { id: 'inst_1', name: 'web' },
  tenant: { id: 'tnt_1' },
  region: 'us-east',
};

function fails(fn: () => unknown, code: SourceErrorCode, variable?: string, message?: RegExp): SourceError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof SourceError, `expected a SourceError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  if (variable !== undefined) assert.equal(caught.variable, variable);
  if (message) assert.match(caught.message, message);
  return caught;
}

describe('Vars: plain variables', () => {
  const defs: Definition[] = [{ name: 'tag', type: 'string', default: 'latest' }];

  it('uses the default when no value is given', () => {
    assert.equal(resolve(defs, {}, derived).scope.var.tag, 'latest');
  });

  it('lets a value override the default', () => {
    assert.equal(resolve(defs, { tag: '1.25' }, derived).scope.var.tag, '1.25');
  });

  it('fails a required var with no value with missing_required', () => {
    fails(
      () => resolve([{ name: 'db', type: 'string', required: true }], {}, derived),
      'missing_required',
      'db',
    );
    fails(
      () => resolve([{ name: 'db', type: 'string', required: true }], { db: null }, derived),
      'missing_required',
      'db',
    );
  });

  it('leaves an optional var with no value out of the scope', () => {
    const { scope } = resolve([{ name: 'opt', type: 'string' }], {}, derived);
    assert.equal(Object.hasOwn(scope.var, 'opt'), false);
  });

  it('builds the template root from the derived context', () => {
    const { scope, bindings } = resolve(defs, {}, derived);
    assert.deepEqual(scope, {
      var: { tag: 'latest' },
      instance: { id: 'inst_1', name: 'web' },
      tenant: { id: 'tnt_1' },
      region: 'us-east',
    });
    assert.deepEqual(bindings, []);
    assert.equal(resolve([], undefined, { ...derived, region: undefined }).scope.region, '');
  });

  it('ignores values for variables that are not defined', () => {
    assert.deepEqual(resolve(defs, { other: 'x' }, derived).scope.var, { tag: 'latest' });
  });
});

describe('Vars: typed values', () => {
  const int: Definition = { name: 'n', type: 'int' };

  it('accepts an int from 5, 7.0 or "9"', () => {
    assert.equal(resolve([int], { n: 5 }, derived).scope.var.n, 5);
    assert.equal(resolve([int], { n: 7.0 }, derived).scope.var.n, 7);
    assert.equal(resolve([int], { n: '9' }, derived).scope.var.n, 9);
  });

  it('truncates floats and accepts signed decimal strings, like Go', () => {
    assert.equal(resolve([int], { n: 7.9 }, derived).scope.var.n, 7);
    assert.equal(resolve([int], { n: -2.5 }, derived).scope.var.n, -2);
    assert.equal(resolve([int], { n: '-12' }, derived).scope.var.n, -12);
    assert.equal(resolve([int], { n: '+3' }, derived).scope.var.n, 3);
  });

  it('rejects "notanint" with invalid_value', () => {
    fails(() => resolve([int], { n: 'notanint' }, derived), 'invalid_value', 'n', /must be an integer/);
    fails(() => resolve([int], { n: '1.5' }, derived), 'invalid_value', 'n');
    fails(() => resolve([int], { n: ' 4' }, derived), 'invalid_value', 'n');
    fails(() => resolve([int], { n: true }, derived), 'invalid_value', 'n');
  });

  it('parses bool "true" → true, and the other Go-style strings', () => {
    const bool: Definition = { name: 'b', type: 'bool' };
    assert.equal(resolve([bool], { b: 'true' }, derived).scope.var.b, true);
    for (const t of ['1', 't', 'T', 'TRUE', 'true', 'True'])
      assert.equal(resolve([bool], { b: t }, derived).scope.var.b, true);
    for (const f of ['0', 'f', 'F', 'FALSE', 'false', 'False']) {
      assert.equal(resolve([bool], { b: f }, derived).scope.var.b, false);
    }
    assert.equal(resolve([bool], { b: false }, derived).scope.var.b, false);
    fails(() => resolve([bool], { b: 'yes' }, derived), 'invalid_value', 'b');
    fails(() => resolve([bool], { b: 1 }, derived), 'invalid_value', 'b');
  });

  it('checks enum membership: {free, pro}: "pro" OK, "enterprise" → invalid_value', () => {
    const plan: Definition = { name: 'plan', type: 'enum', enum: ['free', 'pro'] };
    assert.equal(resolve([plan], { plan: 'pro' }, derived).scope.var.plan, 'pro');
    fails(
      () => resolve([plan], { plan: 'enterprise' }, derived),
      'invalid_value',
      'plan',
      /not one of "free", "pro"/,
    );
  });

  it('applies a pattern: ^[a-z]+$: "web" OK, "Web1" → error', () => {
    const name: Definition = { name: 'sub', type: 'string', pattern: '^[a-z]+$' };
    assert.equal(resolve([name], { sub: 'web' }, derived).scope.var.sub, 'web');
    fails(() => resolve([name], { sub: 'Web1' }, derived), 'invalid_value', 'sub', /does not match/);
  });

  it('matches patterns unanchored (Go MatchString), on enums too', () => {
    assert.equal(
      resolve([{ name: 's', type: 'string', pattern: '[0-9]' }], { s: 'abc1def' }, derived).scope.var.s,
      'abc1def',
    );
    const e: Definition = { name: 'e', type: 'enum', enum: ['a1', 'b'], pattern: '\\d' };
    assert.equal(resolve([e], { e: 'a1' }, derived).scope.var.e, 'a1');
    fails(() => resolve([e], { e: 'b' }, derived), 'invalid_value', 'e');
  });

  it('requires strings for string and enum', () => {
    fails(
      () => resolve([{ name: 's', type: 'string' }], { s: 5 }, derived),
      'invalid_value',
      's',
      /must be a string/,
    );
  });

  it('puts the default through the same checks', () => {
    const err = fails(
      () => resolve([{ name: 'n', type: 'int', default: 'x' }], {}, derived),
      'invalid_value',
      'n',
    );
    assert.equal(err.field, 'variables.n.default');
  });

  it('speaks RE2: (?i), named groups, POSIX classes, \\pN; lookaround and backreferences are a clear invalid_definition', () => {
    assert.ok(compilePattern('(?i)^web$').test('WEB'));
    assert.ok(compilePattern('^(?P<x>[a-z]+)$').test('abc'));
    assert.ok(compilePattern('^[[:alpha:]]+$').test('abc'));
    assert.ok(compilePattern('^\\pN+\\z').test('123'));
    assert.throws(() => compilePattern('a(?=b)'), /lookaround/);
    assert.throws(() => compilePattern('(?<!a)b'), /lookaround/);
    assert.throws(() => compilePattern('(a)\\1'), /backreferences/);
    assert.throws(() => compilePattern('(?<x>a)\\k<x>'), /backreferences/);
    for (const [pattern, why] of [
      ['a(?=b)', /lookaround/],
      ['(a)\\1', /backreferences/],
      ['([a-z', /missing closing \]/],
      ['x{1001}', /invalid repeat count/],
    ] as const) {
      const err = fails(
        () => validateDefinitions([{ name: 'x', type: 'string', pattern }]),
        'invalid_definition',
        'x',
        why,
      );
      assert.equal(err.field, 'variables[0].pattern');
    }
  });

  // These held the event loop for 25 s (`^(a|aa)+$`, 41 characters) and for more than 9 minutes
  // (`a*a*a*a*a*b`, 300 characters) on the backtracking JavaScript engine. RE2 is linear in the input.
  it('runs patterns on a linear-time engine: the backtracking bombs finish, with the right answers', () => {
    const alternation = compilePattern('^(a|aa)+$');
    assert.equal(alternation.test('a'.repeat(41)), true);
    assert.equal(alternation.test(`${'a'.repeat(40)}b`), false);
    const stars = compilePattern('a*a*a*a*a*b');
    assert.equal(stars.test('a'.repeat(300)), false);
    assert.equal(stars.test(`${'a'.repeat(300)}b`), true);
    const def: Definition = { name: 'v', type: 'string', pattern: '^(a|aa)+$' };
    fails(() => resolve([def], { v: `${'a'.repeat(40)}b` }, derived), 'invalid_value', 'v');
    assert.equal(resolve([def], { v: 'a'.repeat(41) }, derived).scope.var.v, 'a'.repeat(41));
  });

  it('accepts nested repetition, which RE2 runs in linear time too', () => {
    for (const p of ['(a+)+$', '(\\w*)*', '(.*,){3}', '((a+)b)+'])
      assert.doesNotThrow(() => compilePattern(p), p);
    assert.equal(compilePattern('^(a+)+$').test(`${'a'.repeat(5000)}!`), false);
    assert.equal(compilePattern('(.*,){3}').test('x,y,z,'), true);
    assert.equal(compilePattern('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$').test('my-app-1'), true);
  });
});

describe('Vars: secrets', () => {
  const secret: Definition = {
    name: 'db-password',
    type: 'secret',
    secret: { key: 'tenant/db/password', type: 'env' },
  };

  it('turns db-password (ref tenant/db/password) into one binding DB_PASSWORD, absent from the scope', () => {
    const { scope, bindings } = resolve([secret], {}, derived);
    assert.equal(Object.hasOwn(scope.var, 'db-password'), false);
    assert.equal(bindings.length, 1);
    assert.deepEqual(bindings[0], {
      var_name: 'db-password',
      env_key: 'DB_PASSWORD',
      ref: 'tenant/db/password',
    });
    assert.equal(envKeyOf('db-password'), 'DB_PASSWORD');
  });

  it('refuses a value given for a secret variable, without echoing it', () => {
    const err = fails(
      () => resolve([secret], { 'db-password': 'hunter2' }, derived),
      'invalid_value',
      'db-password',
    );
    assert.doesNotMatch(err.message, /hunter2/);
  });

  it('reports a computed expression that uses a secret', () => {
    fails(
      () =>
        resolve(
          [secret, { name: 'url', type: 'string', expression: 'pg://{{ .var.db-password }}' }],
          {},
          derived,
        ),
      'invalid_definition',
    );
    const defs: Definition[] = [
      { name: 'token', type: 'secret', secret: { key: 'api/token' } },
      { name: 'hdr', type: 'string', expression: 'Bearer {{ .var.token }}' },
    ];
    fails(() => resolve(defs, {}, derived), 'invalid_definition', 'hdr', /secret variable "token"/);
  });

  it("refuses (422 invalid_secret_key) a key that could leave the tenant's secrets, naming the field", () => {
    for (const key of [
      '/etc/passwd',
      '../other/db',
      'a/../../b',
      './x',
      'a//b',
      'x/',
      'env:X',
      'a\\b',
      'a b',
      '..',
    ]) {
      const err = fails(
        () => validateDefinitions([{ name: 'pw', type: 'secret', secret: { key } }]),
        'invalid_secret_key',
        'pw',
        /relative to your tenant/,
      );
      assert.equal(err.field, 'variables[0].secret.key', key);
      assert.equal(err.status, 422);
    }
    // A key that spells another tenant's id is just a key of the caller's own tenant.
    assert.doesNotThrow(() =>
      validateDefinitions([{ name: 'pw', type: 'secret', secret: { key: 'othertenant/db/password' } }]),
    );
  });
});

describe('Vars: computed', () => {
  it('host = "{{ .var.sub }}.{{ .region }}.example.com" with sub="web" → web.us-east.example.com', () => {
    const defs: Definition[] = [
      { name: 'sub', type: 'string' },
      { name: 'host', type: 'string', expression: '{{ .var.sub }}.{{ .region }}.example.com' },
    ];
    assert.equal(resolve(defs, { sub: 'web' }, derived).scope.var.host, 'web.us-east.example.com');
  });

  it('resolves out of order: a = "{{ .var.b }}-a", b = "{{ .region }}-b"', () => {
    const defs: Definition[] = [
      { name: 'a', type: 'string', expression: '{{ .var.b }}-a' },
      { name: 'b', type: 'string', expression: '{{ .region }}-b' },
    ];
    const { scope } = resolve(defs, {}, derived);
    assert.equal(scope.var.b, 'us-east-b');
    assert.equal(scope.var.a, 'us-east-b-a');
  });

  it('makes results strings, with ints in decimal and bools as true/false', () => {
    const defs: Definition[] = [
      { name: 'n', type: 'int', default: 3 },
      { name: 'on', type: 'bool', default: 'T' },
      {
        name: 'label',
        type: 'int',
        expression: '{{ .var.n }}/{{ .var.on }}/{{ .instance.id }}/{{ .tenant.id }}',
      },
    ];
    assert.equal(resolve(defs, {}, derived).scope.var.label, '3/true/inst_1/tnt_1');
  });

  it('detects an a↔b cycle', () => {
    const defs: Definition[] = [
      { name: 'a', type: 'string', expression: '{{ .var.b }}' },
      { name: 'b', type: 'string', expression: '{{ .var.a }}' },
      { name: 'c', type: 'string', expression: 'fine' },
    ];
    const err = fails(() => resolve(defs, {}, derived), 'cycle', undefined, /cycle: \[a b\]/);
    assert.deepEqual(err.variables, ['a', 'b']);
  });

  it('detects a self-reference as a cycle', () => {
    fails(
      () => resolve([{ name: 'a', type: 'string', expression: 'x{{ .var.a }}' }], {}, derived),
      'cycle',
      'a',
    );
  });

  it('names an undefined variable instead of reporting a cycle', () => {
    fails(
      () => resolve([{ name: 'a', type: 'string', expression: '{{ .var.nope }}' }], {}, derived),
      'invalid_definition',
      'a',
      /no entry for key "nope"/,
    );
  });

  it('names an optional variable without a value that an expression needs', () => {
    const defs: Definition[] = [
      { name: 'sub', type: 'string' },
      { name: 'host', type: 'string', expression: '{{ .var.sub }}.example.com' },
    ];
    fails(
      () => resolve(defs, {}, derived),
      'missing_required',
      'sub',
      /"host": expression uses variable "sub"/,
    );
  });

  it('lists the variables an expression uses', () => {
    assert.deepEqual(expressionVariables('{{ .var.a }}-{{ .region }}-{{.var.b}}'), ['a', 'b']);
  });
});

describe('Vars: structural validation (invalid_definition)', () => {
  const cases: [string, unknown[], string][] = [
    [
      'a duplicate name',
      [
        { name: 'x', type: 'string' },
        { name: 'x', type: 'int' },
      ],
      'variables[1].name',
    ],
    ['a blank name', [{ name: ' ', type: 'string' }], 'variables[0].name'],
    [
      'default and expression',
      [{ name: 'x', type: 'string', default: 'a', expression: 'b' }],
      'variables[0].default',
    ],
    ['an unknown type', [{ name: 'x', type: 'float' }], 'variables[0].type'],
    ['an enum without members', [{ name: 'x', type: 'enum', enum: [] }], 'variables[0].enum'],
    ['an enum with no enum field', [{ name: 'x', type: 'enum' }], 'variables[0].enum'],
    ['a secret without secret', [{ name: 'x', type: 'secret' }], 'variables[0].secret'],
    [
      'a secret with a blank key',
      [{ name: 'x', type: 'secret', secret: { key: '' } }],
      'variables[0].secret',
    ],
    [
      'a secret with an expression',
      [{ name: 'x', type: 'secret', secret: { key: 'a/b' }, expression: '{{ .region }}' }],
      'variables[0].expression',
    ],
    [
      'a secret with a default',
      [{ name: 'x', type: 'secret', secret: { key: 'a/b' }, default: 'v' }],
      'variables[0].default',
    ],
    [
      'a secret with an unknown secret type',
      [{ name: 'x', type: 'secret', secret: { key: 'a', type: 'vault' } }],
      'variables[0].secret.type',
    ],
    [
      'a secret whose env key is not a name',
      [{ name: 'db.pw', type: 'secret', secret: { key: 'a' } }],
      'variables[0].name',
    ],
    ['an invalid regex pattern', [{ name: 'x', type: 'string', pattern: '([a-z' }], 'variables[0].pattern'],
    [
      'an unparsable expression',
      [{ name: 'x', type: 'string', expression: '{{ .var.a' }],
      'variables[0].expression',
    ],
    [
      'an expression with another construct',
      [{ name: 'x', type: 'string', expression: '{{ if .region }}x{{ end }}' }],
      'variables[0].expression',
    ],
    ['a non-object', ['x'], 'variables[0]'],
    ['a wrong field type', [{ name: 'x', type: 'string', required: 'yes' }], 'variables[0].required'],
  ];
  for (const [what, defs, field] of cases) {
    it(`rejects ${what}`, () => {
      const err = fails(() => validateDefinitions(defs), 'invalid_definition');
      assert.equal(err.field, field);
      assert.equal(err.status, 400);
      fails(() => resolve(defs as Definition[], {}, derived), 'invalid_definition');
    });
  }

  it('names the variable', () => {
    const err = fails(
      () =>
        validateDefinitions([
          { name: 'x', type: 'string' },
          { name: 'x', type: 'int' },
        ]),
      'invalid_definition',
      'x',
    );
    assert.match(err.message, /"x": duplicate name/);
  });

  it('accepts well-formed definitions and no definitions', () => {
    assert.deepEqual(validateDefinitions(undefined), []);
    const defs = [
      { name: 'a', type: 'string', description: 'A', required: true, pattern: '^a' },
      { name: 'b', type: 'enum', enum: ['x'], default: 'x' },
      { name: 'c', type: 'secret', secret: { key: 'k/v', type: 'env' } },
      { name: 'd', type: 'string', expression: '{{ .var.a }}' },
    ];
    assert.equal(validateDefinitions(defs), defs);
  });
});
