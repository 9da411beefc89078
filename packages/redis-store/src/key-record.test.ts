import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeKeyRecord } from './redis-store';

const record = (key: string | undefined) => {
  const buf = Buffer.alloc(11, 0xee);
  writeKeyRecord(buf, 1, key);
  assert.equal(buf[0], 0xee, 'wrote before its offset');
  assert.equal(buf[10], 0xee, 'wrote past its 9 bytes');
  return buf.subarray(1, 10).toString('hex');
};

describe('the key record of the Redis store', () => {
  it('is nine zeros without a key, and 1 + a fingerprint with one', () => {
    assert.equal(record(undefined), '00'.repeat(9));
    assert.equal(record(''), '00'.repeat(9));
    assert.match(record('a'), /^01[0-9a-f]{16}$/);
  });

  it('is the same in every process and version (unseeded, pinned)', () => {
    // every gateway of a cluster, old and new during a rolling upgrade, must compute exactly
    // these: a change here refuses every stored peer's key once
    assert.equal(record('4a1b2c3d'), '018fb7ec843204c5ca');
    assert.equal(record('0123456789'), '016a511a0f5e28f314');
  });

  it('tells apart every UDP key (decimal u32) and HTTP key in a large sample', () => {
    const seen = new Map<string, string>();
    const add = (key: string) => {
      const r = record(key);
      assert.equal(seen.get(r) ?? key, key, `${key} and ${seen.get(r)} share a fingerprint`);
      seen.set(r, key);
    };
    for (let i = 0; i < 100_000; i++) add(String(i));
    for (let i = 0; i < 50_000; i++) add(((i * 2654435761) >>> 0).toString(16).padStart(8, '0'));
    // keys that differ only in length or in one high latin1 char
    for (const k of ['\0', '\0\0', 'x', 'x\0', '\xff', '\xfe', 'k'.repeat(255), 'k'.repeat(254)]) add(k);
  });
});
