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

  it("rotates in three steps without a replica refusing another's IDs", () => {
    const old = secret;
    const next = Buffer.from('the-next-secret-of-thirty-two-characters!');
    const generations = [
      new ConnectionIds(old), // before
      new ConnectionIds(old, Date.now, next), // 1: every replica accepts the next secret
      new ConnectionIds(next, Date.now, old), // 2: every replica issues with it, accepts the old one
      new ConnectionIds(next), // 3: the old one is gone
    ];
    // during each rollout, replicas of two neighbouring generations run side by side
    for (let g = 0; g + 1 < generations.length; g++) {
      for (const [from, to] of [[g, g + 1], [g + 1, g]]) {
        assert.ok(generations[to].isValid(generations[from].issue(ip), ip), `an ID of generation ${from} at generation ${to}`);
      }
    }
    // a one-step change is what refuses: replicas with only the old and only the new secret
    assert.ok(!generations[3].isValid(generations[0].issue(ip), ip));
    // the accepted secret never issues, and others still fail
    assert.ok(!generations[0].isValid(generations[1].issue(ip), Buffer.from([192, 0, 2, 8])));
    assert.ok(!new ConnectionIds(Buffer.from('a-third-secret-of-thirty-two-characters')).isValid(generations[2].issue(ip), ip));
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
