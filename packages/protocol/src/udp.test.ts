import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { AnnounceEvent } from './types';
import {
  encodeUdpAnnounce,
  encodeUdpAnnounceRequest,
  encodeUdpConnect,
  encodeUdpConnectRequest,
  encodeUdpError,
  encodeUdpScrape,
  encodeUdpScrapeRequest,
  parseUdpRequest,
  type UdpParseResult,
} from './udp';

const CID = Buffer.from('0123456789abcdef', 'hex');
const HASH = Buffer.from('00ff2526' + '3d2b'.repeat(8), 'hex');
const PEER = Buffer.from('-qB4500-', 'latin1').subarray(0, 8);
const PEER_ID = Buffer.concat([PEER, Buffer.alloc(12, 0x80)]);

/** An announce request laid out by hand from the BEP 15 offsets. */
function announcePacket(o: { event?: number; port?: number; numWant?: number; left?: bigint; key?: number } = {}): Buffer {
  const p = Buffer.alloc(98);
  CID.copy(p, 0); // 0: connection_id (64)
  p.writeUInt32BE(1, 8); // 8: action = announce
  p.writeUInt32BE(0xcafebabe, 12); // 12: transaction_id
  HASH.copy(p, 16); // 16: info_hash
  PEER_ID.copy(p, 36); // 36: peer_id
  p.writeBigUInt64BE(1000n, 56); // 56: downloaded
  p.writeBigUInt64BE(o.left ?? 2000n, 64); // 64: left
  p.writeBigUInt64BE(3000n, 72); // 72: uploaded
  p.writeUInt32BE(o.event ?? 2, 80); // 80: event
  p.writeUInt32BE(0x7f000001, 84); // 84: IP address
  p.writeUInt32BE(o.key ?? 0xdeadbeef, 88); // 88: key
  p.writeInt32BE(o.numWant ?? -1, 92); // 92: num_want
  p.writeUInt16BE(o.port ?? 6881, 96); // 96: port
  return p;
}

function scrapePacket(hashes: Buffer[]): Buffer {
  const head = Buffer.alloc(16);
  CID.copy(head, 0);
  head.writeUInt32BE(2, 8);
  head.writeUInt32BE(7, 12);
  return Buffer.concat([head, ...hashes]);
}

function answerable(r: UdpParseResult, message: string | RegExp): void {
  assert.equal(r.ok, false);
  assert.ok(!r.ok && !r.drop, 'expected an answerable error');
  if (typeof message === 'string') assert.equal(r.message, message);
  else assert.match(r.message, message);
  assert.equal(r.connectionId.length, 8);
}

test('connect: BEP 15 layout; anything else is dropped', () => {
  const pkt = Buffer.from('0000041727101980' + '00000000' + 'deadbeef', 'hex');
  assert.deepEqual(parseUdpRequest(pkt), { ok: true, request: { action: 'connect', transactionId: 0xdeadbeef } });
  assert.deepEqual(encodeUdpConnectRequest(0xdeadbeef), pkt);
  assert.equal(parseUdpRequest(Buffer.concat([pkt, Buffer.alloc(4)])).ok, true);
  const wrongMagic = Buffer.from(pkt);
  wrongMagic[7] ^= 1;
  assert.deepEqual(parseUdpRequest(wrongMagic), { ok: false, drop: true });
  assert.deepEqual(parseUdpRequest(pkt.subarray(0, 15)), { ok: false, drop: true });
  assert.deepEqual(parseUdpRequest(Buffer.alloc(0)), { ok: false, drop: true });
});

test('announce: fields at the BEP 15 offsets', () => {
  const msg = announcePacket();
  const r = parseUdpRequest(msg);
  assert.ok(r.ok && r.request.action === 'announce');
  assert.equal(r.request.transactionId, 0xcafebabe);
  assert.deepEqual(r.request.connectionId, CID);
  assert.deepEqual(r.request.announce, {
    infoHash: HASH,
    peerId: PEER_ID,
    port: 6881,
    uploaded: 3000,
    downloaded: 1000,
    left: 2000,
    event: 'started',
    compact: true,
    noPeerId: true,
    numwant: undefined,
    key: String(0xdeadbeef),
    trackerId: undefined,
  });
  // The parsed ids are copies: reusing the datagram buffer does not change them.
  msg.fill(0, 16, 56);
  assert.deepEqual(r.request.announce.infoHash, HASH);
});

test('announce: event codes, num_want, u64 clamping, port, length', () => {
  const events: AnnounceEvent[] = ['none', 'completed', 'started', 'stopped'];
  events.forEach((e, code) => {
    const r = parseUdpRequest(announcePacket({ event: code }));
    assert.ok(r.ok && r.request.action === 'announce' && r.request.announce.event === e);
  });
  answerable(parseUdpRequest(announcePacket({ event: 4 })), 'invalid event');
  answerable(parseUdpRequest(announcePacket({ event: 0xffffffff })), 'invalid event');
  answerable(parseUdpRequest(announcePacket({ port: 0 })), 'invalid port');
  answerable(parseUdpRequest(announcePacket().subarray(0, 97)), /too short/);

  const get = (o: Parameters<typeof announcePacket>[0]) => {
    const r = parseUdpRequest(announcePacket(o));
    assert.ok(r.ok && r.request.action === 'announce');
    return r.request.announce;
  };
  assert.equal(get({ numWant: -1 }).numwant, undefined);
  assert.equal(get({ numWant: -2 }).numwant, undefined);
  assert.equal(get({ numWant: 0 }).numwant, 0);
  assert.equal(get({ numWant: 50 }).numwant, 50);
  assert.equal(get({ numWant: 0x7fffffff }).numwant, 0x7fffffff);
  assert.equal(get({ port: 65535 }).port, 65535);
  // BEP 15 clients without a key send 0: it must not become a key that another address can match
  assert.equal(get({ key: 0 }).key, undefined);
  assert.equal(get({ key: 1 }).key, '1');
  assert.equal(get({ key: 0xffffffff }).key, '4294967295');
  assert.equal(get({ left: 0xffffffffffffffffn }).left, Number.MAX_SAFE_INTEGER);
  assert.equal(get({ left: 2n ** 53n }).left, Number.MAX_SAFE_INTEGER);
  assert.equal(get({ left: 2n ** 53n - 1n }).left, Number.MAX_SAFE_INTEGER);
  assert.equal(get({ left: 2n ** 53n - 2n }).left, Number.MAX_SAFE_INTEGER - 1);
  assert.equal(get({ left: 2n ** 32n + 5n }).left, 2 ** 32 + 5);
});

test('announce: BEP 41 options are tolerated, URL data collected', () => {
  const url = (...opts: number[][]) => Buffer.concat([announcePacket(), Buffer.from(opts.flat())]);
  const part = (s: string) => [2, s.length, ...Buffer.from(s, 'latin1')];
  const urlData = (msg: Buffer) => {
    const r = parseUdpRequest(msg);
    assert.ok(r.ok && r.request.action === 'announce', JSON.stringify(r));
    return r.request.announce.urlData;
  };
  assert.equal(urlData(url(part('/announce'), [1], part('?passkey=abc'), [0])), '/announce?passkey=abc');
  assert.equal(urlData(url([1, 1, 0], part('/x'))), undefined); // after end-of-options
  assert.equal(urlData(url(part('/a'), [2, 200, 0x41])), '/a'); // truncated option
  assert.equal(urlData(url([2])), undefined);
  assert.equal(urlData(url([9, 3, 1, 2, 3], part('/b'))), '/b'); // unknown option skipped by its length
  assert.equal(urlData(url([9])), undefined);
  assert.equal(urlData(url([0xff, 0xff])), undefined);
  const long = 'x'.repeat(600);
  const enc = encodeUdpAnnounceRequest(CID, 1, {
    infoHash: HASH, peerId: PEER_ID, port: 1, uploaded: 0, downloaded: 0, left: 0, event: 'none', numwant: undefined, key: '1', urlData: long,
  });
  assert.equal(urlData(enc), long);
});

test('scrape: 16 + 20·n bytes, partial hash ignored, limits', () => {
  const h2 = Buffer.alloc(20, 0xee);
  const r = parseUdpRequest(scrapePacket([HASH, h2]));
  assert.ok(r.ok && r.request.action === 'scrape');
  assert.deepEqual(r.request.infoHashes, [HASH, h2]);
  assert.equal(r.request.transactionId, 7);
  assert.deepEqual(r.request.connectionId, CID);
  const partial = parseUdpRequest(Buffer.concat([scrapePacket([HASH]), Buffer.alloc(19)]));
  assert.ok(partial.ok && partial.request.action === 'scrape' && partial.request.infoHashes.length === 1);
  answerable(parseUdpRequest(scrapePacket([])), 'invalid scrape: no info_hash');
  answerable(parseUdpRequest(scrapePacket([HASH.subarray(0, 19)])), 'invalid scrape: no info_hash');
  const many = (n: number) => scrapePacket(Array.from({ length: n }, () => HASH));
  const ok74 = parseUdpRequest(many(74));
  assert.ok(ok74.ok && ok74.request.action === 'scrape' && ok74.request.infoHashes.length === 74);
  answerable(parseUdpRequest(many(75)), 'too many info_hash values (max 74)');
  answerable(parseUdpRequest(many(3), { maxScrapeHashes: 2 }), 'too many info_hash values (max 2)');
  assert.deepEqual(encodeUdpScrapeRequest(CID, 7, [HASH, h2]), scrapePacket([HASH, h2]));
});

test('unknown actions get an answerable error carrying connection and transaction ids', () => {
  for (const action of [3, 4, 0xffffffff]) {
    const p = Buffer.alloc(16);
    CID.copy(p, 0);
    p.writeUInt32BE(action, 8);
    p.writeUInt32BE(99, 12);
    const r = parseUdpRequest(p);
    answerable(r, 'unknown action');
    assert.ok(!r.ok && !r.drop);
    assert.deepEqual(r.connectionId, CID);
    assert.equal(r.transactionId, 99);
  }
});

test('response encoders: BEP 15 layouts', () => {
  assert.equal(encodeUdpConnect(0xdeadbeef, CID).toString('hex'), '00000000' + 'deadbeef' + '0123456789abcdef');
  const peers = Buffer.from('0a0a0a050080' + '010203041ae1', 'hex');
  assert.equal(
    encodeUdpAnnounce(5, 1800, 3, 4, peers).toString('hex'),
    '00000001' + '00000005' + '00000708' + '00000003' + '00000004' + peers.toString('hex'),
  );
  assert.equal(encodeUdpAnnounce(5, 1800, 3, 4, Buffer.alloc(36)).length, 20 + 36);
  assert.equal(
    encodeUdpScrape(6, [
      { infoHash: HASH, complete: 1, downloaded: 2, incomplete: 3 },
      { infoHash: HASH, complete: 4, downloaded: 5, incomplete: 6 },
    ]).toString('hex'),
    '00000002' + '00000006' + '00000001' + '00000002' + '00000003' + '00000004' + '00000005' + '00000006',
  );
  assert.equal(encodeUdpError(7, 'bad é').toString('hex'), '00000003' + '00000007' + Buffer.from('bad é').toString('hex'));
  // Counters clamped to u32; transaction ids taken as u32.
  assert.equal(
    encodeUdpAnnounce(-1, -5, 2 ** 40, NaN, Buffer.alloc(0)).toString('hex'),
    '00000001' + 'ffffffff' + '00000000' + 'ffffffff' + '00000000',
  );
  assert.equal(encodeUdpScrape(1, [{ infoHash: HASH, complete: 1.9, downloaded: Infinity, incomplete: -Infinity }]).subarray(8).toString('hex'), '00000001ffffffff00000000');
});

const announceFields = fc.record({
  infoHash: fc.uint8Array({ minLength: 20, maxLength: 20 }).map((u) => Buffer.from(u)),
  peerId: fc.uint8Array({ minLength: 20, maxLength: 20 }).map((u) => Buffer.from(u)),
  port: fc.integer({ min: 1, max: 65535 }),
  uploaded: fc.oneof(fc.nat(), fc.maxSafeNat()),
  downloaded: fc.oneof(fc.nat(), fc.maxSafeNat()),
  left: fc.oneof(fc.nat(), fc.maxSafeNat()),
  event: fc.constantFrom<AnnounceEvent>('none', 'completed', 'started', 'stopped'),
  numwant: fc.option(fc.integer({ min: 0, max: 0x7fffffff }), { nil: undefined }),
  // 0 is "no key" on the wire: it round-trips as undefined
  key: fc.option(fc.integer({ min: 1, max: 0xffffffff }).map(String), { nil: undefined }),
  urlData: fc.option(fc.string({ minLength: 1, maxLength: 600, unit: 'binary-ascii' }), { nil: undefined }),
});

test('property: announce request encode → parse gives the same fields', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 8, maxLength: 8 }), fc.nat({ max: 0xffffffff }), announceFields, (cid, tid, a) => {
      const r = parseUdpRequest(encodeUdpAnnounceRequest(cid, tid, a));
      const expected = { ...a, compact: true, noPeerId: true, trackerId: undefined };
      if (a.urlData === undefined) delete expected.urlData;
      assert.deepEqual(r, { ok: true, request: { action: 'announce', connectionId: Buffer.from(cid), transactionId: tid, announce: expected } });
    }),
    { numRuns: 500 },
  );
});

/** Whatever comes in, the result is one of the three documented shapes. */
function checkShape(r: UdpParseResult, msg: Buffer): void {
  if (r.ok) {
    assert.equal(typeof r.request.transactionId, 'number');
    if (r.request.action !== 'connect') assert.ok(r.request.connectionId.equals(msg.subarray(0, 8)));
    if (r.request.action === 'announce') {
      assert.equal(r.request.announce.infoHash.length, 20);
      assert.ok(r.request.announce.port >= 1);
    }
    if (r.request.action === 'scrape') assert.ok(r.request.infoHashes.length >= 1 && r.request.infoHashes.length <= 74);
  } else if (r.drop) {
    assert.deepEqual(r, { ok: false, drop: true });
  } else {
    assert.equal(r.connectionId.length, 8);
    assert.ok(r.message.length > 0);
    assert.ok(msg.length >= 16);
  }
}

test('length sweep: random bytes and valid packets cut or extended at every length 0..1600', () => {
  let seed = 42;
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 24) & 0xff;
  const connect = encodeUdpConnectRequest(1);
  const announce = encodeUdpAnnounceRequest(CID, 2, {
    infoHash: HASH, peerId: PEER_ID, port: 6881, uploaded: 1, downloaded: 2, left: 3, event: 'started', numwant: 50, key: '9', urlData: '/announce?x=' + 'y'.repeat(300),
  });
  const scrape = scrapePacket(Array.from({ length: 80 }, () => HASH));
  for (let len = 0; len <= 1600; len++) {
    const noise = Buffer.alloc(len);
    for (let i = 0; i < len; i++) noise[i] = rand();
    const samples = [noise];
    // Noise behind each action (and the connect magic) reaches past the first checks.
    for (const action of [0, 1, 2, 3]) {
      const s = Buffer.from(noise);
      if (len >= 16) {
        s.writeUInt32BE(action, 8);
        if (action === 0) connect.copy(s, 0, 0, 8);
      }
      samples.push(s);
    }
    for (const valid of [connect, announce, scrape]) {
      const s = Buffer.alloc(len);
      valid.copy(s, 0, 0, Math.min(len, valid.length));
      for (let i = valid.length; i < len; i++) s[i] = rand();
      samples.push(s);
    }
    for (const s of samples) checkShape(parseUdpRequest(s), s);
  }
});

test('property: random datagrams never throw', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), fc.constantFrom(0, 1, 2, 3, 7), (u, action) => {
      const msg = Buffer.from(u);
      if (msg.length >= 16) msg.writeUInt32BE(action, 8);
      checkShape(parseUdpRequest(msg), msg);
    }),
    { numRuns: 3000 },
  );
});
