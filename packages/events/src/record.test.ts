import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { decodeClient, STYLES, type ClientSoftware } from './client';
import {
  EVENT_BYTES,
  EVENT_CODES,
  EVENT_NAMES,
  EventDecodeError,
  MAX_EVENTS_PER_RECORD,
  PROTOCOL_CODES,
  PROTOCOLS,
  RecordWriter,
  decodeRecord,
  encodeRecord,
  partitionOf,
  type AnnounceEvent,
} from './record';

const T = Date.UTC(2026, 11, 2);

const arbClient: fc.Arbitrary<ClientSoftware> = fc.record({
  style: fc.constantFrom(...STYLES),
  code: fc.stringMatching(/^[A-Za-z0-9]{0,4}$/),
  version: fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 4 }),
});
const arbCount = fc.oneof(fc.nat(), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }));
const arbEvent = (base: number): fc.Arbitrary<AnnounceEvent> =>
  fc.record({
    time: fc.integer({ min: base, max: base + 0xffffffff }),
    infoHash: fc.uint8Array({ minLength: 20, maxLength: 20 }).map((a) => Buffer.from(a)),
    peerKey: fc.uint8Array({ minLength: 8, maxLength: 8 }).map((a) => Buffer.from(a)),
    event: fc.constantFrom(...EVENT_NAMES),
    left: arbCount,
    uploaded: arbCount,
    downloaded: arbCount,
    protocol: fc.constantFrom(...PROTOCOLS),
    family: fc.constantFrom(4 as const, 6 as const),
    client: arbClient,
    seeders: fc.nat({ max: 0xffffffff }),
    leechers: fc.nat({ max: 0xffffffff }),
  });
/** A record's events: the first at the base time, the others within 2^32 ms after it. */
const arbEvents = fc.integer({ min: 0, max: 2 ** 45 }).chain((base) =>
  fc.tuple(arbEvent(base).map((e) => ({ ...e, time: base })), fc.array(arbEvent(base), { maxLength: 40 })).map(([first, rest]) => [first, ...rest]),
);
const arbGateway = fc.stringMatching(/^[A-Za-z0-9._:-]{1,64}$/);


test('a record gives back its gateway and every event, in order', () => {
  fc.assert(
    fc.property(arbGateway, arbEvents, (gateway, events) => {
      const r = decodeRecord(encodeRecord(gateway, events));
      assert.equal(r.version, 1);
      assert.equal(r.gatewayId, gateway);
      // (fast-check may make objects without a prototype: compared as plain ones)
      assert.deepEqual(r.events, events.map((e) => ({ ...e, client: { ...e.client } })));
    }),
    { numRuns: 500 },
  );
});

test('the layout: 75 bytes an event after the header, no client address anywhere', () => {
  const infoHash = randomBytes(20);
  const peerId = Buffer.from('-qB4650-abcdefghijkl');
  const e: AnnounceEvent = { time: T, infoHash, peerKey: Buffer.from('0123456789abcdef', 'hex'), event: 'completed', left: 0, uploaded: 5, downloaded: 7, protocol: 'udp', family: 6, client: decodeClient(peerId), seeders: 3, leechers: 70_000 };
  const rec = encodeRecord('gw-1', [e, { ...e, time: T + 1500, event: 'stopped', protocol: 'http', family: 4 }]);
  assert.equal(rec.length, 4 + 4 + 12 + 2 * EVENT_BYTES);
  assert.equal(rec.toString('latin1', 0, 8), 'PT\x01\x04gw-1');
  assert.equal(rec.readDoubleBE(8), T);
  assert.equal(rec.readUInt32BE(16), 2);
  const second = 20 + EVENT_BYTES;
  assert.equal(rec.readUInt32BE(second), 1500);
  assert.deepEqual(rec.subarray(second + 4, second + 24), infoHash);
  assert.equal(rec[20 + 56], EVENT_CODES.completed);
  assert.equal(rec[20 + 57], PROTOCOL_CODES.udp | 4);
  assert.equal(rec[second + 57], PROTOCOL_CODES.http);
  assert.equal(rec[20 + 58], 1 | (4 << 4));
  assert.equal(rec.toString('latin1', 20 + 59, 20 + 63), 'qB\0\0');
  assert.deepEqual([...rec.subarray(20 + 63, 20 + 67)], [4, 6, 5, 0]);
  assert.deepEqual([rec.readUInt32BE(20 + 67), rec.readUInt32BE(20 + 71)], [3, 70_000]);
  // the peer id itself is not in the record
  assert.equal(rec.indexOf(peerId.subarray(8)), -1);
});

test('rejects every cut, every extension and a wrong count, magic or version, each with its reason', () => {
  const rec = encodeRecord('gw', fc.sample(arbEvents, { numRuns: 1, seed: 7 })[0]);
  for (let n = 0; n < rec.length; n++) assert.throws(() => decodeRecord(rec.subarray(0, n)), EventDecodeError, `cut at ${n}`);
  assert.throws(() => decodeRecord(Buffer.concat([rec, Buffer.from([0])])), { name: 'EventDecodeError', reason: 'length' });
  const bad = (at: number, v: number) => {
    const b = Buffer.from(rec);
    b[at] = v;
    return b;
  };
  assert.throws(() => decodeRecord(bad(0, 0x51)), { reason: 'magic' });
  assert.throws(() => decodeRecord(bad(2, 2)), { reason: 'version', message: /version 2; this reader knows 1/ });
  assert.throws(() => decodeRecord(bad(3, 0)), { reason: 'gateway' });
  assert.throws(() => decodeRecord(bad(4, 0x20)), { reason: 'gateway' });
  const zero = Buffer.from(rec);
  zero.writeUInt32BE(0, 14);
  assert.throws(() => decodeRecord(zero), { reason: 'count' });
  const ev = 18; // the first event of a record from gateway 'gw'
  assert.throws(() => decodeRecord(bad(ev + 56, EVENT_NAMES.length)), { reason: 'field', message: /event 0: event code 5/ });
  assert.throws(() => decodeRecord(bad(ev + 57, 3)), { reason: 'field' });
  assert.throws(() => decodeRecord(bad(ev + 57, 8)), { reason: 'field' });
  assert.throws(() => decodeRecord(bad(ev + 58, STYLES.length)), { reason: 'field' });
  assert.throws(() => decodeRecord(bad(ev + 58, 5 << 4)), { reason: 'field' });
  assert.throws(() => decodeRecord(bad(ev + 59, 0x07)), { reason: 'field' });
  const neg = Buffer.from(rec);
  neg.writeDoubleBE(-1, ev + 32);
  assert.throws(() => decodeRecord(neg), { reason: 'field' });
  neg.writeDoubleBE(Number.NaN, ev + 32);
  assert.throws(() => decodeRecord(neg), { reason: 'field' });
});

test('random and mutated bytes: an EventDecodeError or a valid record, never anything else', () => {
  const valid = encodeRecord('gw', fc.sample(arbEvents, { numRuns: 1, seed: 11 })[0]);
  const check = (b: Buffer) => {
    try {
      const r = decodeRecord(b);
      assert.ok(r.events.length >= 1);
    } catch (e) {
      assert.ok(e instanceof EventDecodeError, String(e));
    }
  };
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (a) => check(Buffer.from(a))), { numRuns: 5_000 });
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), (flips) => {
      const b = Buffer.from(valid);
      for (const [at, v] of flips) b[at] = v;
      check(b);
    }),
    { numRuns: 5_000 },
  );
});

test('RecordWriter: full at its capacity, a time beyond 2^32 ms refused, byte counts clamped, empty after finish', () => {
  const w = new RecordWriter('gw', 3);
  const h = randomBytes(20);
  const key = randomBytes(16);
  const add = (time: number, left = 1) => w.add(time, h, key, 4, EVENT_CODES.none, left, 0, 0, PROTOCOL_CODES.http, 4, decodeClient(randomBytes(20)), 1, 2);
  assert.equal(w.finish(), undefined);
  assert.ok(add(T));
  assert.equal(add(T - 1), false, 'an earlier time than the first');
  assert.equal(add(T + 2 ** 32), false, 'beyond 2^32 ms');
  assert.ok(add(T + 2 ** 32 - 1, 2 ** 60));
  assert.ok(add(T + 5, -3));
  assert.ok(w.full);
  assert.equal(add(T + 6), false);
  const r = decodeRecord(w.finish()!);
  assert.deepEqual(
    r.events.map((e) => [e.time - T, e.left]),
    [
      [0, 1],
      [2 ** 32 - 1, Number.MAX_SAFE_INTEGER],
      [5, 0],
    ],
  );
  assert.deepEqual(r.events[0].peerKey, key.subarray(4, 12));
  assert.equal(w.size, 0);
  assert.ok(add(T + 10));
  assert.equal(decodeRecord(w.finish()!).events.length, 1);
  assert.throws(() => new RecordWriter('gw', MAX_EVENTS_PER_RECORD + 1), RangeError);
  assert.throws(() => new RecordWriter('a b'), /gateway id "a b"/);
  assert.throws(() => new RecordWriter('x'.repeat(65)), RangeError);
});

test('partitionOf: in range, by the info hash alone, spread evenly', () => {
  const n = 12;
  const counts = new Array(n).fill(0);
  for (let i = 0; i < 24_000; i++) {
    const h = randomBytes(20);
    const p = partitionOf(h, n);
    assert.ok(Number.isInteger(p) && p >= 0 && p < n);
    assert.equal(partitionOf(Buffer.from(h), n), p);
    counts[p]++;
  }
  // 2,000 expected each; 5 standard deviations ≈ 215
  for (const c of counts) assert.ok(Math.abs(c - 2000) < 215, `partition counts ${counts}`);
});
