import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { AnnounceRequest } from '@peertracker/protocol';
import { TrackerLogic, type PeerEndpoint, type TrackerOptions } from './logic';
import { MemoryStore } from './memory-store';

const OPTIONS: TrackerOptions = {
  announceIntervalSec: 1800,
  minIntervalSec: 60,
  intervalJitterSec: 120,
  peerLifetimeSec: 2400,
  defaultNumwant: 50,
  maxNumwant: 80,
};

function announce(infoHash: Buffer, o: Partial<AnnounceRequest> = {}): AnnounceRequest {
  return {
    infoHash,
    peerId: randomBytes(20),
    port: 6881,
    uploaded: 0,
    downloaded: 0,
    left: 1000,
    event: 'none',
    compact: true,
    noPeerId: false,
    numwant: undefined,
    key: undefined,
    trackerId: undefined,
    ...o,
  };
}

const v4 = (...bytes: number[]): PeerEndpoint => ({ family: 4, ip: Buffer.from(bytes) });
const randomV4 = (): PeerEndpoint => ({ family: 4, ip: randomBytes(4) });

function setup(options: Partial<TrackerOptions> = {}) {
  let now = 1_700_000_000_000;
  const logic = new TrackerLogic(new MemoryStore(), { ...OPTIONS, now: () => now, ...options });
  return { logic, advance: (ms: number) => (now += ms) };
}

describe('TrackerLogic', () => {
  it('rejects invalid options, naming the option', () => {
    const bad: [Partial<TrackerOptions>, string][] = [
      [{ announceIntervalSec: 0 }, 'announceIntervalSec'],
      [{ announceIntervalSec: 1.5 }, 'announceIntervalSec'],
      [{ minIntervalSec: -1 }, 'minIntervalSec'],
      [{ minIntervalSec: 3600 }, 'minIntervalSec'],
      [{ intervalJitterSec: Number.NaN }, 'intervalJitterSec'],
      [{ peerLifetimeSec: 1800 }, 'peerLifetimeSec'],
      [{ peerLifetimeSec: 1920 }, 'peerLifetimeSec'],
      [{ peerLifetimeSec: 30 * 86400 }, 'peerLifetimeSec'],
      [{ maxNumwant: -1 }, 'maxNumwant'],
      [{ defaultNumwant: 81 }, 'defaultNumwant'],
      [{ now: 5 as unknown as () => number }, 'now'],
    ];
    for (const [patch, name] of bad) {
      assert.throws(() => new TrackerLogic(new MemoryStore(), { ...OPTIONS, ...patch }), (e: Error) => {
        assert.ok(e.message.includes(name), `${e.message} should name ${name}`);
        return true;
      });
    }
    assert.doesNotThrow(() => new TrackerLogic(new MemoryStore(), { ...OPTIONS, peerLifetimeSec: 1921 }));
  });

  it('applies the default numwant and clamps to the maximum', async () => {
    const { logic } = setup();
    const h = randomBytes(20);
    for (let i = 0; i < 100; i++) await logic.announce(announce(h, { numwant: 0 }), randomV4());
    let r = await logic.announce(announce(h), randomV4());
    assert.equal(r.peers.length, 50 * 6);
    r = await logic.announce(announce(h, { numwant: 1000 }), randomV4());
    assert.equal(r.peers.length, 80 * 6);
    r = await logic.announce(announce(h, { numwant: 7 }), randomV4());
    assert.equal(r.peers.length, 7 * 6);
    r = await logic.announce(announce(h, { numwant: 0 }), randomV4());
    assert.equal(r.peers.length, 0);
    r = await logic.announce(announce(h, { numwant: 50, event: 'stopped' }), randomV4());
    assert.equal(r.peers.length, 0);
  });

  it('adds 0..jitter seconds to the interval', async () => {
    const h = randomBytes(20);
    for (const [value, interval] of [
      [0, 1800],
      [0.5, 1860],
      [0.999999999, 1920],
      [1, 1920],
    ]) {
      const { logic } = setup({ random: () => value });
      const r = await logic.announce(announce(h), randomV4());
      assert.equal(r.interval, interval, `random ${value}`);
      assert.equal(r.minInterval, 60);
    }
    const { logic } = setup();
    const seen = new Set<number>();
    for (let i = 0; i < 2000; i++) {
      const { interval } = await logic.announce(announce(h, { numwant: 0 }), randomV4());
      assert.ok(Number.isInteger(interval) && interval >= 1800 && interval <= 1920, `interval ${interval}`);
      seen.add(interval);
    }
    assert.ok(seen.size > 60, `only ${seen.size} distinct intervals`);
    const fixed = setup({ intervalJitterSec: 0 }).logic;
    assert.equal((await fixed.announce(announce(h), randomV4())).interval, 1800);
  });

  it('builds the compact address from the endpoint and the announced port', async () => {
    const { logic } = setup();
    const h = randomBytes(20);
    await logic.announce(announce(h, { port: 51413 }), v4(192, 0, 2, 7));
    const r = await logic.announce(announce(h), v4(198, 51, 100, 1));
    assert.equal(r.family, 4);
    assert.deepEqual(r.peers, Buffer.from([192, 0, 2, 7, 0xc8, 0xd5]));
  });

  it('counts left=0 as a seeder and anything else as a leecher', async () => {
    const { logic } = setup();
    const h = randomBytes(20);
    let r = await logic.announce(announce(h, { left: 0, event: 'completed' }), randomV4());
    assert.deepEqual([r.complete, r.incomplete, r.downloaded], [1, 0, 1]);
    r = await logic.announce(announce(h, { left: 1 }), randomV4());
    assert.deepEqual([r.complete, r.incomplete, r.downloaded], [1, 1, 1]);
    assert.deepEqual(await logic.scrape([h]), [{ infoHash: h, complete: 1, downloaded: 1, incomplete: 1 }]);
    const all = await logic.scrapeAll();
    assert.deepEqual(all.find((e) => e.infoHash.equals(h)), { infoHash: h, complete: 1, downloaded: 1, incomplete: 1 });
  });

  it('serves an IPv6 endpoint 18-byte IPv6 peers, and a v4-mapped one as IPv4', async () => {
    const { logic } = setup();
    const h = randomBytes(20);
    const ip6 = Buffer.from('20010db8000000000000000000000001', 'hex');
    await logic.announce(announce(h, { port: 1 }), { family: 6, ip: ip6 });
    await logic.announce(announce(h, { port: 2 }), v4(192, 0, 2, 1));
    let r = await logic.announce(announce(h), { family: 6, ip: randomBytes(16) });
    assert.equal(r.family, 6);
    assert.deepEqual(r.peers, Buffer.concat([ip6, Buffer.from([0, 1])]));
    const mapped = Buffer.from('00000000000000000000ffffc6336401', 'hex');
    r = await logic.announce(announce(h), { family: 6, ip: mapped });
    assert.equal(r.family, 4);
    assert.deepEqual(r.peers, Buffer.from([192, 0, 2, 1, 0, 2]));
    r = await logic.announce(announce(h), randomV4());
    assert.equal(r.peers.length, 2 * 6, 'the v4-mapped peer joined the IPv4 pool');
  });

  it('returns peer ids only for non-compact requests that do not refuse them', async () => {
    const { logic } = setup();
    const h = randomBytes(20);
    const first = announce(h);
    await logic.announce(first, randomV4());
    let r = await logic.announce(announce(h, { compact: false }), randomV4());
    assert.deepEqual(r.peerIds, first.peerId);
    r = await logic.announce(announce(h, { compact: false, noPeerId: true }), randomV4());
    assert.equal(r.peerIds, undefined);
    r = await logic.announce(announce(h, { compact: true }), randomV4());
    assert.equal(r.peerIds, undefined);
  });

  it('expires peers after peerLifetimeSec on its clock', async () => {
    const { logic, advance } = setup();
    const h = randomBytes(20);
    await logic.announce(announce(h), randomV4());
    advance(2400 * 1000 - 1);
    assert.equal((await logic.scrape([h]))[0].incomplete, 1);
    advance(2);
    assert.equal((await logic.scrape([h]))[0].incomplete, 0);
  });

  it('rejects an endpoint whose address length does not match its family', () => {
    const { logic } = setup();
    assert.throws(() => logic.announce(announce(randomBytes(20)), { family: 4, ip: randomBytes(16) }), TypeError);
    assert.throws(() => logic.announce(announce(randomBytes(20)), { family: 6, ip: randomBytes(4) }), TypeError);
  });
  it('passes the client key to the store: only the key moves a peer to another IP', async () => {
    const { logic } = setup();
    const h = randomBytes(20);
    const me = announce(h, { key: 'c0ffee', port: 6881 });
    await logic.announce(me, v4(192, 0, 2, 7));
    const watch = announce(h);
    const seen = async () => (await logic.announce(watch, v4(198, 51, 100, 1))).peers;
    assert.deepEqual(await seen(), Buffer.from([192, 0, 2, 7, 0x1a, 0xe1]));
    await logic.announce({ ...me, key: undefined, event: 'stopped' }, v4(203, 0, 113, 5));
    assert.deepEqual(await seen(), Buffer.from([192, 0, 2, 7, 0x1a, 0xe1]), 'stopped from another IP without the key');
    await logic.announce(me, v4(203, 0, 113, 5));
    assert.deepEqual(await seen(), Buffer.from([203, 0, 113, 5, 0x1a, 0xe1]), 'the key did not move the peer');
  });
});
