import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { billingRequestId, billingSuspensionRefusal } from '../domain/billing-policy.ts';

// Pure: the billing sweep's rules (domain/billing-policy.ts), as the sweep workflow applies them.
describe('billing policy', () => {
  const request = 'billing-suspend/inst_1/7';

  it('names each command after the instance and the read-model seq it saw, so a repeat is the same request', () => {
    const target = { tenant_id: 'ten_a', instance_id: 'inst_1', seq: 7 };
    assert.equal(billingRequestId('suspend', target), request);
    assert.equal(billingRequestId('unsuspend', target), 'billing-unsuspend/inst_1/7');
  });

  it('suspends an instance with no suspension in force or queued', () => {
    assert.equal(billingSuspensionRefusal({ queued: [] }, request), undefined);
    // Its own suspension, queued by an earlier attempt of this sweep, is no reason to refuse.
    assert.equal(
      billingSuspensionRefusal({ queued: [{ request_id: request, reason: 'billing' }] }, request),
      undefined,
    );
  });

  it('never replaces another suspension, in force or queued', () => {
    assert.equal(
      billingSuspensionRefusal({ suspend_reason: 'abuse', queued: [] }, request),
      'already suspended (abuse)',
    );
    assert.equal(
      billingSuspensionRefusal({ queued: [{ request_id: 'ops-1', reason: 'abuse' }] }, request),
      'already suspended (abuse)',
    );
    assert.equal(
      billingSuspensionRefusal({ suspend_reason: 'billing', queued: [] }, request),
      'already suspended (billing)',
    );
  });
});
