/*
 * The conformance suite every SwarmStore passes (invariant 3 of DESIGN.md). It may run against
 * a shared, long-lived server (a real Redis Cluster), so every test uses fresh random info
 * hashes and peer ids, never assumes an empty store, and drives an explicit clock (the model
 * test instead derives everything from its seed, on a new store per seed).
 *
 * Usage, from a test file: runStoreConformance('memory', async (o) => new MemoryStore(o));
 * `open` is also called once per seed of the model test, with a seeded `random` to pass to the
 * store, so that a failing seed replays exactly; it must return a new store each time.
 * A store opened with a swarm retention other than DEFAULT_SWARM_RETENTION_MS says so in the
 * options: runStoreConformance('memory', open, close, { swarmRetentionMs }). The retention tests
 * move the injected clock past it; a store must judge retention against that `now`.
 * Not exported from index.ts because it imports node:test; import it as
 * '@peertracker/tracker/dist/store-conformance'.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import type { AnnounceEvent } from '@peertracker/protocol';
import { DEFAULT_SWARM_RETENTION_MS, type Family, type StoreAnnounceResult, type SwarmStore } from './store';

const LIFETIME_MS = 60_000;

interface Peer {
  id: Buffer;
  addr: Buffer;
  family: Family;
  /** BEP 3 key it announces with (none when undefined) */
  key?: string;
}

export interface ConformanceOptions {
  /** the swarmRetentionMs the store was opened with; default DEFAULT_SWARM_RETENTION_MS */
  swarmRetentionMs?: number;
  /** steps per seed of the random model test (default 2500) */
  modelSteps?: number;
  /** store-specific upkeep the model test mixes in (one operation in twelve); `pick` is random */
  upkeep?: (store: SwarmStore, now: number, pick: number) => void | Promise<void>;
  /** store-specific invariant check, run after every step of the model test */
  check?: (store: SwarmStore) => void;
}

/** Deterministic PRNG (mulberry32) so a failing random run can be replayed. */
export function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface AnnounceOptions {
  seeder?: boolean;
  event?: AnnounceEvent;
  numWant?: number;
  withPeerIds?: boolean;
  /** overrides the peer's key (undefined included) when present */
  key?: string;
  /** defaults to the swarm's clock */
  now?: number;
  maxPeersPerSwarm?: number;
  maxPeersPerAddress?: number;
}

/** One random swarm in the store under test, remembering the peers it made. */
class TestSwarm {
  readonly infoHash = randomBytes(20);
  /** compact address (hex) → peer, for every peer this swarm made */
  readonly byAddr = new Map<string, Peer>();
  private readonly ipv4 = randomBytes(4);
  private readonly ipv6 = randomBytes(16);
  private nextPort = 1024;
  /** the test's clock, in ms; starts at real time so remote stores see plausible values */
  now = Date.now();

  constructor(private readonly store: SwarmStore) {}

  /** A new peer with a unique address (the swarm's IP, a new port). */
  peer(family: Family = 4): Peer {
    const ip = family === 4 ? this.ipv4 : this.ipv6;
    const addr = Buffer.alloc(ip.length + 2);
    ip.copy(addr);
    addr.writeUInt16BE(this.nextPort++, ip.length);
    const p: Peer = { id: randomBytes(20), addr, family };
    this.byAddr.set(addr.toString('hex'), p);
    return p;
  }

  /** Peer `p`'s id announced from another, random IP of its family (with `key`, if given). */
  elsewhere(p: Peer, key?: string): Peer {
    const addr = randomBytes(p.addr.length);
    if (addr.equals(p.addr.subarray(0, p.addr.length - 2))) addr[0] ^= 1;
    const q: Peer = { id: p.id, addr, family: p.family, key };
    this.byAddr.set(addr.toString('hex'), q);
    return q;
  }

  /** Peer `p` (same id, IP and key) on a new port. */
  newPort(p: Peer): Peer {
    const addr = Buffer.from(p.addr);
    addr.writeUInt16BE(this.nextPort++, addr.length - 2);
    const q: Peer = { ...p, addr };
    this.byAddr.set(addr.toString('hex'), q);
    return q;
  }

  async announce(p: Peer, o: AnnounceOptions = {}): Promise<StoreAnnounceResult> {
    return this.store.announce({
      infoHash: this.infoHash,
      peerId: p.id,
      family: p.family,
      addr: p.addr,
      seeder: o.seeder ?? false,
      event: o.event ?? 'none',
      key: 'key' in o ? o.key : p.key,
      numWant: o.numWant ?? 50,
      withPeerIds: o.withPeerIds ?? false,
      now: o.now ?? this.now,
      peerLifetimeMs: LIFETIME_MS,
      maxPeersPerSwarm: o.maxPeersPerSwarm,
      maxPeersPerAddress: o.maxPeersPerAddress,
    });
  }

  /** A new peer at the given IP (4 or 16 bytes) on a new port. */
  peerAt(ip: Buffer): Peer {
    const addr = Buffer.alloc(ip.length + 2);
    ip.copy(addr);
    addr.writeUInt16BE(this.nextPort++, ip.length);
    const p: Peer = { id: randomBytes(20), addr, family: ip.length === 4 ? 4 : 6 };
    this.byAddr.set(addr.toString('hex'), p);
    return p;
  }

  /** Announces `n` new peers; returns them. */
  async populate(n: number, o: { seeder?: boolean; family?: Family } = {}): Promise<Peer[]> {
    const peers: Peer[] = [];
    for (let i = 0; i < n; i++) {
      const p = this.peer(o.family ?? 4);
      await this.announce(p, { seeder: o.seeder ?? false, numWant: 0 });
      peers.push(p);
    }
    return peers;
  }

  async scrape(now = this.now) {
    const [entry] = await this.store.scrape([this.infoHash], now);
    return entry;
  }
}

/** The compact addresses of a reply as hex strings, checked to be well formed. */
function addrs(result: StoreAnnounceResult, family: Family): string[] {
  const size = family === 4 ? 6 : 18;
  assert.equal(result.peers.length % size, 0, `peers length ${result.peers.length} is not a multiple of ${size}`);
  const out: string[] = [];
  for (let i = 0; i < result.peers.length; i += size) out.push(result.peers.subarray(i, i + size).toString('hex'));
  return out;
}

/** Asserts the reply's peers are distinct, known members other than `self`; returns them. */
function members(swarm: TestSwarm, result: StoreAnnounceResult, self: Peer): Peer[] {
  const list = addrs(result, self.family);
  assert.equal(new Set(list).size, list.length, 'selected peers are not distinct');
  return list.map((hex) => {
    const p = swarm.byAddr.get(hex);
    assert.ok(p !== undefined, `selected address ${hex} was never announced`);
    assert.notEqual(p, self, 'the announcer was given itself');
    assert.equal(p.family, self.family, 'a peer of the other family was selected');
    return p;
  });
}

function sameSet(actual: Peer[], expected: Peer[], message?: string): void {
  const hex = (ps: Peer[]) => ps.map((p) => p.addr.toString('hex')).sort();
  assert.deepEqual(hex(actual), hex(expected), message);
}

/** Asserts that no selected peer is (has the id of) `p`. */
function excludes(result: StoreAnnounceResult, p: Peer): void {
  const size = p.family === 4 ? 6 : 18;
  for (let i = 0; i < result.peers.length; i += size) {
    assert.ok(!result.peers.subarray(i, i + size).equals(p.addr), 'the entry of the announcing peer id was returned');
  }
  for (let i = 0; i < (result.peerIds?.length ?? 0); i += 20) {
    assert.ok(!result.peerIds!.subarray(i, i + 20).equals(p.id), 'the announcing peer id was returned');
  }
}

/** What the model test asks of `open`: a store whose peer selection draws from `random`. */
export interface SeededStoreOptions {
  random?: () => number;
}

/** 2026-01-01T00:00:00Z: the model test's clock starts here, whatever the real time. */
const MODEL_START_MS = Date.UTC(2026, 0, 1);

/** The model test's seeds: MODEL_SEED=n (or n,m,…) replays those only. */
function modelSeeds(): number[] {
  const given = (process.env.MODEL_SEED ?? '').trim();
  if (given === '') return [1, 2, 3, 4];
  const seeds = given.split(',').map((x) => Number(x.trim()));
  if (!seeds.every(Number.isSafeInteger)) throw new Error(`MODEL_SEED: "${given}" is not a list of integers`);
  return seeds;
}

export function runStoreConformance(
  name: string,
  open: (options?: SeededStoreOptions) => Promise<SwarmStore>,
  close: (s: SwarmStore) => Promise<void> = (s) => s.close(),
  options: ConformanceOptions = {},
): void {
  const RETENTION_MS = options.swarmRetentionMs ?? DEFAULT_SWARM_RETENTION_MS;
  describe(`SwarmStore conformance: ${name}`, () => {
    let store: SwarmStore;
    before(async () => {
      store = await open();
    });
    after(async () => {
      await close(store);
    });
    const swarm = () => new TestSwarm(store);

    it('replays a model seed exactly: the same answers from a new store', async () => {
      // what makes a failing seed worth its number: inputs, clock and selection all from the seed
      const run = async () => {
        const fresh = await open({ random: prng(7 ^ 0x5eed5eed) });
        try {
          return await modelRun(fresh, 7, 300);
        } finally {
          await close(fresh);
        }
      };
      assert.equal(await run(), await run());
    });

    it('agrees with a naive model over random announces and scrapes', async () => {
      for (const seed of modelSeeds()) {
        // Every input comes from the seed, and each seed gets its own store, opened with a seeded
        // random for its peer selection: a failing seed replays step for step (MODEL_SEED=n), as
        // far as the store honours `random`.
        const seeded = await open({ random: prng(seed ^ 0x5eed5eed) });
        try {
          await modelRun(seeded, seed);
        } catch (err) {
          if (err instanceof Error) err.message = `model seed ${seed} (replay: MODEL_SEED=${seed}): ${err.message}`;
          throw err;
        } finally {
          await close(seeded);
        }
      }
    });

    /** One seed of the model test, on `store`; returns a digest of every answer the store gave. */
    async function modelRun(store: SwarmStore, seed: number, steps = options.modelSteps ?? 2500): Promise<string> {
      const trace = createHash('sha256');
      // long enough that a remote store's real key TTLs (a multiple of it) survive any stall of
      // this process: the test's clock runs far ahead of real time, never behind
      const LIFETIME = 10_000;
      const RETENTION = RETENTION_MS;
      const rnd = prng(seed);
      const int = (n: number) => Math.floor(rnd() * n);
      const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
      // derived from the seed, so each store must be new (or have a fresh key prefix)
      const hashes = [0, 1].map(() => bytes(20));
      const ids = Array.from({ length: 10 }, () => bytes(20));
      // each peer id has a home IP per family and a key (some none); it sometimes announces from
      // one of two other IPs, and sometimes with no key, an empty one or a wrong one
      const homes = { 4: ids.map(() => bytes(4)), 6: ids.map(() => bytes(16)) };
      // and a port it mostly keeps (a plain re-announce), sometimes not
      const ports = ids.map(() => bytes(2));
      const away = { 4: [bytes(4), bytes(4)], 6: [bytes(16), bytes(16)] };
      const keys = ids.map((_, i) => (i % 3 === 0 ? undefined : `key-${i}`));
      interface MPeer {
        ip: string;
        addr: string;
        seeder: boolean;
        expiry: number;
        key: string | undefined;
        done: boolean;
      }
      interface MSwarm {
        completed: number;
        last: number;
        families: { 4: Map<number, MPeer>; 6: Map<number, MPeer> };
      }
      const model: MSwarm[] = hashes.map(() => ({
        completed: 0,
        last: -Infinity,
        families: { 4: new Map<number, MPeer>(), 6: new Map<number, MPeer>() },
      }));
      const live = (m: Map<number, MPeer>, now: number) => [...m.entries()].filter(([, p]) => p.expiry > now);
      const both = (m: MSwarm, now: number) => [...live(m.families[4], now), ...live(m.families[6], now)];
      const counts = (m: MSwarm, now: number) => {
        const all = both(m, now);
        return [all.filter(([, p]) => p.seeder).length, all.filter(([, p]) => !p.seeder).length];
      };
      // a swarm without live peers is forgotten once the retention has passed since its last announce
      const forget = (m: MSwarm, now: number) => {
        if (both(m, now).length === 0 && now - m.last >= RETENTION) m.completed = 0;
      };
      // a fixed, plausible time (remote stores see it): replays see the same clock
      let now = MODEL_START_MS;
      const events: AnnounceEvent[] = ['none', 'started', 'completed', 'stopped', 'paused'];
      for (let step = 0; step < steps; step++) {
        // mostly small steps, so that peers re-announce while they live; now and then one that
        // expires some or all peers, or passes the retention
        const jump = int(1000);
        if (jump < 2) now += int(RETENTION * 2);
        // to the retention since a swarm's last announce, give or take 1 ms or a lifetime
        else if (jump < 4) now = Math.max(now, model[int(model.length)].last + RETENTION - 1 + int(3));
        else if (jump < 6) now = Math.max(now, model[int(model.length)].last + RETENTION - LIFETIME + int(2 * LIFETIME));
        else if (jump < 10) now += int(LIFETIME * 2);
        else if (jump < 30) now += int(LIFETIME / 2);
        else now += int(LIFETIME / 100);
        const h = int(hashes.length);
        const m = model[h];
        const op = int(24);
        const at = `step ${step} seed ${seed}`;
        if (op < 2 && options.upkeep) {
          await options.upkeep(store, now, int(1 << 30));
        } else if (op === 2) {
          // the store may hold other tests' swarms (a shared server): only this test's count
          const mine = new Set(hashes.map((x) => x.toString('hex')));
          const all = (await store.scrapeAll(now)).filter((e) => mine.has(e.infoHash.toString('hex')));
          const expected = [];
          for (const [i, mm] of model.entries()) {
            forget(mm, now);
            const [complete, incomplete] = counts(mm, now);
            if (complete + incomplete + mm.completed > 0) {
              expected.push({ infoHash: hashes[i], complete, downloaded: mm.completed, incomplete });
            }
          }
          const order = (e: { infoHash: Buffer }) => e.infoHash.toString('hex');
          const sort = <T extends { infoHash: Buffer }>(l: T[]) => l.sort((a, b) => (order(a) < order(b) ? -1 : 1));
          assert.deepEqual(sort(all), sort(expected), at);
        } else if (op <= 3) {
          forget(m, now);
          const [e] = await store.scrape([hashes[h]], now);
          trace.update(`${e.complete} ${e.incomplete} ${e.downloaded};`);
          assert.deepEqual([e.complete, e.incomplete, e.downloaded], [...counts(m, now), m.completed], at);
        } else {
          forget(m, now);
          m.last = now;
          const family: Family = int(4) === 0 ? 6 : 4;
          const fam = m.families[family];
          const who = int(ids.length);
          const ip = int(6) === 0 ? away[family][int(2)] : homes[family][who];
          const addr = Buffer.concat([ip, int(4) === 0 ? bytes(2) : ports[who]]);
          const k = int(8);
          const key = k === 0 ? undefined : k === 1 ? '' : k === 2 ? 'wrong' : keys[who];
          const seeder = int(2) === 0;
          const event = events[int(events.length)];
          const numWant = int(12);
          const r = await store.announce({
            infoHash: hashes[h],
            peerId: ids[who],
            family,
            addr,
            key,
            seeder,
            event,
            numWant,
            withPeerIds: true,
            now,
            peerLifetimeMs: LIFETIME,
          });
          const before = fam.get(who);
          const known = before !== undefined && before.expiry > now;
          const accepted =
            !known || before.ip === ip.toString('hex') || (key !== undefined && key !== '' && key === before.key);
          if (!accepted) {
            // left as it is
          } else if (event === 'stopped') {
            fam.delete(who);
          } else {
            const counted = seeder && event === 'completed' && (!known || (!before.seeder && !before.done));
            if (counted) m.completed++;
            fam.set(who, {
              ip: ip.toString('hex'),
              addr: addr.toString('hex'),
              seeder,
              expiry: now + LIFETIME,
              key: key === '' ? undefined : key,
              done: (known && before.done) || counted,
            });
          }
          trace.update(`${r.complete} ${r.incomplete} ${r.downloaded} `).update(r.peers).update(r.peerIds ?? '');
          assert.deepEqual([r.complete, r.incomplete, r.downloaded], [...counts(m, now), m.completed], at);
          const candidates =
            event === 'stopped' ? [] : live(fam, now).filter(([id, p]) => id !== who && (!seeder || !p.seeder));
          const size = family === 4 ? 6 : 18;
          assert.equal(r.peers.length, Math.min(numWant, candidates.length) * size, at);
          assert.equal(r.peerIds?.length, r.peers.length / size * 20, `${at}: peerIds`);
          const byAddr = new Map(candidates.map(([id, p]) => [p.addr, id]));
          const got = new Set<string>();
          for (let i = 0; i * size < r.peers.length; i++) {
            const a = r.peers.subarray(i * size, (i + 1) * size).toString('hex');
            const id = byAddr.get(a);
            assert.ok(id !== undefined, `${at}: selected a non-candidate`);
            assert.ok(!got.has(a), `${at}: duplicate`);
            got.add(a);
            assert.deepEqual(r.peerIds?.subarray(i * 20, i * 20 + 20), ids[id]);
          }
        }
        options.check?.(store);
      }
      return trace.digest('hex');
    }

    it('counts a new peer as a leecher or a seeder', async () => {
      const s = swarm();
      let r = await s.announce(s.peer(), { seeder: false });
      assert.deepEqual([r.complete, r.incomplete, r.downloaded], [0, 1, 0]);
      r = await s.announce(s.peer(), { seeder: true });
      assert.deepEqual([r.complete, r.incomplete, r.downloaded], [1, 1, 0]);
      assert.deepEqual(await s.scrape(), { infoHash: s.infoHash, complete: 1, downloaded: 0, incomplete: 1 });
    });

    it('updates a re-announcing peer in place, with its new address', async () => {
      const s = swarm();
      const [a, b] = await s.populate(2);
      let r = await s.announce(a);
      assert.equal(r.incomplete, 2);
      const moved = { ...a, addr: s.peer().addr };
      s.byAddr.set(moved.addr.toString('hex'), moved);
      r = await s.announce(moved);
      assert.equal(r.incomplete, 2);
      sameSet(members(s, await s.announce(b), b), [moved]);
    });

    it('moves a leecher reaching left=0 to the seeders, and back', async () => {
      const s = swarm();
      const [a, b] = await s.populate(2);
      let r = await s.announce(a, { seeder: true });
      assert.deepEqual([r.complete, r.incomplete], [1, 1]);
      r = await s.announce(b);
      assert.deepEqual([r.complete, r.incomplete], [1, 1]);
      sameSet(members(s, r, b), [a]);
      r = await s.announce(a, { seeder: false });
      assert.deepEqual([r.complete, r.incomplete], [0, 2]);
    });

    it('removes a peer on event=stopped and gives it no peers', async () => {
      const s = swarm();
      const [a, b, c] = await s.populate(3);
      let r = await s.announce(a, { event: 'stopped', numWant: 50, withPeerIds: true });
      assert.equal(r.peers.length, 0);
      assert.deepEqual(r.peerIds, Buffer.alloc(0), 'stopped with withPeerIds gives an empty peerIds');
      assert.deepEqual([r.complete, r.incomplete], [0, 2]);
      r = await s.announce(b);
      assert.equal(r.incomplete, 2);
      sameSet(members(s, r, b), [c]);
      // stopping twice, or a peer or swarm never seen, is harmless
      r = await s.announce(a, { event: 'stopped' });
      assert.deepEqual([r.complete, r.incomplete, r.peers.length], [0, 2, 0]);
      const other = swarm();
      r = await other.announce(other.peer(), { event: 'stopped', withPeerIds: true });
      assert.deepEqual([r.complete, r.incomplete, r.downloaded, r.peers.length], [0, 0, 0, 0]);
      assert.deepEqual(r.peerIds, Buffer.alloc(0));
      r = await s.announce(b, { event: 'stopped' });
      assert.equal(r.peerIds, undefined);
      assert.deepEqual(await other.scrape(), { infoHash: other.infoHash, complete: 0, downloaded: 0, incomplete: 0 });
    });

    it('never selects the announcer', async () => {
      const s = swarm();
      const peers = await s.populate(3);
      for (let round = 0; round < 5; round++) {
        for (const p of peers) {
          sameSet(members(s, await s.announce(p, { numWant: 10 }), p), peers.filter((q) => q !== p));
        }
      }
      const lone = swarm();
      const only = lone.peer();
      assert.equal((await lone.announce(only)).peers.length, 0);
      assert.equal((await lone.announce(only, { seeder: true })).peers.length, 0);
    });

    it('gives a seeder only leechers', async () => {
      const s = swarm();
      const seeders = await s.populate(5, { seeder: true });
      const leechers = await s.populate(5);
      const r = await s.announce(seeders[0], { seeder: true });
      assert.deepEqual([r.complete, r.incomplete], [5, 5]);
      sameSet(members(s, r, seeders[0]), leechers);
      for (let i = 0; i < 20; i++) {
        const few = members(s, await s.announce(seeders[1], { seeder: true, numWant: 3 }), seeders[1]);
        assert.equal(few.length, 3);
        for (const p of few) assert.ok(leechers.includes(p), 'a seeder was given a seeder');
      }
      const onlySeeders = swarm();
      const [x] = await onlySeeders.populate(2, { seeder: true });
      assert.equal((await onlySeeders.announce(x, { seeder: true })).peers.length, 0);
    });

    it('gives a leecher both seeders and leechers', async () => {
      const s = swarm();
      const seeders = await s.populate(5, { seeder: true });
      const leechers = await s.populate(5);
      const r = await s.announce(leechers[0]);
      sameSet(members(s, r, leechers[0]), [...seeders, ...leechers.slice(1)]);
    });

    it('returns numWant peers, capped by the swarm size − 1', async () => {
      const s = swarm();
      const peers = await s.populate(20);
      const me = peers[7];
      assert.equal(members(s, await s.announce(me, { numWant: 5 }), me).length, 5);
      assert.equal(members(s, await s.announce(me, { numWant: 19 }), me).length, 19);
      assert.equal(members(s, await s.announce(me, { numWant: 100 }), me).length, 19);
      const newcomer = s.peer();
      assert.equal(members(s, await s.announce(newcomer, { numWant: 100 }), newcomer).length, 20);
    });

    it('returns no peers for numWant 0, with the counts', async () => {
      const s = swarm();
      const [a] = await s.populate(4);
      const r = await s.announce(a, { numWant: 0, withPeerIds: true });
      assert.equal(r.peers.length, 0);
      assert.deepEqual(r.peerIds, Buffer.alloc(0));
      assert.deepEqual([r.complete, r.incomplete], [0, 4]);
    });

    it('returns peer ids in the order of the peers only when asked', async () => {
      const s = swarm();
      const peers = await s.populate(10);
      for (let i = 0; i < 10; i++) {
        const me = peers[i];
        const r = await s.announce(me, { numWant: 5, withPeerIds: true });
        const picked = members(s, r, me);
        assert.equal(picked.length, 5);
        assert.ok(r.peerIds !== undefined);
        assert.equal(r.peerIds.length, 5 * 20);
        picked.forEach((p, j) => assert.deepEqual(r.peerIds!.subarray(j * 20, j * 20 + 20), p.id));
      }
      assert.equal((await s.announce(peers[0], { numWant: 5 })).peerIds, undefined);
    });

    it('gives peers of the announcer\'s family only, counting both families like scrape', async () => {
      const s = swarm();
      const v4 = await s.populate(3);
      const v6 = await s.populate(2, { family: 6 });
      const v6seed = s.peer(6);
      let r = await s.announce(v6seed, { seeder: true });
      assert.deepEqual([r.complete, r.incomplete], [1, 5]);
      sameSet(members(s, r, v6seed), v6);
      r = await s.announce(v6[0]);
      assert.deepEqual([r.complete, r.incomplete], [1, 5]);
      sameSet(members(s, r, v6[0]), [v6[1], v6seed]);
      // an IPv4 client in a swarm whose only seeder is IPv6 is told about that seeder
      r = await s.announce(v4[0]);
      assert.deepEqual([r.complete, r.incomplete], [1, 5]);
      sameSet(members(s, r, v4[0]), v4.slice(1));
      assert.deepEqual(await s.scrape(), { infoHash: s.infoHash, complete: 1, downloaded: 0, incomplete: 5 });
      // the same peer id in both families is two peers
      const dual = { ...s.peer(6), id: v4[1].id };
      s.byAddr.set(dual.addr.toString('hex'), dual);
      r = await s.announce(dual);
      assert.deepEqual([r.complete, r.incomplete], [1, 6]);
      assert.equal((await s.scrape()).incomplete, 6);
      // a stop counts both families too
      r = await s.announce(v4[2], { event: 'stopped' });
      assert.deepEqual([r.complete, r.incomplete], [1, 5]);
      // expired peers of the other family are not counted
      const t = s.now;
      r = await s.announce(v4[0], { now: t + LIFETIME_MS - 1 });
      assert.deepEqual([r.complete, r.incomplete], [1, 5]);
      r = await s.announce(v4[0], { now: t + LIFETIME_MS });
      assert.deepEqual([r.complete, r.incomplete], [0, 1]);
    });

    it('counts a completion once per peer, and keeps the count after the peers leave', async () => {
      const s = swarm();
      const [a, b, c] = [s.peer(), s.peer(), s.peer()];
      await s.announce(a, { event: 'started' });
      let r = await s.announce(a, { seeder: true, event: 'completed' });
      assert.equal(r.downloaded, 1);
      r = await s.announce(a, { seeder: true, event: 'completed' });
      assert.equal(r.downloaded, 1, 'a seeder completing again was counted');
      r = await s.announce(b, { seeder: true, event: 'completed' });
      assert.equal(r.downloaded, 2, 'a new peer arriving completed was not counted');
      await s.announce(c, { seeder: true, event: 'started' });
      r = await s.announce(c, { seeder: true, event: 'completed' });
      assert.equal(r.downloaded, 2, 'a peer that started as a seeder was counted');
      r = await s.announce(c, { seeder: false, event: 'none' });
      assert.equal(r.downloaded, 2);
      for (const p of [a, b, c]) r = await s.announce(p, { event: 'stopped' });
      assert.deepEqual([r.complete, r.incomplete, r.downloaded], [0, 0, 2]);
      assert.deepEqual(await s.scrape(), { infoHash: s.infoHash, complete: 0, downloaded: 2, incomplete: 0 });
      const late = s.peer();
      r = await s.announce(late);
      assert.deepEqual([r.complete, r.incomplete, r.downloaded], [0, 1, 2]);
      assert.equal((await store.scrapeAll(s.now)).find((e) => e.infoHash.equals(s.infoHash))?.downloaded, 2);
    });

    it('counts a peer once even when it goes back to leeching and completes again', async () => {
      const s = swarm();
      const [a, b] = [s.peer(), s.peer()];
      await s.announce(a, { event: 'started' });
      let r: StoreAnnounceResult;
      for (let round = 0; round < 3; round++) {
        r = await s.announce(a, { seeder: true, event: 'completed' });
        assert.equal(r.downloaded, 1, `round ${round}: completing again was counted`);
        r = await s.announce(a, { seeder: false });
        assert.deepEqual([r.complete, r.incomplete, r.downloaded], [0, 1, 1]);
      }
      r = await s.announce(b, { seeder: true, event: 'completed' });
      assert.equal(r.downloaded, 2, 'a new peer arriving completed was not counted');
      await s.announce(b, { seeder: false });
      r = await s.announce(b, { seeder: true, event: 'completed' });
      assert.equal(r.downloaded, 2, 'a peer that arrived completed was counted again');
      // a peer that left and comes back is a new stay in the swarm
      await s.announce(a, { event: 'stopped' });
      await s.announce(a, { event: 'started' });
      r = await s.announce(a, { seeder: true, event: 'completed' });
      assert.equal(r.downloaded, 3);
      assert.deepEqual(await s.scrape(), { infoHash: s.infoHash, complete: 2, downloaded: 3, incomplete: 0 });
    });

    it('keeps the completed count when the peers expire', async () => {
      const s = swarm();
      const a = s.peer();
      await s.announce(a, { seeder: true, event: 'completed' });
      s.now += LIFETIME_MS + 1;
      assert.deepEqual(await s.scrape(), { infoHash: s.infoHash, complete: 0, downloaded: 1, incomplete: 0 });
      for (let i = 0; i < 2; i++) {
        const all = await store.scrapeAll(s.now);
        assert.deepEqual(
          all.filter((e) => e.infoHash.equals(s.infoHash)),
          [{ infoHash: s.infoHash, complete: 0, downloaded: 1, incomplete: 0 }],
          `scrapeAll ${i}: one entry per swarm`,
        );
      }
    });

    it('lists each swarm once in scrapeAll, whatever state it is in', async () => {
      const [live, expiring, stopped] = [swarm(), swarm(), swarm()];
      expiring.now = stopped.now = live.now;
      await live.populate(2);
      await live.announce(live.peer(6), { seeder: true, event: 'completed' });
      await expiring.announce(expiring.peer(), { seeder: true, event: 'completed' });
      const p = stopped.peer(6);
      await stopped.announce(p, { seeder: true, event: 'completed' });
      await stopped.announce(p, { event: 'stopped' });
      const now = live.now + LIFETIME_MS + 1;
      await live.populate(1);
      const all = await store.scrapeAll(live.now);
      const later = await store.scrapeAll(now);
      for (const [list, s, entry] of [
        [all, live, [1, 1, 3]],
        [all, expiring, [1, 1, 0]],
        [all, stopped, [0, 1, 0]],
        [later, live, [0, 1, 0]],
        [later, expiring, [0, 1, 0]],
        [later, stopped, [0, 1, 0]],
      ] as const) {
        const found = list.filter((e) => e.infoHash.equals(s.infoHash));
        assert.equal(found.length, 1, 'a swarm listed other than once');
        assert.deepEqual([found[0].complete, found[0].downloaded, found[0].incomplete], entry);
      }
    });

    it('forgets a swarm without live peers once the retention has passed since its last announce', async () => {
      assert.ok(RETENTION_MS > LIFETIME_MS + 2000, 'the suite needs a retention above the peer lifetime');
      // the peers stop: the retention runs from the last announce (a stop)
      const s = swarm();
      const t = s.now;
      const [a, b] = [s.peer(), s.peer()];
      await s.announce(a, { seeder: true, event: 'completed' });
      await s.announce(b, { now: t + 1000 });
      await s.announce(a, { event: 'stopped', now: t + 1500 });
      await s.announce(b, { event: 'stopped', now: t + 2000 });
      const last = t + 2000;
      const kept = { infoHash: s.infoHash, complete: 0, downloaded: 1, incomplete: 0 };
      const gone = { infoHash: s.infoHash, complete: 0, downloaded: 0, incomplete: 0 };
      // scrapes do not extend it
      assert.deepEqual(await s.scrape(last + RETENTION_MS / 2), kept);
      assert.deepEqual(await s.scrape(last + RETENTION_MS - 1), kept);
      const before = await store.scrapeAll(last + RETENTION_MS - 1);
      assert.deepEqual(before.filter((e) => e.infoHash.equals(s.infoHash)), [kept]);
      assert.deepEqual(await s.scrape(last + RETENTION_MS), gone);
      const after = await store.scrapeAll(last + RETENTION_MS);
      assert.equal(after.filter((e) => e.infoHash.equals(s.infoHash)).length, 0, 'scrapeAll lists a forgotten swarm');
      let r = await s.announce(s.peer(), { now: last + RETENTION_MS });
      assert.deepEqual([r.complete, r.incomplete, r.downloaded], [0, 1, 0]);

      // the peers expire: the retention still runs from the last announce
      const e = swarm();
      await e.announce(e.peer(), { seeder: true, event: 'completed' });
      assert.deepEqual(await e.scrape(e.now + LIFETIME_MS), { ...kept, infoHash: e.infoHash });
      assert.deepEqual(await e.scrape(e.now + RETENTION_MS - 1), { ...kept, infoHash: e.infoHash });
      assert.deepEqual(await e.scrape(e.now + RETENTION_MS), { ...gone, infoHash: e.infoHash });

      // any announce restarts it, and an announce after it has passed starts from zero
      const k = swarm();
      const u = k.now;
      const c = k.peer();
      await k.announce(c, { seeder: true, event: 'completed' });
      await k.announce(c, { event: 'stopped' });
      const d = k.peer();
      await k.announce(d, { now: u + RETENTION_MS - 1 });
      await k.announce(d, { now: u + RETENTION_MS - 1, event: 'stopped' });
      assert.equal((await k.scrape(u + RETENTION_MS)).downloaded, 1);
      assert.equal((await k.scrape(u + 2 * RETENTION_MS - 2)).downloaded, 1);
      r = await k.announce(k.peer(), { now: u + 2 * RETENTION_MS - 1, seeder: true, event: 'completed' });
      assert.deepEqual([r.complete, r.incomplete, r.downloaded], [1, 0, 1], 'the old count was not forgotten');
    });

    it('lets no other IP stop, move or change a peer without the key it was stored with', async () => {
      const s = swarm();
      const t = s.now;
      const v = s.peer();
      v.key = 'victim-key';
      const [w] = await s.populate(1);
      await s.announce(v, { numWant: 0 });
      const bare = s.elsewhere(v);
      const wrong = s.elsewhere(v, 'wrong-key');
      const empty = s.elsewhere(v, '');
      const tries: [Peer, AnnounceOptions][] = [
        [bare, { event: 'stopped' }],
        [bare, {}],
        [bare, { seeder: true, event: 'completed' }],
        [wrong, { event: 'stopped' }],
        [wrong, { seeder: true, event: 'completed' }],
        [empty, { event: 'stopped' }],
        [empty, { seeder: true }],
        [s.elsewhere(v, 'victim-key2'), { seeder: true }],
      ];
      for (const [i, [intruder, o]] of tries.entries()) {
        const r = await s.announce(intruder, { ...o, withPeerIds: true, now: t + 10 * i });
        const what = `try ${i} (${intruder.key ?? 'no key'}, ${o.event ?? 'none'})`;
        assert.deepEqual([r.complete, r.incomplete, r.downloaded], [0, 2, 0], `${what}: the answer's counts`);
        excludes(r, v);
        excludes(r, intruder);
        if (o.event === 'stopped') assert.equal(r.peers.length, 0);
        else sameSet(members(s, r, intruder), [w], `${what}: the answer's peers`);
        const seen = await s.announce(w, { now: t + 10 * i + 1 });
        assert.deepEqual([seen.complete, seen.incomplete, seen.downloaded], [0, 2, 0], `${what} changed the counts`);
        sameSet(members(s, seen, w), [v], `${what} moved or removed the peer`);
      }
      // nor did they refresh it: it expires from its own last announce
      await s.announce(bare, { now: t + LIFETIME_MS - 1 });
      await s.announce(w, { now: t + LIFETIME_MS - 1 });
      const left = await s.scrape(t + LIFETIME_MS);
      assert.deepEqual(left, { infoHash: s.infoHash, complete: 0, downloaded: 0, incomplete: 1 });

      // an entry stored without a key can be changed from its own IP only
      const n = swarm();
      const [x, y] = await n.populate(2);
      for (const intruder of [n.elsewhere(x), n.elsewhere(x, ''), n.elsewhere(x, 'any')]) {
        await n.announce(intruder, { event: 'stopped' });
        await n.announce(intruder, { seeder: true });
        sameSet(members(n, await n.announce(y), y), [x], `an intruder with key ${intruder.key} changed it`);
      }
    });

    it('lets a peer whose IP changed prove itself with its key', async () => {
      const s = swarm();
      const v = s.peer();
      v.key = 'k-' + randomBytes(4).toString('hex');
      const [w] = await s.populate(1);
      await s.announce(v, { numWant: 0 });
      // from another IP with the key: moved, and updated like any announce
      const moved = s.elsewhere(v, v.key);
      let r = await s.announce(moved, { seeder: true, event: 'completed' });
      assert.deepEqual([r.complete, r.incomplete, r.downloaded], [1, 1, 1]);
      sameSet(members(s, r, moved), [w]);
      sameSet(members(s, await s.announce(w), w), [moved]);
      // now the old IP is another IP: without the key it changes nothing
      r = await s.announce(v, { key: undefined, event: 'stopped' });
      assert.deepEqual([r.complete, r.incomplete], [1, 1]);
      sameSet(members(s, await s.announce(w), w), [moved]);
      // the same IP on another port needs no key; the entry then holds the key it came with (none)
      const port = s.newPort({ ...moved, key: undefined });
      r = await s.announce(port, { seeder: true });
      assert.deepEqual([r.complete, r.incomplete, r.downloaded], [1, 1, 1]);
      sameSet(members(s, await s.announce(w), w), [port]);
      r = await s.announce(s.elsewhere(v, v.key), { event: 'stopped' });
      assert.deepEqual([r.complete, r.incomplete], [1, 1], 'a key the entry no longer holds stopped it');
      // a new key from the same IP, then a stop with it from another IP removes the peer
      await s.announce({ ...port, key: 'new-key' }, { seeder: true });
      r = await s.announce(s.elsewhere(v, 'new-key'), { event: 'stopped', withPeerIds: true });
      assert.deepEqual([r.complete, r.incomplete, r.peers.length, r.peerIds?.length], [0, 1, 0, 0]);
      assert.equal((await s.announce(w)).peers.length, 0);
      // and the IPv6 pool keeps the same rule
      const v6 = s.peer(6);
      v6.key = 'six';
      const [w6] = await s.populate(1, { family: 6 });
      await s.announce(v6);
      r = await s.announce(s.elsewhere(v6), { event: 'stopped' });
      sameSet(members(s, await s.announce(w6), w6), [v6]);
      const moved6 = s.elsewhere(v6, 'six');
      await s.announce(moved6);
      sameSet(members(s, await s.announce(w6), w6), [moved6]);
    });

    it('keeps a full swarm at its limit: new peers answered but not stored, known peers served', async () => {
      const s = swarm();
      const limit = { maxPeersPerSwarm: 5 };
      const v4 = [s.peerAt(randomBytes(4)), s.peerAt(randomBytes(4)), s.peerAt(randomBytes(4))];
      const v6 = [s.peerAt(randomBytes(16)), s.peerAt(randomBytes(16))];
      for (const p of [...v4, ...v6]) {
        const r = await s.announce(p, { ...limit, numWant: 0 });
        assert.equal(r.refused, undefined);
      }
      // both families count toward the limit
      const late = s.peerAt(randomBytes(4));
      let r = await s.announce(late, { ...limit, withPeerIds: true });
      assert.equal(r.refused, 'swarm-full');
      assert.deepEqual([r.complete, r.incomplete], [0, 5], 'the refused peer is not counted');
      sameSet(members(s, r, late), v4, 'a refused peer still gets peers');
      assert.equal(r.peerIds?.length, 3 * 20);
      assert.equal((await s.scrape()).incomplete, 5);
      // nobody is given the refused peer
      sameSet(members(s, await s.announce(v4[0], limit), v4[0]), v4.slice(1));
      // known peers are never refused: re-announce, become seeders, complete
      r = await s.announce(v4[1], { ...limit, seeder: true, event: 'completed' });
      assert.equal(r.refused, undefined);
      assert.deepEqual([r.complete, r.incomplete, r.downloaded], [1, 4, 1]);
      // a stop makes room for one
      await s.announce(v6[0], { ...limit, event: 'stopped' });
      r = await s.announce(late, limit);
      assert.equal(r.refused, undefined);
      assert.deepEqual([r.complete, r.incomplete], [1, 4]);
      assert.equal((await s.announce(s.peerAt(randomBytes(4)), limit)).refused, 'swarm-full');
      // without a limit the same swarm takes more
      r = await s.announce(s.peerAt(randomBytes(4)), { numWant: 0 });
      assert.equal(r.refused, undefined);
      assert.equal(r.complete + r.incomplete, 6);
    });

    it('lets one address hold at most maxPeersPerAddress peers of a swarm (IPv6: one /64)', async () => {
      const s = swarm();
      const limit = { maxPeersPerAddress: 2 };
      const ip = randomBytes(4);
      const [a, b] = [s.peerAt(ip), s.peerAt(ip)];
      assert.equal((await s.announce(a, limit)).refused, undefined);
      assert.equal((await s.announce(b, { ...limit, seeder: true })).refused, undefined);
      const c = s.peerAt(ip);
      const r = await s.announce(c, limit);
      assert.equal(r.refused, 'address-full');
      assert.deepEqual([r.complete, r.incomplete], [1, 1]);
      sameSet(members(s, r, c), [a, b]);
      // another address is not affected, and the full address's peers keep announcing
      assert.equal((await s.announce(s.peerAt(randomBytes(4)), limit)).refused, undefined);
      assert.equal((await s.announce(a, { ...limit, seeder: true })).refused, undefined);
      assert.equal((await s.announce(s.newPort(b), limit)).refused, undefined, 'a known peer on a new port');
      // a stopped peer frees its place
      await s.announce(a, { ...limit, event: 'stopped' });
      assert.equal((await s.announce(c, limit)).refused, undefined);
      assert.equal((await s.announce(s.peerAt(ip), limit)).refused, 'address-full');
      // IPv6: the /64 is the address; another /64 is another address
      const net = randomBytes(16);
      const host = (last: number) => {
        const x = Buffer.from(net);
        x[15] = last;
        x[9] ^= last;
        return x;
      };
      assert.equal((await s.announce(s.peerAt(host(1)), limit)).refused, undefined);
      assert.equal((await s.announce(s.peerAt(host(2)), limit)).refused, undefined);
      assert.equal((await s.announce(s.peerAt(host(3)), limit)).refused, 'address-full');
      const otherNet = host(4);
      otherNet[7] ^= 0xff;
      assert.equal((await s.announce(s.peerAt(otherNet), limit)).refused, undefined);
      assert.equal((await s.scrape()).complete + (await s.scrape()).incomplete, 6);
    });

    it('counts only live peers toward the limits', async () => {
      const s = swarm();
      const t = s.now;
      const ip = randomBytes(4);
      const limit = { maxPeersPerAddress: 2, maxPeersPerSwarm: 3 };
      await s.announce(s.peerAt(ip), { ...limit, now: t });
      await s.announce(s.peerAt(ip), { ...limit, now: t });
      await s.announce(s.peerAt(randomBytes(4)), { ...limit, now: t });
      assert.equal((await s.announce(s.peerAt(randomBytes(4)), { ...limit, now: t + 1 })).refused, 'swarm-full');
      assert.equal((await s.announce(s.peerAt(ip), { ...limit, now: t + 1 })).refused, 'address-full');
      // once the three expired, their places are free again
      const later = t + LIFETIME_MS + 1;
      assert.equal((await s.announce(s.peerAt(ip), { ...limit, now: later })).refused, undefined);
      assert.equal((await s.announce(s.peerAt(ip), { ...limit, now: later })).refused, undefined);
      const r = await s.announce(s.peerAt(randomBytes(4)), { ...limit, now: later });
      assert.equal(r.refused, undefined);
      assert.deepEqual([r.complete, r.incomplete], [0, 3]);
    });

    it('expires a peer exactly peerLifetimeMs after its last announce', async () => {
      const s = swarm();
      const t = s.now;
      const [x] = await s.populate(1);
      const [y, z] = [s.peer(), s.peer()];
      assert.equal((await s.scrape(t + LIFETIME_MS - 1)).incomplete, 1);
      let r = await s.announce(y, { now: t + LIFETIME_MS - 1 });
      assert.equal(r.incomplete, 2);
      sameSet(members(s, r, y), [x]);
      assert.equal((await s.scrape(t + LIFETIME_MS + 1)).incomplete, 1);
      r = await s.announce(y, { now: t + LIFETIME_MS + 1 });
      assert.equal(r.incomplete, 1);
      assert.equal(r.peers.length, 0);
      r = await s.announce(z, { now: t + LIFETIME_MS + 2, seeder: true });
      assert.deepEqual([r.complete, r.incomplete], [1, 1]);
      sameSet(members(s, r, z), [y]);
      const all = await store.scrapeAll(t + LIFETIME_MS + 2);
      assert.deepEqual(all.find((e) => e.infoHash.equals(s.infoHash)), {
        infoHash: s.infoHash,
        complete: 1,
        downloaded: 0,
        incomplete: 1,
      });
      // a re-announce pushes the expiry forward
      r = await s.announce(y, { now: t + 2 * LIFETIME_MS });
      assert.equal((await s.scrape(t + 3 * LIFETIME_MS - 1)).incomplete, 1);
      assert.equal((await s.scrape(t + 3 * LIFETIME_MS + 1)).incomplete, 0);
    });

    it('scrapes unknown hashes as zeros, in request order, duplicates included', async () => {
      const s = swarm();
      await s.populate(2);
      await s.announce(s.peer(), { seeder: true });
      const unknown = randomBytes(20);
      const entries = await store.scrape([s.infoHash, unknown, s.infoHash], s.now);
      assert.deepEqual(entries, [
        { infoHash: s.infoHash, complete: 1, downloaded: 0, incomplete: 2 },
        { infoHash: unknown, complete: 0, downloaded: 0, incomplete: 0 },
        { infoHash: s.infoHash, complete: 1, downloaded: 0, incomplete: 2 },
      ]);
      assert.deepEqual(await store.scrape([], s.now), []);
    });

    it('includes a swarm with peers in scrapeAll', async () => {
      const s = swarm();
      await s.populate(3);
      await s.populate(1, { seeder: true, family: 6 });
      const all = await store.scrapeAll(s.now);
      assert.deepEqual(all.find((e) => e.infoHash.equals(s.infoHash)), {
        infoHash: s.infoHash,
        complete: 1,
        downloaded: 0,
        incomplete: 3,
      });
      // stats may be approximate for remote stores: only its shape is checked here
      const stats = await store.stats();
      assert.ok(Number.isInteger(stats.peers) && stats.peers >= 0, `stats ${JSON.stringify(stats)}`);
      assert.ok(Number.isInteger(stats.swarms) && stats.swarms >= 0, `stats ${JSON.stringify(stats)}`);
    });

    it('returns numWant distinct members from a swarm of 1,000 peers', async () => {
      const s = swarm();
      const peers = await s.populate(1000);
      const newcomer = s.peer();
      for (const me of [peers[0], peers[500], peers[999], newcomer]) {
        const r = await s.announce(me, { numWant: 50, withPeerIds: true });
        assert.equal(r.incomplete, me === newcomer ? 1001 : 1000);
        const picked = members(s, r, me);
        assert.equal(picked.length, 50);
        picked.forEach((p, j) => assert.deepEqual(r.peerIds!.subarray(j * 20, j * 20 + 20), p.id));
      }
    });

    it('selects at random: every peer of a 200-peer swarm turns up', async () => {
      const s = swarm();
      const peers = await s.populate(200);
      const me = peers[100];
      const seen = new Set<Peer>();
      for (let i = 0; i < 150; i++) {
        for (const p of members(s, await s.announce(me, { numWant: 50 }), me)) seen.add(p);
      }
      assert.equal(seen.size, 199);
    });
  });
}
