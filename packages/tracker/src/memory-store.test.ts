import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { AnnounceEvent } from '@peertracker/protocol';
import { MemoryStore } from './memory-store';
import type { Family, StoreAnnounce } from './store';
import { runStoreConformance } from './store-conformance';

runStoreConformance('memory', async () => new MemoryStore());

const LIFETIME = 1000;

function request(infoHash: Buffer, peerId: Buffer, addr: Buffer, o: Partial<StoreAnnounce> = {}): StoreAnnounce {
  return {
    infoHash,
    peerId,
    family: addr.length === 6 ? 4 : 6,
    addr,
    seeder: false,
    event: 'none',
    numWant: 50,
    withPeerIds: false,
    now: 0,
    peerLifetimeMs: LIFETIME,
    ...o,
  };
}

/** Deterministic PRNG (mulberry32) so a failing random run can be replayed. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('MemoryStore', () => {
  it('agrees with a naive model over random announces, scrapes and sweeps', async () => {
    for (const seed of [1, 2, 3, 4]) {
      const rnd = prng(seed);
      const store = new MemoryStore({ random: rnd });
      const int = (n: number) => Math.floor(rnd() * n);
      const hashes = [0, 1, 2].map(() => randomBytes(20));
      const ids = Array.from({ length: 10 }, () => randomBytes(20));
      interface MPeer {
        addr: string;
        seeder: boolean;
        expiry: number;
      }
      const model = hashes.map(() => ({ completed: 0, families: { 4: new Map<number, MPeer>(), 6: new Map<number, MPeer>() } }));
      const live = (m: Map<number, MPeer>, now: number) => [...m.entries()].filter(([, p]) => p.expiry > now);
      let now = 1_700_000_000_000;
      const events: AnnounceEvent[] = ['none', 'started', 'completed', 'stopped', 'paused'];
      for (let step = 0; step < 5000; step++) {
        now += int(5) === 0 ? int(LIFETIME * 2) : int(LIFETIME / 5);
        const h = int(hashes.length);
        const m = model[h];
        const op = int(20);
        if (op === 0) {
          store.sweep(now);
        } else if (op === 1) {
          const [e] = await store.scrape([hashes[h]], now);
          const all = [...live(m.families[4], now), ...live(m.families[6], now)];
          assert.deepEqual(
            [e.complete, e.incomplete, e.downloaded],
            [all.filter(([, p]) => p.seeder).length, all.filter(([, p]) => !p.seeder).length, m.completed],
          );
        } else {
          const family: Family = int(4) === 0 ? 6 : 4;
          const fam = m.families[family];
          const who = int(ids.length);
          const addr = randomBytes(family === 4 ? 6 : 18);
          const seeder = int(2) === 0;
          const event = events[int(events.length)];
          const numWant = int(12);
          const r = await store.announce(
            request(hashes[h], ids[who], addr, { family, seeder, event, numWant, withPeerIds: true, now }),
          );
          const before = fam.get(who);
          const known = before !== undefined && before.expiry > now;
          if (event === 'stopped') fam.delete(who);
          else {
            if (seeder && event === 'completed' && !(known && before.seeder)) m.completed++;
            fam.set(who, { addr: addr.toString('hex'), seeder, expiry: now + LIFETIME });
          }
          const peers = live(fam, now);
          assert.deepEqual(
            [r.complete, r.incomplete, r.downloaded],
            [peers.filter(([, p]) => p.seeder).length, peers.filter(([, p]) => !p.seeder).length, m.completed],
            `step ${step} seed ${seed}`,
          );
          const candidates =
            event === 'stopped' ? [] : peers.filter(([id, p]) => id !== who && (!seeder || !p.seeder));
          const size = family === 4 ? 6 : 18;
          assert.equal(r.peers.length, Math.min(numWant, candidates.length) * size, `step ${step} seed ${seed}`);
          const byAddr = new Map(candidates.map(([id, p]) => [p.addr, id]));
          const got = new Set<string>();
          for (let i = 0; i * size < r.peers.length; i++) {
            const a = r.peers.subarray(i * size, (i + 1) * size).toString('hex');
            const id = byAddr.get(a);
            assert.ok(id !== undefined, `step ${step}: selected a non-candidate`);
            assert.ok(!got.has(a), `step ${step}: duplicate`);
            got.add(a);
            assert.deepEqual(r.peerIds?.subarray(i * 20, i * 20 + 20), ids[id]);
          }
        }
        store.checkInvariants();
      }
    }
  });

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
    await store.announce(request(h, id, randomBytes(6)));
    await store.announce(request(h, id, randomBytes(6), { event: 'stopped' }));
    assert.equal(store.inspect(h), undefined);
    assert.deepEqual(await store.stats(), { peers: 0, swarms: 0 });
    assert.deepEqual(await store.scrapeAll(0), []);
  });

  it('grows and shrinks its pools', async () => {
    const store = new MemoryStore();
    const h = randomBytes(20);
    const ids = Array.from({ length: 100 }, () => randomBytes(20));
    for (const id of ids) await store.announce(request(h, id, randomBytes(6), { numWant: 0 }));
    assert.deepEqual(store.inspect(h)?.v4, { seeders: 0, leechers: 100, capacity: 128 });
    for (const id of ids.slice(10)) await store.announce(request(h, id, randomBytes(6), { event: 'stopped' }));
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
    let now = 1_700_000_000_000;
    const day = 86_400_000;
    for (let d = 0; d < 60; d++, now += day / 2) {
      await store.announce(request(h, a, randomBytes(6), { now, peerLifetimeMs: lifetime }));
      const r = await store.announce(request(h, b, randomBytes(6), { now: now + lifetime - 1, peerLifetimeMs: lifetime }));
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
      for (const [i, id] of ids.entries()) {
        await store.announce(request(h, id, randomBytes(6), { seeder: i < 3, numWant: 0 }));
      }
      for (const [i, id] of ids.entries()) {
        const r = await store.announce(request(h, id, randomBytes(6), { seeder: i < 3, numWant: 4 }));
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
      const r = await store.announce(
        request(h, ids[i], randomBytes(6), { event: stop ? 'stopped' : 'none', seeder: rnd() < 0.3, numWant: 0 }),
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
});
