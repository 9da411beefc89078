import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { bdecode, bencode, BDECODE_MAX_DEPTH, type BEncodable, type BValue } from './bencode';
import { ClientError } from './errors';

const b = (s: string) => Buffer.from(s, 'latin1');

function throwsClientError(fn: () => unknown, match?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ClientError, `expected ClientError, got ${String(e)}`);
    if (match) assert.match(e.message, match);
    return true;
  });
}

test('BEP 3 vectors: encode', () => {
  assert.equal(bencode('spam').toString('latin1'), '4:spam');
  assert.equal(bencode('').toString('latin1'), '0:');
  assert.equal(bencode(3).toString('latin1'), 'i3e');
  assert.equal(bencode(-3).toString('latin1'), 'i-3e');
  assert.equal(bencode(0).toString('latin1'), 'i0e');
  assert.equal(bencode(['spam', 'eggs']).toString('latin1'), 'l4:spam4:eggse');
  assert.equal(bencode({ cow: 'moo', spam: 'eggs' }).toString('latin1'), 'd3:cow3:moo4:spam4:eggse');
  assert.equal(bencode({ spam: ['a', 'b'] }).toString('latin1'), 'd4:spaml1:a1:bee');
  assert.equal(bencode({ spam: 'eggs', cow: 'moo' }).toString('latin1'), 'd3:cow3:moo4:spam4:eggse');
  assert.equal(bencode(Buffer.from([0, 0xff])).toString('latin1'), '2:\x00\xff');
  assert.equal(bencode(Number.MAX_SAFE_INTEGER).toString('latin1'), 'i9007199254740991e');
});

test('BEP 3 vectors: decode', () => {
  assert.deepEqual(bdecode(b('4:spam')), b('spam'));
  assert.deepEqual(bdecode(b('0:')), b(''));
  assert.equal(bdecode(b('i3e')), 3);
  assert.equal(bdecode(b('i-3e')), -3);
  assert.equal(bdecode(b('i0e')), 0);
  assert.deepEqual(bdecode(b('l4:spam4:eggse')), [b('spam'), b('eggs')]);
  assert.deepEqual(
    bdecode(b('d3:cow3:moo4:spam4:eggse')),
    new Map([
      ['cow', b('moo')],
      ['spam', b('eggs')],
    ]),
  );
  assert.deepEqual(bdecode(b('d4:spaml1:a1:bee')), new Map([['spam', [b('a'), b('b')]]]));
  assert.equal(bdecode(b('i-9007199254740991e')), -Number.MAX_SAFE_INTEGER);
});

test('strings are encoded as UTF-8, dict keys sorted as raw bytes, binary keys kept', () => {
  assert.equal(bencode('é').toString('latin1'), '2:\xc3\xa9');
  // UTF-16 order puts U+1F600 (surrogates D83D…) before U+FFFD; bytewise EF BF BD < F0 9F 98 80.
  const enc = bencode({ '\u{1F600}': 1, '\uFFFD': 2 });
  assert.equal(enc.toString('latin1'), 'd3:\xef\xbf\xbdi2e4:\xf0\x9f\x98\x80i1ee');
  const m = new Map<string | Buffer, BEncodable>([
    [Buffer.from([0xff]), 1],
    ['a', 2],
    [Buffer.from([0x00]), 3],
  ]);
  assert.equal(bencode(m).toString('latin1'), 'd1:\x00i3e1:ai2e1:\xffi1ee');
  const back = bdecode(bencode(m)) as Map<string, BValue>;
  assert.deepEqual([...back.keys()], ['\x00', 'a', '\xff']);
  assert.equal(Buffer.from([...back.keys()][2], 'latin1')[0], 0xff);
});

test('encoder rejects what bencode cannot hold with TypeError', () => {
  for (const v of [1.5, NaN, Infinity, 2 ** 53, null, true, undefined, new Date(), 10n]) {
    assert.throws(() => bencode(v as unknown as BEncodable), TypeError);
  }
  assert.throws(() => bencode(new Map<string | Buffer, BEncodable>([['a', 1], [b('a'), 2]])), TypeError);
  assert.equal(bencode({ a: 1, b: undefined }).toString(), 'd1:ai1ee');
});

test('malformed input is a ClientError', () => {
  const bad = [
    '', 'x', 'i-0e', 'i03e', 'i-03e', 'ie', 'i-e', 'i1', 'i1x', 'i 1e', 'i+1e', 'i9007199254740992e',
    'i-9007199254740992e', 'i12345678901234567890e', '3:ab', '03:abc', '-1:', '1', '1x', ':', 'l', 'li1e',
    'd', 'd1:a', 'd1:ai1e', 'di1ei2ee', 'd1:ai1e1:ai2ee', 'i1ei2e', '4:spamx', 'le ', 'e',
    '99999999999999999999:a',
  ];
  for (const s of bad) throwsClientError(() => bdecode(b(s)));
  throwsClientError(() => bdecode(b('i1ex')), /trailing/);
  throwsClientError(() => bdecode(b('i-0e')), /negative zero/);
  throwsClientError(() => bdecode(b('i03e')), /leading zero/);
});

test('depth limit', () => {
  const nest = (n: number) => b('l'.repeat(n) + 'e'.repeat(n));
  assert.doesNotThrow(() => bdecode(nest(BDECODE_MAX_DEPTH)));
  throwsClientError(() => bdecode(nest(BDECODE_MAX_DEPTH + 1)), /nesting/);
  throwsClientError(() => bdecode(nest(100000)), /nesting/);
  throwsClientError(() => bdecode(b('d1:a' + 'l'.repeat(70))), /nesting/);
  assert.doesNotThrow(() => bdecode(nest(3), 3));
  throwsClientError(() => bdecode(nest(4), 3));
});

/** Decoded-form values: numbers, Buffers, arrays, Maps keyed by latin1 strings. */
const bvalue: fc.Arbitrary<BValue> = fc.letrec<{ v: BValue }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.maxSafeInteger(),
    fc.uint8Array({ maxLength: 40 }).map((u) => Buffer.from(u)),
    fc.array(tie('v'), { maxLength: 5 }),
    fc.array(fc.tuple(fc.uint8Array({ maxLength: 8 }), tie('v')), { maxLength: 5 }).map(
      (pairs) => new Map(pairs.map(([k, v]) => [Buffer.from(k).toString('latin1'), v])),
    ),
  ),
})).v;

function toEncodable(v: BValue): BEncodable {
  if (Array.isArray(v)) return v.map(toEncodable);
  if (v instanceof Map) return new Map([...v].map(([k, x]) => [Buffer.from(k, 'latin1'), toEncodable(x)]));
  return v;
}

test('property: bdecode(bencode(v)) equals v, and the encoding is canonical', () => {
  fc.assert(
    fc.property(bvalue, (v) => {
      const enc = bencode(toEncodable(v));
      const dec = bdecode(enc);
      assert.deepStrictEqual(dec, v);
      assert.ok(bencode(toEncodable(dec)).equals(enc));
    }),
    { numRuns: 500 },
  );
});

test('property: random bytes and every strict prefix of a valid encoding throw only ClientError', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (u) => {
      try {
        bdecode(Buffer.from(u));
      } catch (e) {
        assert.ok(e instanceof ClientError, String(e));
      }
    }),
    { numRuns: 2000 },
  );
  // Bencode is prefix-free: no strict prefix of a valid encoding is itself valid.
  fc.assert(
    fc.property(bvalue, (v) => {
      const enc = bencode(toEncodable(v));
      for (let n = 0; n < enc.length; n++) throwsClientError(() => bdecode(enc.subarray(0, n)));
    }),
    { numRuns: 200 },
  );
  // Random bytes drawn from the bencode alphabet reach deeper than uniform noise.
  fc.assert(
    fc.property(fc.array(fc.constantFrom(...'ilde0123456789:-x'), { maxLength: 40 }), (chars) => {
      try {
        bdecode(b(chars.join('')));
      } catch (e) {
        assert.ok(e instanceof ClientError, String(e));
      }
    }),
    { numRuns: 3000 },
  );
});
