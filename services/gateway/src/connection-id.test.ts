import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConnectionIds } from './connection-id';

const secret = Buffer.from('a-secret-of-at-least-thirty-two-characters');
const ip = Buffer.from([192, 0, 2, 7]);

describe('ConnectionIds', () => {
  it('accepts its own IDs and rejects other IPs and other secrets', () => {
    const ids = new ConnectionIds(secret);
    const id = ids.issue(ip);
    assert.equal(id.length, 8);
    assert.ok(ids.isValid(id, ip));
    assert.ok(!ids.isValid(id, Buffer.from([192, 0, 2, 8])));
    assert.ok(!new ConnectionIds(Buffer.from('another-secret-of-thirty-two-characters')).isValid(id, ip));
  });

  it('is accepted by another replica with the same secret', () => {
    const id = new ConnectionIds(secret).issue(ip);
    assert.ok(new ConnectionIds(Buffer.from(secret)).isValid(id, ip));
  });

  it('stays valid for at least two minutes and expires within three', () => {
    let now = 1_700_000_000_000;
    const ids = new ConnectionIds(secret, () => now);
    for (let issuedAt = 0; issuedAt < 60_000; issuedAt += 7_000) {
      now = 1_700_000_000_000 + issuedAt;
      const id = ids.issue(ip);
      now += 120_000;
      assert.ok(ids.isValid(id, ip), `valid 120 s after issue (issued at +${issuedAt} ms)`);
      now += 60_000;
      assert.ok(!ids.isValid(id, ip), `expired 180 s after issue (issued at +${issuedAt} ms)`);
    }
  });

  it('is accepted by a replica whose clock is up to a minute behind the issuer', () => {
    let issuerNow = 1_700_000_040_000;
    const issuer = new ConnectionIds(secret, () => issuerNow);
    for (const skew of [50, 5_000, 59_000]) {
      issuerNow += 7_919;
      const id = issuer.issue(ip);
      assert.ok(new ConnectionIds(secret, () => issuerNow - skew).isValid(id, ip), `skew ${skew} ms`);
    }
  });

  it('rejects tampered and wrong-length IDs', () => {
    const ids = new ConnectionIds(secret);
    const id = ids.issue(ip);
    for (let i = 0; i < 8; i++) {
      const bad = Buffer.from(id);
      bad[i] ^= 0x01;
      assert.ok(!ids.isValid(bad, ip), `byte ${i} flipped`);
    }
    assert.ok(!ids.isValid(id.subarray(0, 7), ip));
    assert.ok(!ids.isValid(Buffer.alloc(8), ip));
  });

  it('works for IPv6 addresses', () => {
    const ids = new ConnectionIds(secret);
    const v6 = Buffer.alloc(16, 0xab);
    assert.ok(ids.isValid(ids.issue(v6), v6));
    assert.ok(!ids.isValid(ids.issue(v6), Buffer.alloc(16, 0xac)));
  });
});
