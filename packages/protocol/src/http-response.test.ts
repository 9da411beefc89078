import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { bdecode, type BValue } from './bencode';
import { encodeAnnounce, encodeAnnounceDict, encodeFailure, encodeScrape } from './http-response';
import type { ScrapeEntry } from './types';

const b = (s: string) => Buffer.from(s, 'latin1');
const dict = (v: BValue) => {
  assert.ok(v instanceof Map);
  return v;
};
/** Keys in encoded order must be sorted bytewise (bdecode keeps encoded order in its Map). */
function assertSortedKeys(m: Map<string, BValue>): void {
  const keys = [...m.keys()].map((k) => Buffer.from(k, 'latin1'));
  for (let i = 1; i < keys.length; i++) assert.ok(Buffer.compare(keys[i - 1], keys[i]) < 0, `${keys[i - 1]} !< ${keys[i]}`);
}

test('compact announce: exact bytes (BEP 3 keys, BEP 23 peers)', () => {
  const out = encodeAnnounce({ interval: 1800, minInterval: 900, complete: 2, incomplete: 3, peers: Buffer.from('0a0a0a050080', 'hex') });
  assert.equal(
    out.toString('latin1'),
    'd8:completei2e10:incompletei3e8:intervali1800e12:min intervali900e5:peers6:\x0a\x0a\x0a\x05\x00\x80e',
  );
});

test('compact announce: empty peers key when no peers, peers6, tracker id, warning in sorted order', () => {
  const base = { interval: 60, minInterval: 30, complete: 0, incomplete: 0 };
  assert.equal(encodeAnnounce(base).toString('latin1'), 'd8:completei0e10:incompletei0e8:intervali60e12:min intervali30e5:peers0:e');
  const p6 = Buffer.alloc(18, 1);
  const only6 = dict(bdecode(encodeAnnounce({ ...base, peers6: p6 })));
  assert.equal(only6.has('peers'), false);
  assert.deepEqual(only6.get('peers6'), p6);
  const all = dict(bdecode(encodeAnnounce({ ...base, peers: Buffer.alloc(6, 2), peers6: p6, trackerId: 'tid', warning: 'slow down é' })));
  assert.deepEqual([...all.keys()], ['complete', 'incomplete', 'interval', 'min interval', 'peers', 'peers6', 'tracker id', 'warning message']);
  assert.equal((all.get('warning message') as Buffer).toString('utf8'), 'slow down é');
  assert.equal((all.get('tracker id') as Buffer).toString('utf8'), 'tid');
});

test('non-integer numbers never produce invalid bencode', () => {
  const out = encodeAnnounce({ interval: 1800.7, minInterval: NaN, complete: 2 ** 60, incomplete: -1 });
  const d = dict(bdecode(out));
  assert.equal(d.get('interval'), 1800);
  assert.equal(d.get('min interval'), 0);
  assert.equal(d.get('complete'), Number.MAX_SAFE_INTEGER);
  assert.equal(d.get('incomplete'), -1);
});

test('property: compact announce decodes to its input', () => {
  fc.assert(
    fc.property(
      fc.record(
        {
          interval: fc.nat(),
          minInterval: fc.nat(),
          complete: fc.nat(),
          incomplete: fc.nat(),
          peers: fc.uint8Array({ maxLength: 300 }),
          peers6: fc.uint8Array({ maxLength: 300 }),
          trackerId: fc.string({ maxLength: 20 }),
          warning: fc.string({ maxLength: 40, unit: 'grapheme' }),
        },
        { requiredKeys: ['interval', 'minInterval', 'complete', 'incomplete'] },
      ),
      (r) => {
        const d = dict(bdecode(encodeAnnounce(r)));
        assertSortedKeys(d);
        assert.equal(d.get('interval'), r.interval);
        assert.equal(d.get('min interval'), r.minInterval);
        assert.equal(d.get('complete'), r.complete);
        assert.equal(d.get('incomplete'), r.incomplete);
        const peers = r.peers ?? (r.peers6 === undefined ? new Uint8Array() : undefined);
        assert.deepEqual(d.get('peers'), peers && Buffer.from(peers));
        assert.deepEqual(d.get('peers6'), r.peers6 && Buffer.from(r.peers6));
        assert.deepEqual(d.get('tracker id'), r.trackerId === undefined ? undefined : Buffer.from(r.trackerId));
        assert.deepEqual(d.get('warning message'), r.warning === undefined ? undefined : Buffer.from(r.warning));
      },
    ),
    { numRuns: 500 },
  );
});

test('dictionary-model announce (BEP 3): ip, peer id, port; peer id left out when absent', () => {
  const pid = Buffer.from([0, 0xff, ...Buffer.alloc(18, 0x41)]);
  const out = encodeAnnounceDict({
    interval: 1800,
    minInterval: 900,
    complete: 1,
    incomplete: 1,
    peers: [
      { ip: '10.0.0.1', port: 6881, peerId: pid },
      { ip: '2001:db8::1', port: 51413 },
    ],
    warning: 'w',
  });
  assert.equal(
    out.toString('latin1'),
    'd8:completei1e10:incompletei1e8:intervali1800e12:min intervali900e5:peersl' +
      'd2:ip8:10.0.0.17:peer id20:' + pid.toString('latin1') + '4:porti6881ee' +
      'd2:ip11:2001:db8::14:porti51413ee' +
      'e15:warning message1:we',
  );
  const d = dict(bdecode(encodeAnnounceDict({ interval: 1, minInterval: 1, complete: 0, incomplete: 0, peers: [] })));
  assert.deepEqual(d.get('peers'), []);
});

test('scrape (BEP 48): files keyed by raw info hash, exact bytes', () => {
  const h = Buffer.from('00ff'.repeat(10), 'hex');
  const out = encodeScrape([{ infoHash: h, complete: 5, downloaded: 50, incomplete: 10 }]);
  assert.equal(
    out.toString('latin1'),
    'd5:filesd20:' + h.toString('latin1') + 'd8:completei5e10:downloadedi50e10:incompletei10eeee',
  );
  assert.equal(encodeScrape([]).toString(), 'd5:filesdee');
});

test('property: scrape decodes to its input, hashes sorted bytewise, duplicates once (first wins)', () => {
  const entry = fc.record({
    infoHash: fc.oneof(fc.uint8Array({ minLength: 20, maxLength: 20 }), fc.constant(new Uint8Array(20))).map((u) => Buffer.from(u)),
    complete: fc.nat(),
    downloaded: fc.nat(),
    incomplete: fc.nat(),
  });
  fc.assert(
    fc.property(fc.array(entry, { maxLength: 20 }), (entries: ScrapeEntry[]) => {
      const d = dict(bdecode(encodeScrape(entries)));
      assert.deepEqual([...d.keys()], ['files']);
      const files = dict(d.get('files')!);
      assertSortedKeys(files);
      const expected = new Map<string, BValue>();
      for (const e of entries) {
        const k = e.infoHash.toString('latin1');
        if (!expected.has(k)) {
          expected.set(k, new Map([['complete', e.complete], ['downloaded', e.downloaded], ['incomplete', e.incomplete]]));
        }
      }
      assert.deepEqual(files, expected);
    }),
    { numRuns: 300 },
  );
});

test('failure reason: length in bytes of the UTF-8 text', () => {
  assert.equal(encodeFailure('hello').toString('latin1'), 'd14:failure reason5:helloe');
  assert.deepEqual(encodeFailure('né'), Buffer.concat([b('d14:failure reason3:n'), Buffer.from([0xc3, 0xa9]), b('e')]));
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme', maxLength: 50 }), (s) => {
      assert.deepEqual(bdecode(encodeFailure(s)), new Map([['failure reason', Buffer.from(s, 'utf8')]]));
    }),
  );
});
