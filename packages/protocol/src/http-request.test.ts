import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ClientError } from './errors';
import { parseAnnounceQuery, parseScrapeQuery, percentDecode, percentEncode } from './http-request';

function throwsClientError(fn: () => unknown, match?: RegExp | string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ClientError, `expected ClientError, got ${String(e)}`);
    if (typeof match === 'string') assert.equal(e.message, match);
    else if (match) assert.match(e.message, match);
    return true;
  });
}

function onlyClientError(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ClientError, `expected only ClientError, got ${String(e)}`);
  }
}

// A real-looking binary info hash with every troublesome byte: NUL, high bytes, and the
// query-syntax characters % & = + plus space and '#'.
const HASH = Buffer.from([
  0x00, 0x80, 0xff, 0x25, 0x26, 0x3d, 0x2b, 0x20, 0x23, 0x3f, 0xc3, 0x28, 0xe2, 0x82, 0x41, 0x7a, 0x2d, 0x2e, 0x5f, 0x7e,
]);
const PEER = Buffer.from('-TR3000-abcdefghij%&', 'latin1');

/** How libtorrent/Transmission encode: unreserved characters raw, the rest %XX. */
const enc = percentEncode;
/** Every byte as lowercase %xx, as some clients do. */
const encAll = (u: Uint8Array) => [...u].map((x) => '%' + x.toString(16).padStart(2, '0')).join('');

const base = (extra = '') => `info_hash=${enc(HASH)}&peer_id=${enc(PEER)}&port=6881&left=0${extra}`;

test('binary info_hash and peer_id round trip byte for byte', () => {
  assert.equal(enc(HASH), '%00%80%FF%25%26%3D%2B%20%23%3F%C3%28%E2%82Az-._~');
  for (const encode of [enc, encAll]) {
    const r = parseAnnounceQuery(`info_hash=${encode(HASH)}&peer_id=${encode(PEER)}&port=1&left=5`);
    assert.ok(r.infoHash.equals(HASH), r.infoHash.toString('hex'));
    assert.ok(r.peerId.equals(PEER));
  }
  // Bytes a client left unencoded arrive from Node's http module as latin1 characters.
  const raw = Buffer.from([0xc3, 0xa9, 0x80, 0xff, 0x41]).toString('latin1') + 'b'.repeat(15);
  const r = parseAnnounceQuery(`info_hash=${raw}&peer_id=${enc(PEER)}&port=1&left=0`);
  assert.equal(r.infoHash.toString('hex'), 'c3a980ff41' + '62'.repeat(15));
  // '+' is a space
  const plus = parseAnnounceQuery(`info_hash=${'+'.repeat(20)}&peer_id=${enc(PEER)}&port=1&left=0`);
  assert.ok(plus.infoHash.equals(Buffer.alloc(20, 0x20)));
});

test('a full announce', () => {
  const r = parseAnnounceQuery(
    base('&uploaded=123&downloaded=456&event=started&compact=0&no_peer_id=1&numwant=80&key=a%2Bb&trackerid=x%20y&ip=1.2.3.4&supportcrypto=1'),
  );
  assert.deepEqual(r, {
    infoHash: HASH,
    peerId: PEER,
    port: 6881,
    uploaded: 123,
    downloaded: 456,
    left: 0,
    event: 'started',
    compact: false,
    noPeerId: true,
    numwant: 80,
    key: 'a+b',
    trackerId: 'x y',
  });
});

test('defaults for optional parameters', () => {
  const r = parseAnnounceQuery(base());
  assert.equal(r.uploaded, 0);
  assert.equal(r.downloaded, 0);
  assert.equal(r.event, 'none');
  assert.equal(r.compact, true);
  assert.equal(r.noPeerId, false);
  assert.equal(r.numwant, undefined);
  assert.equal(r.key, undefined);
  assert.equal(r.trackerId, undefined);
  assert.equal(parseAnnounceQuery(base('&event=&compact=&numwant=')).event, 'none');
  assert.equal(parseAnnounceQuery(base('&compact=')).compact, true);
  assert.equal(parseAnnounceQuery(base('&numwant=')).numwant, undefined);
  assert.equal(parseAnnounceQuery(base('&numwant=-1')).numwant, undefined);
  // any negative numwant means "the default", as over UDP (some clients send -2 or less)
  assert.equal(parseAnnounceQuery(base('&numwant=-2')).numwant, undefined);
  assert.equal(parseAnnounceQuery(base('&numwant=-50')).numwant, undefined);
  assert.equal(parseAnnounceQuery(base('&numwant=-99999999999999999999999999')).numwant, undefined);
  assert.equal(parseAnnounceQuery(base('&compact=1')).compact, true);
  assert.equal(parseAnnounceQuery(base('&no_peer_id=0')).noPeerId, false);
});

test('events', () => {
  for (const e of ['started', 'stopped', 'completed', 'paused'] as const) {
    assert.equal(parseAnnounceQuery(base(`&event=${e}`)).event, e);
  }
});

test('huge counters are clamped to MAX_SAFE_INTEGER, exact below it', () => {
  const max = Number.MAX_SAFE_INTEGER;
  const r = parseAnnounceQuery(
    `info_hash=${enc(HASH)}&peer_id=${enc(PEER)}&port=1&left=18446744073709551615&uploaded=9007199254740992&downloaded=9007199254740991&numwant=99999999999999999999999999`,
  );
  assert.equal(r.left, max);
  assert.equal(r.uploaded, max);
  assert.equal(r.downloaded, max);
  assert.equal(r.numwant, max);
  assert.equal(parseAnnounceQuery(base('&uploaded=9007199254740990')).uploaded, max - 1);
  assert.equal(parseAnnounceQuery(base('&uploaded=007')).uploaded, 7);
  assert.equal(parseAnnounceQuery(base('&numwant=0')).numwant, 0);
  assert.equal(parseAnnounceQuery(base('&uploaded=%31%32')).uploaded, 12);
});

test('first occurrence wins; unknown and odd segments are ignored', () => {
  const other = Buffer.alloc(20, 7);
  const r = parseAnnounceQuery(
    `&&ip=1.2.3.4&flag&=x&info_hash=${enc(HASH)}&info_hash=${enc(other)}&peer_id=${enc(PEER)}&port=1&port=2&left=3&left=4&event=started&event=bogus&numwant=5&numwant=-1&key=a&key=b&corrupt=0&ipv6=%3A%3A1&`,
  );
  assert.ok(r.infoHash.equals(HASH));
  assert.equal(r.port, 1);
  assert.equal(r.left, 3);
  assert.equal(r.event, 'started');
  assert.equal(r.numwant, 5);
  assert.equal(r.key, 'a');
  // A percent-encoded parameter name still counts (no client does it, but it is the same name).
  assert.equal(parseAnnounceQuery(base('&%6Eumwant=9')).numwant, 9);
});

test('malformed or missing parameters: ClientError naming the parameter', () => {
  const ih = `info_hash=${enc(HASH)}`;
  const pid = `peer_id=${enc(PEER)}`;
  const cases: Array<[string, RegExp | string]> = [
    [`info_hash=${enc(HASH.subarray(0, 19))}&${pid}&port=1&left=0`, 'invalid info_hash: expected 20 bytes, got 19'],
    [`info_hash=${enc(Buffer.concat([HASH, HASH.subarray(0, 1)]))}&${pid}&port=1&left=0`, 'invalid info_hash: expected 20 bytes, got 21'],
    [`info_hash=&${pid}&port=1&left=0`, 'invalid info_hash: expected 20 bytes, got 0'],
    [`info_hash=${enc(HASH).slice(0, -2)}%G1&${pid}&port=1&left=0`, /^invalid info_hash: malformed percent/],
    [`${pid}&port=1&left=0&info_hash=${'a'.repeat(19)}%4`, /^invalid info_hash: malformed percent/],
    [`info_hash=${'a'.repeat(19)}%&${pid}&port=1&left=0`, /^invalid info_hash: malformed percent/],
    [`info_hash=${'a'.repeat(19)}\u0100&${pid}&port=1&left=0`, /^invalid info_hash/],
    [`${pid}&port=1&left=0`, 'missing info_hash'],
    [`${ih}&peer_id=${'a'.repeat(19)}&port=1&left=0`, 'invalid peer_id: expected 20 bytes, got 19'],
    [`${ih}&peer_id=%zz${'a'.repeat(19)}&port=1&left=0`, /^invalid peer_id: malformed percent/],
    [`${ih}&port=1&left=0`, 'missing peer_id'],
    [`${ih}&${pid}&left=0`, 'missing port'],
    [`${ih}&${pid}&port=0&left=0`, /^invalid port/],
    [`${ih}&${pid}&port=65536&left=0`, /^invalid port/],
    [`${ih}&${pid}&port=-1&left=0`, /^invalid port/],
    [`${ih}&${pid}&port=abc&left=0`, /^invalid port/],
    [`${ih}&${pid}&port=&left=0`, /^invalid port/],
    [`${ih}&${pid}&port=1.5&left=0`, /^invalid port/],
    [`${ih}&${pid}&port=99999999999999999999&left=0`, /^invalid port/],
    [`${ih}&${pid}&port=1`, 'missing left'],
    [`${ih}&${pid}&port=1&left=-1`, /^invalid left/],
    [`${ih}&${pid}&port=1&left=`, /^invalid left/],
    [`${ih}&${pid}&port=1&left=1e3`, /^invalid left/],
    [`${ih}&${pid}&port=1&left=%2D1`, /^invalid left/],
    [`${ih}&${pid}&port=1&left=%`, /^invalid left/],
    [`${ih}&${pid}&port=1&left=0&uploaded=-5`, /^invalid uploaded/],
    [`${ih}&${pid}&port=1&left=0&uploaded=1.5`, /^invalid uploaded/],
    [`${ih}&${pid}&port=1&left=0&uploaded=+5`, /^invalid uploaded/],
    [`${ih}&${pid}&port=1&left=0&downloaded=abc`, /^invalid downloaded/],
    [`${ih}&${pid}&port=1&left=0&downloaded=`, /^invalid downloaded/],
    [`${ih}&${pid}&port=1&left=0&event=foo`, /^invalid event/],
    [`${ih}&${pid}&port=1&left=0&event=STARTED`, /^invalid event/],
    [`${ih}&${pid}&port=1&left=0&event=%zz`, /^invalid event/],
    [`${ih}&${pid}&port=1&left=0&compact=2`, /^invalid compact/],
    [`${ih}&${pid}&port=1&left=0&compact=true`, /^invalid compact/],
    [`${ih}&${pid}&port=1&left=0&no_peer_id=x`, /^invalid no_peer_id/],
    [`${ih}&${pid}&port=1&left=0&numwant=-`, /^invalid numwant/],
    [`${ih}&${pid}&port=1&left=0&numwant=-x`, /^invalid numwant/],
    [`${ih}&${pid}&port=1&left=0&numwant=--1`, /^invalid numwant/],
    [`${ih}&${pid}&port=1&left=0&numwant=abc`, /^invalid numwant/],
    [`${ih}&${pid}&port=1&left=0&key=${'k'.repeat(256)}`, 'invalid key: longer than 255 bytes'],
    [`${ih}&${pid}&port=1&left=0&key=%4`, /^invalid key: malformed percent/],
    [`${ih}&${pid}&port=1&left=0&trackerid=${'%41'.repeat(256)}`, /^invalid trackerid: longer than 255/],
    [`${ih}&${pid}&port=1&left=0&trackerid=%`, /^invalid trackerid/],
  ];
  for (const [q, msg] of cases) throwsClientError(() => parseAnnounceQuery(q), msg);
  assert.equal(parseAnnounceQuery(`${ih}&${pid}&port=1&left=0&key=${'k'.repeat(255)}`).key?.length, 255);
  assert.equal(parseAnnounceQuery(`${ih}&${pid}&port=65535&left=0`).port, 65535);
  throwsClientError(() => parseAnnounceQuery(''), 'missing info_hash');
});

test('percentDecode', () => {
  assert.deepEqual(percentDecode('%41+b%2b%2B'), Buffer.from('A b++'));
  assert.deepEqual(percentDecode(''), Buffer.alloc(0));
  assert.deepEqual(percentDecode('\xff\x00'), Buffer.from([0xff, 0]));
  assert.deepEqual(percentDecode('%00%fF'), Buffer.from([0, 0xff]));
  for (const bad of ['%', '%4', 'a%', '%zz', '%4g', '%%41', '\u0100', '\u{1F600}']) assert.equal(percentDecode(bad), null, bad);
});

test('property: percentEncode then percentDecode gives the bytes back', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (u) => {
      assert.deepEqual(percentDecode(percentEncode(u)), Buffer.from(u));
      assert.deepEqual(percentDecode(encAll(u)), Buffer.from(u));
    }),
  );
});

test('property: announce fields round trip through a query string', () => {
  const counter = fc.oneof(fc.nat(), fc.maxSafeNat());
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 20, maxLength: 20 }),
      fc.uint8Array({ minLength: 20, maxLength: 20 }),
      fc.integer({ min: 1, max: 65535 }),
      counter,
      counter,
      counter,
      fc.constantFrom('none', 'started', 'stopped', 'completed', 'paused'),
      fc.option(fc.nat(), { nil: undefined }),
      fc.option(fc.uint8Array({ maxLength: 255 }), { nil: undefined }),
      (ih, pid, port, up, down, left, event, numwant, key) => {
        let q = `peer_id=${encAll(pid)}&left=${left}&port=${port}&info_hash=${percentEncode(ih)}&uploaded=${up}&downloaded=${down}`;
        if (event !== 'none') q += `&event=${event}`;
        if (numwant !== undefined) q += `&numwant=${numwant}`;
        if (key !== undefined) q += `&key=${percentEncode(key)}`;
        const r = parseAnnounceQuery(q);
        assert.deepEqual(r, {
          infoHash: Buffer.from(ih),
          peerId: Buffer.from(pid),
          port,
          uploaded: up,
          downloaded: down,
          left,
          event,
          compact: true,
          noPeerId: false,
          numwant,
          key: key === undefined ? undefined : Buffer.from(key).toString('latin1'),
          trackerId: undefined,
        });
      },
    ),
    { numRuns: 300 },
  );
});

test('scrape: every info_hash in order, limit, lengths', () => {
  const h1 = HASH;
  const h2 = Buffer.alloc(20, 0xab);
  const hs = parseScrapeQuery(`info_hash=${enc(h1)}&foo=bar&info_hash=${encAll(h2)}&info_hash=${enc(h1)}`);
  assert.deepEqual(hs, [h1, h2, h1]);
  assert.deepEqual(parseScrapeQuery(''), []);
  assert.deepEqual(parseScrapeQuery('passkey=abc'), []);
  const many = (n: number) => Array.from({ length: n }, () => `info_hash=${enc(h2)}`).join('&');
  assert.equal(parseScrapeQuery(many(74)).length, 74);
  throwsClientError(() => parseScrapeQuery(many(75)), 'too many info_hash values (max 74)');
  throwsClientError(() => parseScrapeQuery(many(3), { maxScrapeHashes: 2 }), 'too many info_hash values (max 2)');
  throwsClientError(() => parseScrapeQuery(`info_hash=${enc(h1)}&info_hash=abc`), 'invalid info_hash: expected 20 bytes, got 3');
  throwsClientError(() => parseScrapeQuery('info_hash=%'), /^invalid info_hash: malformed percent/);
});

const queryChars = fc.constantFrom(
  ...'info_hash=peer_id=port=left=uploaded=downloaded=event=compact=numwant=key=trackerid=no_peer_id=&%0123456789abcdefABCDEFG+-.\xff\u0100'.split(''),
);

test('property: random and truncated queries throw only ClientError', () => {
  fc.assert(
    fc.property(fc.array(queryChars, { maxLength: 120 }), (chars) => {
      const q = chars.join('');
      onlyClientError(() => parseAnnounceQuery(q));
      onlyClientError(() => parseScrapeQuery(q));
    }),
    { numRuns: 3000 },
  );
  fc.assert(
    fc.property(fc.string({ maxLength: 100, unit: 'binary' }), (q) => {
      onlyClientError(() => parseAnnounceQuery(q));
      onlyClientError(() => parseScrapeQuery(q));
    }),
    { numRuns: 1000 },
  );
  const full = base('&uploaded=1&downloaded=2&event=completed&compact=1&no_peer_id=1&numwant=3&key=k&trackerid=t');
  for (let n = 0; n <= full.length; n++) {
    onlyClientError(() => parseAnnounceQuery(full.slice(0, n)));
    onlyClientError(() => parseAnnounceQuery(full.slice(n)));
    onlyClientError(() => parseScrapeQuery(full.slice(0, n)));
  }
  assert.ok(parseAnnounceQuery(full).noPeerId);
});
