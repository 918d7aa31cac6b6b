import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { RedactionScope } from '../activities/secret-redaction-scope.ts';
import { redactionMarker, SecretRedactor } from '../domain/sources/secret-redaction.ts';
import { PermanentProviderError } from '../providers/provider.ts';

/** The redactor the provider activities apply to everything a workload's output can reach. */
describe('SecretRedactor', () => {
  const marker = redactionMarker('db-password');

  it('replaces every occurrence of a value with a marker naming the variable', () => {
    const r = SecretRedactor.of([{ var_name: 'db-password', value: 'hunter2!' }]);
    assert.equal(
      r.redact('DB_PASSWORD=hunter2!\nagain: hunter2!hunter2!'),
      `DB_PASSWORD=${marker}\nagain: ${marker}${marker}`,
    );
    assert.equal(r.redact('nothing here'), 'nothing here');
  });

  it('hides overlapping values of two secrets as one span, and the longer value whole', () => {
    const r = SecretRedactor.of([
      { var_name: 'a', value: 'abcd' },
      { var_name: 'b', value: 'cdef' },
      { var_name: 'c', value: 'abcdefgh' },
    ]);
    assert.equal(r.redact('x abcdef y'), `x ${redactionMarker('a')} y`);
    assert.equal(r.redact('abcdefgh'), redactionMarker('c'));
    assert.doesNotMatch(r.redact('zzcdefzz abcdef'), /cd|ef/);
  });

  it('hides the JSON-escaped form and each line of a multi-line value', () => {
    const pem = '-----BEGIN KEY-----\nMIIBOgIBAAJBAK\nrest-of-key\n-----END KEY-----';
    const r = SecretRedactor.of([
      { var_name: 'key', value: pem },
      { var_name: 'q', value: 'say "hi"\\now' },
    ]);
    assert.equal(r.redact(JSON.stringify({ KEY: pem })), `{"KEY":"${redactionMarker('key')}"}`);
    const tail = 'rest-of-key\n-----END KEY-----\nexit 1';
    assert.equal(r.redact(tail), `${redactionMarker('key')}\n${redactionMarker('key')}\nexit 1`);
    assert.equal(r.redact(JSON.stringify('say "hi"\\now')), `"${redactionMarker('q')}"`);
  });

  it('withholds text as a whole when the values could not be read', () => {
    const r = SecretRedactor.withholding('the store is away');
    assert.equal(r.active, true);
    assert.equal(r.redact('anything at all'), '(provider output withheld: the store is away)');
    assert.equal(r.redact(''), '');
  });

  it('changes nothing without secrets (or with empty values)', () => {
    assert.equal(SecretRedactor.of([]).active, false);
    assert.equal(SecretRedactor.of([{ var_name: 'e', value: '' }]).active, false);
    assert.equal(SecretRedactor.none.redact('text'), 'text');
  });
});

/** How a provider activity's error leaves it: what Temporal records as the failure (message and stack). */
describe('RedactionScope.failure', () => {
  const scope = new RedactionScope();
  scope.useResolved([{ var_name: 'pw', env_key: 'PW', ref: 'pw' }], { PW: 'hunter2!' });
  const hidden = redactionMarker('pw');

  it('makes a permanent provider error non-retryable, its message redacted', () => {
    const failure = scope.failure(
      new PermanentProviderError('init exited: PW=hunter2!', 'invalid_spec'),
      false,
    );
    assert.ok(failure instanceof ApplicationFailure);
    assert.equal(failure.nonRetryable, true);
    assert.equal(failure.type, 'invalid_spec');
    assert.equal(failure.message, `init exited: PW=${hidden}`);
    assert.doesNotMatch(failure.stack ?? '', /hunter2!/);
  });

  it('keeps any other error retryable, with message and stack redacted', () => {
    const failure = scope.failure(new TypeError('daemon said hunter2!'), false);
    assert.ok(failure instanceof ApplicationFailure);
    assert.equal(failure.nonRetryable, false);
    assert.equal(failure.type, 'TypeError');
    assert.equal(failure.message, `daemon said ${hidden}`);
    assert.doesNotMatch(failure.stack ?? '', /hunter2!/);
  });

  it('leaves a cancellation as it is, and errors of an instance without secrets', () => {
    const cancelled = new CancelledFailure('cancelled');
    assert.equal(scope.failure(cancelled, true), cancelled);
    const plain = new Error('no secrets here');
    assert.equal(new RedactionScope().failure(plain, false), plain);
  });
});
