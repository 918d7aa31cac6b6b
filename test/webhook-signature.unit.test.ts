import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { allowedAddresses, RefusedAddressError, refusedAddress } from '../webhooks/address.ts';
import { WebhookSecretCipher } from '../webhooks/secret-cipher.ts';
import { signatureHeader, verifySignature } from '../webhooks/signature.ts';

describe('webhook signatures', () => {
  const secret = 'whsec_unit';
  const body = '{"id":"evt_1","type":"instance.started"}';

  it('is t=<unix>,v1=<hex HMAC-SHA256 of "t.body">, as a receiver computes it with its own HMAC', () => {
    const header = signatureHeader(secret, 1_700_000_000, body);
    const expected = createHmac('sha256', secret).update(`1700000000.${body}`).digest('hex');
    assert.equal(header, `t=1700000000,v1=${expected}`);
  });

  it('verifies only the same body, secret and a fresh timestamp', () => {
    const header = signatureHeader(secret, 1_700_000_000, body);
    const at = { nowSeconds: 1_700_000_010, toleranceSeconds: 300 };
    assert.equal(verifySignature(secret, header, body, at), true);
    assert.equal(verifySignature(secret, header, `${body} `, at), false);
    assert.equal(verifySignature('whsec_other', header, body, at), false);
    assert.equal(verifySignature(secret, header, body, { ...at, nowSeconds: 1_700_001_000 }), false);
    assert.equal(verifySignature(secret, header.replace('t=1700000000', 't=1700000005'), body, at), false);
    assert.equal(verifySignature(secret, 'garbage', body, at), false);
  });
});

describe('webhook addresses', () => {
  it('refuses loopback, private, shared, link-local, metadata, unique-local, mapped and reserved addresses', () => {
    for (const address of [
      '127.0.0.1',
      '127.10.0.1',
      '10.0.0.1',
      '172.31.255.255',
      '192.168.0.1',
      '100.100.100.200',
      '169.254.169.254',
      '0.0.0.0',
      '224.0.0.1',
      '255.255.255.255',
      '::1',
      '::',
      'fe80::1',
      'fd00:ec2::254',
      '::ffff:127.0.0.1',
      '::ffff:10.0.0.1',
      '64:ff9b::a00:1',
    ]) {
      assert.ok(refusedAddress(address), address);
    }
  });

  it('allows public addresses', () => {
    for (const address of ['93.184.216.34', '8.8.8.8', '172.32.0.1', '2606:4700:4700::1111']) {
      assert.equal(refusedAddress(address), undefined, address);
    }
  });

  it('refuses a name when any of its addresses is refused, unless private addresses are allowed', async () => {
    const lookup = async () => [
      { address: '93.184.216.34', family: 4 as const },
      { address: '10.0.0.5', family: 4 as const },
    ];
    const url = new URL('https://hooks.example.com/x');
    await assert.rejects(allowedAddresses(url, { allowPrivate: false, lookup }), RefusedAddressError);
    assert.equal((await allowedAddresses(url, { allowPrivate: true, lookup })).length, 2);
    await assert.rejects(
      allowedAddresses(new URL('http://[::1]:8080/'), { allowPrivate: false, lookup }),
      /::1 is a loopback/,
    );
  });
});

describe('webhook secrets at rest', () => {
  it('are sealed with the key, open only with it, and values stored without a key still open', () => {
    const cipher = new WebhookSecretCipher('k'.repeat(32));
    const sealed = cipher.seal('whsec_abc');
    assert.match(sealed, /^aes256gcm:/);
    assert.ok(!sealed.includes('whsec_abc'));
    assert.notEqual(cipher.seal('whsec_abc'), sealed, 'a nonce of its own each time');
    assert.equal(cipher.open(sealed), 'whsec_abc');
    assert.equal(cipher.open('whsec_plain'), 'whsec_plain');
    assert.throws(() => new WebhookSecretCipher('x'.repeat(32)).open(sealed));
    assert.throws(() => new WebhookSecretCipher(undefined).open(sealed), /CTRLPLANE_WEBHOOK_SECRET_KEY/);
    assert.equal(new WebhookSecretCipher(undefined).seal('whsec_abc'), 'whsec_abc');
  });
});
