import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { AnnounceEvent } from '@peertracker/protocol';
import { MemoryStore, memoryStoreWork } from './memory-store';
import { DEFAULT_SWARM_RETENTION_MS, type StoreAnnounce, type SwarmStore } from './store';
import { prng, runStoreConformance } from './store-conformance';

// the model test's upkeep: the sweeps the gateway's timer runs, full or incremental
const memoryChecks = {
  modelSteps: 8000,
  upkeep: (s: SwarmStore, now: number, pick: number) => {
    const store = s as MemoryStore;
    if (pick % 2 === 0) store.sweep(now);
    else store.sweepSome(now, 1 + (pick % 3));
  },
  check: (s: SwarmStore) => (s as MemoryStore).checkInvariants(),
};
runStoreConformance('memory', async (o) => new MemoryStore(o), undefined, memoryChecks);
runStoreConformance(
  'memory, 5-minute swarm retention',
  async (o) => new MemoryStore({ ...o, swarmRetentionMs: 300_000 }),
  undefined,
  { swarmRetentionMs: 300_000, ...memoryChecks },
);

const LIFETIME = 1000;

function u32(x: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(x >>> 0);
  return b;
}

/** A distinct peer id for each i (replayable). */
function peerIdOf(i: number): Buffer {
  return Buffer.concat([Buffer.from('-PT0001-'), u32(i), u32(i * 2654435761), u32(~i)]);
}
const RETENTION = 3 * LIFETIME;

function request(infoHash: Buffer, peerId: Buffer, addr: Buffer, o: Partial<StoreAnnounce> = {}): StoreAnnounce {
  return {
    infoHash,
    peerId,
    family: addr.length === 6 ? 4 : 6,
    addr,
    key: undefined,
    seeder: false,
    event: 'none',
    numWant: 50,
    withPeerIds: false,
    now: 0,
    peerLifetimeMs: LIFETIME,
    ...o,
  };
}

describe('MemoryStore', () => {
  it('sweeps expired peers and empty swarms, keeping completed counts', async () => {
    const store = new MemoryStore();
    const a = randomBytes(20);
    const b = randomBytes(20);
    await store.announce(request(a, randomBytes(20), randomBytes(6), { now: 0 }));
    await store.announce(request(b, randomBytes(20), randomBytes(18), { now: 0, seeder: true, event: 'completed' }));
    await store.announce(request(b, randomBytes(20), randomBytes(6), { now: 500 }));
    assert.deepEqual(await store.stats(), { peers: 3, swarms: 2 });
    store.sweep(LIFETIME);
    assert.deepEqual(await store.stats(), { peers: 1, swarms: 1 });
    assert.equal(store.inspect(a), undefined);
    assert.deepEqual(store.inspect(b), { completed: 1, v4: { seeders: 0, leechers: 1, capacity: 4 }, v6: null });
    store.sweep(LIFETIME + 500);
    assert.deepEqual(await store.stats(), { peers: 0, swarms: 0 });
    assert.deepEqual(store.inspect(b), { completed: 1, v4: null, v6: null });
    assert.deepEqual(await store.scrape([b], 10_000), [{ infoHash: b, complete: 0, downloaded: 1, incomplete: 0 }]);
    const r = await store.announce(request(b, randomBytes(20), randomBytes(6), { now: 10_000 }));
    assert.equal(r.downloaded, 1);
    assert.equal((await store.stats()).swarms, 1);
  });

  it('drops a swarm when its last peer stops', async () => {
    const store = new MemoryStore();
    const h = randomBytes(20);
    const id = randomBytes(20);
    const addr = randomBytes(6);
    await store.announce(request(h, id, addr));
    await store.announce(request(h, id, addr, { event: 'stopped' }));
    assert.equal(store.inspect(h), undefined);
    assert.deepEqual(await store.stats(), { peers: 0, swarms: 0 });
    assert.deepEqual(await store.scrapeAll(0), []);
  });

  it('grows and shrinks its pools', async () => {
    const store = new MemoryStore();
    const h = randomBytes(20);
    const ids = Array.from({ length: 100 }, () => randomBytes(20));
    const addr = randomBytes(6);
    for (const id of ids) await store.announce(request(h, id, addr, { numWant: 0 }));
    assert.deepEqual(store.inspect(h)?.v4, { seeders: 0, leechers: 100, capacity: 128 });
    for (const id of ids.slice(10)) await store.announce(request(h, id, addr, { event: 'stopped' }));
    const v4 = store.inspect(h)?.v4;
    assert.equal(v4?.leechers, 10);
    assert.ok(v4 !== undefined && v4 !== null && v4.capacity <= 32, `capacity ${v4?.capacity}`);
    store.checkInvariants();
  });

  it('stays exact across an expiry rebase (a pool older than 24 days)', async () => {
    const store = new MemoryStore();
    const h = randomBytes(20);
    const lifetime = 3_600_000;
    const [a, b] = [randomBytes(20), randomBytes(20)];
    const [addrA, addrB] = [randomBytes(6), randomBytes(6)];
    let now = 1_700_000_000_000;
    const day = 86_400_000;
    for (let d = 0; d < 60; d++, now += day / 2) {
      await store.announce(request(h, a, addrA, { now, peerLifetimeMs: lifetime }));
      const r = await store.announce(request(h, b, addrB, { now: now + lifetime - 1, peerLifetimeMs: lifetime }));
      assert.equal(r.incomplete, 2);
      const [e] = await store.scrape([h], now + lifetime);
      assert.equal(e.incomplete, 1, `day ${d / 2}`);
      store.checkInvariants();
    }
  });

  it('copes with a random source returning its extremes', async () => {
    for (const value of [0, 0.999999999, 1]) {
      const store = new MemoryStore({ random: () => value });
      const h = randomBytes(20);
      const ids = Array.from({ length: 10 }, () => randomBytes(20));
      const addrs = ids.map(() => randomBytes(6));
      for (const [i, id] of ids.entries()) {
        await store.announce(request(h, id, addrs[i], { seeder: i < 3, numWant: 0 }));
      }
      for (const [i, id] of ids.entries()) {
        const r = await store.announce(request(h, id, addrs[i], { seeder: i < 3, numWant: 4 }));
        assert.equal(r.peers.length, 4 * 6);
      }
    }
  });

  it('rejects malformed requests', () => {
    const store = new MemoryStore();
    const h = randomBytes(20);
    assert.throws(() => store.announce(request(h, randomBytes(20), randomBytes(6), { family: 6 })), TypeError);
    assert.throws(() => store.announce(request(h, randomBytes(19), randomBytes(6))), TypeError);
    assert.throws(() => store.announce(request(h, randomBytes(20), randomBytes(6), { peerLifetimeMs: 0 })), RangeError);
  });

  it('keeps its peer index exact under churn of look-alike peer ids', async () => {
    const store = new MemoryStore();
    const h = randomBytes(20);
    const rnd = prng(7);
    // real clients share a prefix ('-qB4650-'); these ids also share all but two bytes
    const ids = Array.from({ length: 400 }, (_, i) => {
      const id = Buffer.from('-qB4650-000000000000', 'latin1');
      id.writeUInt16BE(i, 18);
      return id;
    });
    const inSwarm = new Set<number>();
    for (let step = 0; step < 20_000; step++) {
      const i = Math.floor(rnd() * ids.length);
      const stop = inSwarm.has(i) && rnd() < 0.5;
      // one IP per peer, any port
      const addr = Buffer.from([10, 0, i >> 8, i & 255, 0, 0]);
      addr.writeUInt16BE(1024 + Math.floor(rnd() * 60000), 4);
      const r = await store.announce(
        request(h, ids[i], addr, { event: stop ? 'stopped' : 'none', seeder: rnd() < 0.3, numWant: 0 }),
      );
      if (stop) inSwarm.delete(i);
      else inSwarm.add(i);
      assert.equal(r.complete + r.incomplete, inSwarm.size);
      if (step % 1000 === 0) store.checkInvariants();
    }
    store.checkInvariants();
  });

  it('runs a sweeper on a timer until stopped', async () => {
    const store = new MemoryStore();
    await store.announce(request(randomBytes(20), randomBytes(20), randomBytes(6), { now: 0 }));
    const stop = store.startSweeper(5, () => LIFETIME);
    await new Promise((resolve) => setTimeout(resolve, 50));
    stop();
    assert.deepEqual(await store.stats(), { peers: 0, swarms: 0 });
  });

  it('holds 100,000 peers in 2,000 swarms and sweeps them all', async () => {
    const store = new MemoryStore();
    const hashes = Array.from({ length: 2000 }, () => randomBytes(20));
    const id = randomBytes(20);
    const addr = randomBytes(6);
    for (let p = 0; p < 50; p++) {
      for (const [i, h] of hashes.entries()) {
        id.writeUInt32BE(p, 0);
        addr.writeUInt32BE(i * 50 + p, 0);
        const r = await store.announce(request(h, id, addr, { seeder: p % 5 === 0, now: p }));
        // p peers came before: ceil(p / 5) seeders, the rest leechers; a seeder gets only those
        assert.equal(r.peers.length, (p % 5 === 0 ? p - Math.ceil(p / 5) : p) * 6);
      }
    }
    assert.deepEqual(await store.stats(), { peers: 100_000, swarms: 2000 });
    const [e] = await store.scrape([hashes[7]], 50);
    assert.deepEqual([e.complete, e.incomplete], [10, 40]);
    store.checkInvariants();
    store.sweep(LIFETIME + 50);
    assert.deepEqual(await store.stats(), { peers: 0, swarms: 0 });
  });
  it('forgets a swarm without peers on sweep once swarmRetentionMs has passed (default 24 h)', async () => {
    const store = new MemoryStore({ swarmRetentionMs: 5000 });
    const h = randomBytes(20);
    await store.announce(request(h, randomBytes(20), randomBytes(6), { now: 0, seeder: true, event: 'completed' }));
    store.sweep(LIFETIME);
    assert.deepEqual(store.inspect(h), { completed: 1, v4: null, v6: null });
    assert.deepEqual(await store.stats(), { peers: 0, swarms: 0 });
    store.sweep(4999);
    assert.deepEqual(store.inspect(h), { completed: 1, v4: null, v6: null });
    store.sweep(5000);
    assert.equal(store.inspect(h), undefined);
    assert.equal(store.size().retained, 0);

    // two requests per made-up info_hash no longer leave anything behind for good
    const spam = new MemoryStore();
    const addr = randomBytes(6);
    for (let i = 0; i < 1000; i++) {
      const made = randomBytes(20);
      const id = randomBytes(20);
      spam.announce(request(made, id, addr, { now: i, seeder: true, event: 'completed' }));
      spam.announce(request(made, id, addr, { now: i, event: 'stopped' }));
    }
    assert.deepEqual(spam.size(), { swarms: 1000, retained: 1000, shed: 0 });
    spam.sweep(DEFAULT_SWARM_RETENTION_MS + 499);
    assert.deepEqual(spam.size(), { swarms: 500, retained: 500, shed: 0 });
    spam.sweep(DEFAULT_SWARM_RETENTION_MS + 999);
    assert.deepEqual(spam.size(), { swarms: 0, retained: 0, shed: 0 });
    assert.deepEqual(await spam.scrapeAll(DEFAULT_SWARM_RETENTION_MS + 999), []);
  });

  it('rejects a bad swarmRetentionMs', () => {
    for (const bad of [-1, Number.NaN, Infinity, '1' as unknown as number]) {
      assert.throws(() => new MemoryStore({ swarmRetentionMs: bad }), RangeError, String(bad));
    }
    assert.doesNotThrow(() => new MemoryStore({ swarmRetentionMs: 0 }));
  });

  it('keeps a key fingerprint per peer: a moved peer must bring the key it was stored with', () => {
    const store = new MemoryStore();
    const h = randomBytes(20);
    const id = randomBytes(20);
    const home = Buffer.from([192, 0, 2, 1, 0, 80]);
    const away = Buffer.from([198, 51, 100, 1, 0, 80]);
    const watcher = randomBytes(20);
    store.announce(request(h, watcher, Buffer.from([203, 0, 113, 9, 0, 1]), { numWant: 0 }));
    store.announce(request(h, id, home, { key: 'a'.repeat(255), numWant: 0 }));
    const seen = () => store.announce(request(h, watcher, Buffer.from([203, 0, 113, 9, 0, 1]))).peers;
    for (const key of [undefined, '', 'a'.repeat(254), 'a'.repeat(254) + 'b', 'A'.repeat(255)]) {
      store.announce(request(h, id, away, { key, event: 'stopped' }));
      assert.deepEqual(seen(), home, `key ${key}`);
    }
    store.announce(request(h, id, away, { key: 'a'.repeat(255) }));
    assert.deepEqual(seen(), away);
    store.checkInvariants();
  });

  it('sweeps incrementally with a persistent cursor: sweepSome(now, budget)', async () => {
    const store = new MemoryStore();
    const hashes = Array.from({ length: 100 }, () => randomBytes(20));
    const addr = randomBytes(6);
    for (const h of hashes) await store.announce(request(h, randomBytes(20), addr, { now: 0 }));
    assert.equal(store.sweepSome(LIFETIME, 30), false);
    assert.deepEqual(await store.stats(), { peers: 70, swarms: 70 });
    // the cursor survives swarms going away and coming in between batches
    const id = randomBytes(20);
    await store.announce(request(hashes[0], id, addr, { now: LIFETIME }));
    await store.announce(request(hashes[0], id, addr, { now: LIFETIME, event: 'stopped' }));
    for (const h of hashes.slice(40, 60)) {
      const r = await store.announce(request(h, randomBytes(20), addr, { now: LIFETIME, seeder: true }));
      assert.deepEqual([r.complete, r.incomplete], [1, 0]);
    }
    assert.deepEqual(await store.stats(), { peers: 70, swarms: 70 });
    assert.equal(store.sweepSome(LIFETIME, 30), false);
    assert.deepEqual(await store.stats(), { peers: 60, swarms: 60 });
    assert.equal(store.sweepSome(LIFETIME, 30), false);
    assert.deepEqual(await store.stats(), { peers: 30, swarms: 30 });
    assert.equal(store.sweepSome(LIFETIME, 30), true);
    assert.deepEqual(await store.stats(), { peers: 20, swarms: 20 });
    store.checkInvariants();
    // a new pass starts from the first swarm again
    assert.equal(store.sweepSome(2 * LIFETIME, 10), false);
    assert.deepEqual(await store.stats(), { peers: 10, swarms: 10 });
    assert.equal(store.sweepSome(2 * LIFETIME, 100), true);
    assert.deepEqual(await store.stats(), { peers: 0, swarms: 0 });
    assert.deepEqual(store.size(), { swarms: 0, retained: 0, shed: 0 });
  });

  it('spreads the timed sweep over the interval in small batches', async () => {
    const store = new MemoryStore();
    const addr = randomBytes(6);
    for (let i = 0; i < 2000; i++) await store.announce(request(randomBytes(20), randomBytes(20), addr, { now: 0 }));
    const seen = new Set<number>();
    const stop = store.startSweeper(400, () => LIFETIME, { batch: 100 });
    const deadline = Date.now() + 10_000;
    let peers = 2000;
    while (peers > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 2));
      peers = (await store.stats()).peers;
      seen.add(peers);
    }
    stop();
    assert.equal(peers, 0);
    for (const n of seen) assert.equal(n % 100, 0, `a batch swept ${2000 - n} swarms`);
    assert.ok(seen.size >= 8, `the sweep went in ${seen.size} observed steps, not in small batches`);
  });

  it('keeps stats as running totals instead of walking the swarms', async () => {
    const store = new MemoryStore();
    const addr = randomBytes(6);
    const hashes = Array.from({ length: 20 }, () => randomBytes(20));
    for (const [i, h] of hashes.entries()) {
      for (let p = 0; p <= i % 3; p++) await store.announce(request(h, randomBytes(20), addr, { now: 0 }));
    }
    const swarms = (store as unknown as { swarms: Map<string, unknown> }).swarms;
    const walk = () => {
      throw new Error('stats() walked the swarms');
    };
    const spied = ['values', 'entries', 'keys', 'forEach', Symbol.iterator] as const;
    for (const name of spied) Object.defineProperty(swarms, name, { value: walk, configurable: true });
    try {
      assert.deepEqual(await store.stats(), { peers: 39, swarms: 20 });
    } finally {
      for (const name of spied) delete (swarms as unknown as Record<PropertyKey, unknown>)[name];
    }
    await store.scrape(hashes.slice(0, 5), LIFETIME);
    assert.deepEqual(await store.stats(), { peers: 30, swarms: 15 });
    store.checkInvariants();
  });

  it('counts peers per address exactly in large pools (IPv4 addresses, IPv6 /64s) under churn', () => {
    const rnd = prng(11);
    for (const family of [4, 6] as const) {
      const store = new MemoryStore();
      const h = randomBytes(20);
      const limit = 12;
      // 40 addresses × up to 12 peers: the pool grows well past the scan size and shrinks below it
      const ipOf = (a: number) => {
        const ip = Buffer.alloc(family === 4 ? 4 : 16);
        ip.writeUInt16BE(a, 0);
        if (family === 6) ip.writeUInt32BE(Math.floor(rnd() * 2 ** 32), 12); // same /64, any host
        return ip;
      };
      const addrOf = (a: number) => Buffer.concat([ipOf(a), Buffer.from([Math.floor(rnd() * 256), 1])]);
      const peers = Array.from({ length: 700 }, (_, i) => ({ id: randomBytes(20), home: i % 40, in: false }));
      const perAddress = new Array<number>(40).fill(0);
      let now = 0;
      const sizes = new Set<string>();
      for (let step = 0; step < 30_000; step++) {
        const phase = Math.floor(step / 5000) % 2; // growing, then mostly stopping
        const p = peers[Math.floor(rnd() * peers.length)];
        if (!p.in && phase === 1 && rnd() < 0.95) continue;
        const stop = p.in && rnd() < (phase === 0 ? 0.2 : 0.8);
        // a known peer may move to another address (it carries its key), also to a full one
        const moveTo = p.in && !stop && rnd() < 0.1 ? Math.floor(rnd() * 40) : p.home;
        const r = store.announce(
          request(h, p.id, addrOf(moveTo), {
            now,
            key: 'k',
            event: stop ? 'stopped' : 'none',
            numWant: 0,
            peerLifetimeMs: 10 ** 9,
            maxPeersPerAddress: limit,
          }),
        );
        if (stop) {
          perAddress[p.home]--;
          p.in = false;
        } else if (p.in) {
          assert.equal(r.refused, undefined, 'a known peer is never refused');
          perAddress[p.home]--;
          perAddress[moveTo]++;
          p.home = moveTo;
        } else if (perAddress[p.home] >= limit) {
          assert.equal(r.refused, 'address-full', `step ${step}`);
        } else {
          assert.equal(r.refused, undefined, `step ${step}`);
          perAddress[p.home]++;
          p.in = true;
        }
        const live = perAddress.reduce((a, b) => a + b, 0);
        assert.equal(r.complete + r.incomplete, live);
        sizes.add(live > 128 ? 'large' : live < 64 ? 'small' : 'mid');
        if (step % 500 === 0) store.checkInvariants();
        now++;
      }
      store.checkInvariants();
      assert.deepEqual([...sizes].sort(), ['large', 'mid', 'small'], 'the pool went past the scan size and back');
    }
  });

  it('copies and rehashes a bounded number of slots and entries per announce, whatever the swarm size', () => {
    // growing to 40,000 peers (each on its own address) passes the doublings at 4,096 … 32,768
    // slots, where a pool that reallocates its storage or rebuilds its peer-id index or
    // address-count table at once moves every peer; then churn and stops down to empty, and
    // growing again. Selections (windows that may cross storage chunks) are checked on the way.
    const store = new MemoryStore({ random: prng(7) });
    const rnd = prng(11);
    const h = randomBytes(20);
    const n = 40_000;
    const ids = Array.from({ length: n }, (_, i) => peerIdOf(i));
    const addrOf = (i: number) => Buffer.concat([u32(0x0a000000 + i), Buffer.from([0x1a, 0xe1])]);
    const live = new Set<number>();
    const most = { slotsCopied: 0, indexEntriesMoved: 0, addressEntriesMoved: 0 };
    let now = 0;
    const announce = (i: number, event: AnnounceEvent, seeder: boolean) => {
      const before = { ...memoryStoreWork };
      const full = now % 97 === 0;
      const r = store.announce(
        request(h, ids[i], addrOf(i), {
          now: now++,
          event,
          seeder,
          numWant: full ? 300 : 5,
          withPeerIds: full,
          peerLifetimeMs: 10 ** 9,
          maxPeersPerAddress: 64,
        }),
      );
      for (const k of ['slotsCopied', 'indexEntriesMoved', 'addressEntriesMoved'] as const) {
        most[k] = Math.max(most[k], memoryStoreWork[k] - before[k]);
      }
      if (event === 'stopped') live.delete(i);
      else live.add(i);
      assert.equal(r.complete + r.incomplete, live.size);
      if (full && event !== 'stopped') {
        const got = new Set<number>();
        for (let j = 0; j < r.peers.length / 6; j++) {
          const peer = r.peers.readUInt32BE(j * 6) - 0x0a000000;
          assert.ok(live.has(peer) && peer !== i && !got.has(peer), `selected peer ${peer}`);
          assert.ok(r.peerIds!.subarray(j * 20, j * 20 + 20).equals(ids[peer]), 'id and address of one peer');
          got.add(peer);
        }
      }
    };
    for (let i = 0; i < n; i++) {
      announce(i, 'none', i % 3 === 0);
      if (i % 10_000 === 9_999) store.checkInvariants();
    }
    for (let step = 0; step < 20_000; step++) {
      const i = Math.floor(rnd() * n);
      announce(i, rnd() < 0.3 ? 'stopped' : 'none', rnd() < 0.5);
    }
    store.checkInvariants();
    const grown = store.inspect(h)?.v4?.indexSegments ?? 0;
    const grownAddresses = store.inspect(h)?.v4?.addressSegments ?? 0;
    for (const i of [...live]) {
      announce(i, 'stopped', false);
      if (live.size % 5000 === 0) store.checkInvariants();
      if (live.size === 3000) {
        // the index and address-count segments merged again as the pool shrank (its storage still in chunks)
        const v4 = store.inspect(h)?.v4;
        assert.ok(v4 !== undefined && v4 !== null && v4.capacity > 4096, `capacity ${v4?.capacity}`);
        assert.ok(grown >= 16 && (v4.indexSegments ?? 0) <= 6, `index segments ${grown}, then ${v4.indexSegments}`);
        const addresses = v4.addressSegments ?? 1;
        assert.ok(grownAddresses >= 8 && addresses <= 6, `address-count segments ${grownAddresses}, then ${addresses}`);
      }
    }
    assert.equal(store.inspect(h)?.v4 ?? null, null);
    for (let i = 0; i < 10_000; i++) announce(i, 'none', false);
    store.checkInvariants();
    assert.ok(most.slotsCopied <= 4096, `one announce copied ${most.slotsCopied} slots`);
    assert.ok(most.indexEntriesMoved <= 4096, `one announce rehashed ${most.indexEntriesMoved} index entries`);
    assert.ok(most.addressEntriesMoved <= 4096, `one announce rehashed ${most.addressEntriesMoved} address-count entries`);
    assert.ok(most.addressEntriesMoved > 0, 'the pool kept address counts');
  });

  it('starts counting peers per address when a pool passes 128 peers, whatever the limit', () => {
    // a high limit: the counts must not wait for it, or one announce would count a pool that large
    const store = new MemoryStore();
    const h = randomBytes(20);
    const addr = (i: number) => Buffer.concat([u32(0x0a000000 + (i % 1000)), Buffer.from([0x1a, 0xe1])]);
    let most = 0;
    for (let i = 0; i < 12_000; i++) {
      const before = memoryStoreWork.addressEntriesMoved;
      const r = store.announce(request(h, peerIdOf(i), addr(i), { now: i, peerLifetimeMs: 10 ** 9, maxPeersPerAddress: 10_000 }));
      assert.equal(r.refused, undefined);
      most = Math.max(most, memoryStoreWork.addressEntriesMoved - before);
    }
    store.checkInvariants();
    assert.ok(most <= 4096, `one announce counted ${most} addresses`);
    // 1,000 addresses of 12 peers each: the limit still holds exactly
    for (let i = 0; i < 9_988; i++) {
      store.announce(request(h, peerIdOf(20_000 + i), addr(7), { now: 12_000, peerLifetimeMs: 10 ** 9, maxPeersPerAddress: 10_000 }));
    }
    const full = store.announce(request(h, peerIdOf(99_999), addr(7), { now: 12_000, maxPeersPerAddress: 10_000 }));
    assert.equal(full.refused, 'address-full');
    store.checkInvariants();
  });

  it('drops a swarm whose peers all expired at once without removing them one by one', async () => {
    const store = new MemoryStore();
    const [a, b] = [randomBytes(20), randomBytes(20)];
    const id = peerIdOf;
    const addr = (i: number) => Buffer.concat([u32(0x0a000000 + i), Buffer.from([0x1a, 0xe1])]);
    for (let i = 0; i < 20_000; i++) {
      for (const h of [a, b]) {
        store.announce(request(h, id(i), addr(i), { now: i, seeder: i % 2 === 0, maxPeersPerAddress: 64 }));
      }
    }
    // every peer of both swarms has expired (the last joined at 19,999 with a lifetime of 1,000)
    const now = 20_000 + LIFETIME;
    const removed = memoryStoreWork.peersRemoved;
    const r = store.announce(request(a, id(99_999), addr(99_999), { now, withPeerIds: true }));
    assert.deepEqual([r.complete, r.incomplete, r.peers.length, r.peerIds?.length], [0, 1, 0, 0]);
    store.sweep(now);
    assert.equal(memoryStoreWork.peersRemoved - removed, 0, 'peers removed one by one');
    assert.equal(store.inspect(b), undefined);
    assert.deepEqual(store.inspect(a), { completed: 0, v4: { seeders: 0, leechers: 1, capacity: 4 }, v6: null });
    assert.deepEqual(await store.stats(), { peers: 1, swarms: 1 });
    store.checkInvariants();
    // the pool is usable again at once, and grows as before
    for (let i = 0; i < 5000; i++) store.announce(request(a, id(i), addr(i), { now: now + 1, maxPeersPerAddress: 64 }));
    assert.equal((await store.stats()).peers, 5001);
    store.checkInvariants();
  });

  it('stops growing at maxSwarms under a flood of random info hashes, answering every announce', async () => {
    const store = new MemoryStore({ maxSwarms: 100 });
    const addr = randomBytes(6);
    let refused = 0;
    for (let i = 0; i < 1000; i++) {
      const r = store.announce(request(randomBytes(20), randomBytes(20), addr, { now: i, withPeerIds: true }));
      if (i < 100) assert.equal(r.refused, undefined);
      else {
        assert.equal(r.refused, 'store-full');
        assert.deepEqual([r.complete, r.incomplete, r.downloaded, r.peers.length, r.peerIds?.length], [0, 0, 0, 0, 0]);
        refused++;
      }
    }
    assert.equal(refused, 900);
    assert.deepEqual(store.size(), { swarms: 100, retained: 0, shed: 0 });
    assert.deepEqual(await store.stats(), { peers: 100, swarms: 100 });
    // once their peers are swept, new swarms come in again
    store.sweep(1000 + LIFETIME);
    const after = store.announce(request(randomBytes(20), randomBytes(20), addr, { now: 2000 + LIFETIME }));
    assert.equal(after.refused, undefined);
    store.checkInvariants();
  });

  it('sheds swarms kept only for their completed count first, longest retained first', async () => {
    const store = new MemoryStore({ maxSwarms: 10 });
    const addr = randomBytes(6);
    // five swarms with a completed count and no peer, retained at times 0..4
    const kept = Array.from({ length: 5 }, () => randomBytes(20));
    for (const [t, h] of kept.entries()) {
      const id = randomBytes(20);
      store.announce(request(h, id, addr, { now: t, seeder: true, event: 'completed' }));
      store.announce(request(h, id, addr, { now: t, event: 'stopped' }));
    }
    // announced to again while retained (a stop of an unknown peer): now the latest
    store.announce(request(kept[0], randomBytes(20), addr, { now: 5, event: 'stopped' }));
    const active = Array.from({ length: 5 }, () => randomBytes(20));
    for (const h of active) store.announce(request(h, randomBytes(20), addr, { now: 6 }));
    assert.deepEqual(store.size(), { swarms: 10, retained: 5, shed: 0 });
    // each new swarm takes the place of the longest-retained one
    for (let i = 0; i < 5; i++) {
      assert.equal(store.announce(request(randomBytes(20), randomBytes(20), addr, { now: 7 })).refused, undefined);
    }
    assert.deepEqual(store.size(), { swarms: 10, retained: 0, shed: 5 });
    const counts = await store.scrape(kept, 8);
    assert.deepEqual(counts.map((e) => e.downloaded), [0, 0, 0, 0, 0]);
    // then nothing is left to shed: the active swarms stay
    assert.equal(store.announce(request(randomBytes(20), randomBytes(20), addr, { now: 8 })).refused, 'store-full');
    assert.equal((await store.scrapeAll(8)).length, 10);

    const order = new MemoryStore({ maxSwarms: 5 });
    for (const [t, h] of kept.entries()) {
      const id = randomBytes(20);
      order.announce(request(h, id, addr, { now: t, seeder: true, event: 'completed' }));
      order.announce(request(h, id, addr, { now: t, event: 'stopped' }));
    }
    order.announce(request(kept[0], randomBytes(20), addr, { now: 5, event: 'stopped' }));
    order.announce(request(randomBytes(20), randomBytes(20), addr, { now: 6 }));
    order.announce(request(randomBytes(20), randomBytes(20), addr, { now: 6 }));
    const left = await order.scrape(kept, 6);
    assert.deepEqual(left.map((e) => e.downloaded), [1, 0, 0, 1, 1], 'kept[1] and kept[2] went first');
    order.checkInvariants();
  });

  it('answers new peers without storing them at maxPeers; known peers keep working; counts stay exact', async () => {
    const store = new MemoryStore({ maxPeers: 6 });
    const [h1, h2] = [randomBytes(20), randomBytes(20)];
    const peer = () => ({ id: randomBytes(20), addr: randomBytes(6) });
    const a = [peer(), peer(), peer()];
    const b = [peer(), peer(), peer()];
    for (const p of a) assert.equal(store.announce(request(h1, p.id, p.addr, { now: 0 })).refused, undefined);
    for (const p of b) assert.equal(store.announce(request(h2, p.id, p.addr, { now: 500 })).refused, undefined);
    const late = peer();
    let r = store.announce(request(h1, late.id, late.addr, { now: 600, withPeerIds: true }));
    assert.equal(r.refused, 'store-full');
    assert.deepEqual([r.complete, r.incomplete, r.peers.length / 6, r.peerIds?.length], [0, 3, 3, 60]);
    assert.equal(store.announce(request(randomBytes(20), late.id, late.addr, { now: 600 })).refused, 'store-full');
    assert.deepEqual(store.size(), { swarms: 2, retained: 0, shed: 0 });
    // known peers: re-announce, complete, stop
    r = store.announce(request(h1, a[0].id, a[0].addr, { now: 600, seeder: true, event: 'completed' }));
    assert.equal(r.refused, undefined);
    assert.deepEqual([r.complete, r.incomplete, r.downloaded], [1, 2, 1]);
    store.announce(request(h1, a[1].id, a[1].addr, { now: 600, event: 'stopped' }));
    assert.equal(store.announce(request(h1, late.id, late.addr, { now: 600 })).refused, undefined, 'a stop made room');
    assert.equal(store.announce(request(h2, peer().id, randomBytes(6), { now: 600 })).refused, 'store-full');
    // a[2] expires at LIFETIME: the announce that purges it may take its place, before any sweep
    const c = peer();
    r = store.announce(request(h1, c.id, c.addr, { now: LIFETIME }));
    assert.equal(r.refused, undefined);
    assert.deepEqual([r.complete, r.incomplete], [1, 2]);
    assert.equal(store.announce(request(h2, peer().id, randomBytes(6), { now: LIFETIME })).refused, 'store-full');
    assert.deepEqual(await store.stats(), { peers: 6, swarms: 2 });
    store.checkInvariants();
  });

  it('rejects bad store limits; 0 means none', () => {
    for (const name of ['maxPeers', 'maxSwarms'] as const) {
      for (const bad of [-1, 1.5, Number.NaN, Infinity, '5' as unknown as number]) {
        assert.throws(() => new MemoryStore({ [name]: bad }), RangeError, `${name} ${String(bad)}`);
      }
    }
    const open = new MemoryStore({ maxPeers: 0, maxSwarms: 0 });
    const addr = randomBytes(6);
    for (let i = 0; i < 100; i++) {
      assert.equal(open.announce(request(randomBytes(20), randomBytes(20), addr)).refused, undefined);
    }
  });

  it('keeps within maxPeers and maxSwarms under random churn, refusing only new peers of a full store', async () => {
    // with fewer hashes and a short retention, retained swarms are also forgotten before being shed
    for (const [seed, retention, swarms] of [[1, RETENTION, 30], [2, RETENTION, 30], [3, 300, 9], [4, 300, 9]]) {
      const rnd = prng(seed);
      const maxPeers = 25;
      const maxSwarms = 8;
      const store = new MemoryStore({ maxPeers, maxSwarms, swarmRetentionMs: retention, random: rnd });
      const hashes = Array.from({ length: swarms }, () => randomBytes(20));
      const ids = Array.from({ length: 200 }, () => randomBytes(20));
      const addrs = ids.map(() => randomBytes(6));
      // the model: per swarm, its peers' last announce (live while now < last + LIFETIME)
      const model = new Map<number, Map<number, number>>();
      let now = 0;
      for (let step = 0; step < 6000; step++) {
        now += Math.floor(rnd() * 40);
        if (rnd() < 0.05) store.sweepSome(now, 1 + Math.floor(rnd() * 4));
        if (rnd() < 0.05) await store.scrape([hashes[Math.floor(rnd() * hashes.length)]], now);
        const h = Math.floor(rnd() * hashes.length);
        const i = Math.floor(rnd() * ids.length);
        const x = rnd();
        const event: AnnounceEvent = x < 0.2 ? 'stopped' : x < 0.3 ? 'completed' : 'none';
        const peers = model.get(h) ?? new Map<number, number>();
        for (const [p, last] of peers) if (now >= last + LIFETIME) peers.delete(p);
        const known = peers.has(i);
        const [{ peers: heldBefore }, sizeBefore] = [await store.stats(), store.size()];
        const exists = store.inspect(hashes[h]) !== undefined;
        const seeder = event === 'completed' || rnd() < 0.2;
        const r = store.announce(request(hashes[h], ids[i], addrs[i], { now, event, seeder, numWant: 5 }));
        if (event === 'stopped') {
          peers.delete(i);
          assert.equal(r.refused, undefined);
        } else if (known) {
          assert.equal(r.refused, undefined, `step ${step}: a known peer was refused`);
          peers.set(i, now);
        } else {
          const room = heldBefore < maxPeers && (exists || sizeBefore.swarms < maxSwarms || sizeBefore.retained > 0);
          if (room) assert.equal(r.refused, undefined, `step ${step}: refused with room`);
          if (r.refused === undefined) peers.set(i, now);
          else assert.equal(r.refused, 'store-full', `step ${step}`);
        }
        if (peers.size > 0) model.set(h, peers);
        else model.delete(h);
        assert.equal(r.complete + r.incomplete, peers.size, `step ${step}: counts`);
        const { peers: held } = await store.stats();
        assert.ok(held <= maxPeers && store.size().swarms <= maxSwarms, `step ${step}: over a limit`);
        store.checkInvariants();
      }
      if (retention === RETENTION) assert.ok(store.size().shed > 0, 'retained swarms were shed');
    }
  });
});
