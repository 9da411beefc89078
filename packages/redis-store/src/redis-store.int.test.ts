/*
 * The Redis store against real servers (DESIGN.md, "Real infrastructure in tests"): one server and
 * one 6-node cluster, started for this file (or taken from REDIS_URL / REDIS_CLUSTER_NODES).
 * Every store gets a random key prefix, so the suites share the servers safely.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { prng, runStoreConformance } from '@peertracker/tracker/dist/store-conformance';
import type { Redis } from 'ioredis';
import type { StoreAnnounceResult } from '@peertracker/tracker';
import { AnnounceLateError, createRedisStore, type RedisStore, type RedisStoreOptions, type RedisTarget } from './redis-store';
import { BOUND_BLOCK, HEADER_BYTES, INDEX_MERGE, INDEX_SHARDS, INDEX_SPLIT, POOL_CHUNK, SMALL_POOL, SWEEP_DROPS, SWEEP_SLOTS } from './scripts';
import { redisSkipReason, startRedisTestServer, type RedisTestServer } from './testing';

const servers: Partial<Record<'single' | 'cluster', RedisTestServer>> = {};
const kinds = (['single', 'cluster'] as const).filter((kind) => {
  const reason = redisSkipReason(kind);
  if (reason !== undefined) it(`redis ${kind} store`, { skip: reason }, () => {});
  return reason === undefined;
});

before(async () => {
  await Promise.all(kinds.map(async (kind) => (servers[kind] = await startRedisTestServer(kind))));
});
after(async () => {
  await Promise.all(Object.values(servers).map((s) => s.stop()));
});

function target(kind: 'single' | 'cluster'): RedisTarget {
  const s = servers[kind];
  if (s === undefined) throw new Error(`no redis ${kind} server was started`);
  return kind === 'single' ? { url: s.url! } : { clusterNodes: s.nodes };
}

function open(kind: 'single' | 'cluster', options: RedisStoreOptions = {}): Promise<RedisStore> {
  return createRedisStore(target(kind), { keyPrefix: `t${randomBytes(4).toString('hex')}:`, ...options });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every command the scripts run on the store's masters while `body` runs (MONITOR), per script call. */
async function scriptCommands(store: RedisStore, body: () => Promise<void>): Promise<string[][][]> {
  const client = store.client;
  const masters: Redis[] = 'nodes' in client ? client.nodes('master') : [client as Redis];
  const calls: string[][][] = [];
  const monitors = await Promise.all(
    masters.map(async (m) => {
      const mon = await m.duplicate().monitor();
      let current: string[][] | undefined;
      mon.on('monitor', (_time: string, args: string[], source: string) => {
        const name = String(args[0]).toLowerCase();
        if (source !== 'lua') {
          current = name === 'evalsha' || name === 'eval' ? [] : undefined;
          if (current) calls.push(current);
        } else {
          current?.push(args.map(String));
        }
      });
      return mon;
    }),
  );
  try {
    // MONITOR starts with the next command: one round trip on each connection first
    await Promise.all(masters.map((m) => m.ping()));
    await body();
    await Promise.all(masters.map((m) => m.ping()));
    await sleep(100);
  } finally {
    monitors.forEach((m) => m.disconnect());
  }
  return calls;
}

/**
 * Asserts each script call did work bounded independently of the swarm size: no whole-key read
 * (GET) but of the small count key, no read or write of more than `bytes` at once, at most
 * `commands` commands.
 */
function assertBounded(calls: string[][][], { bytes, commands }: { bytes: number; commands: number }): void {
  assert.ok(calls.length > 0, 'no script call was seen');
  for (const call of calls) {
    assert.ok(call.length <= commands, `a script call ran ${call.length} commands`);
    for (const [name, key, ...rest] of call) {
      const cmd = name.toLowerCase();
      assert.ok(!/^(keys|scan|hgetall|hkeys|hvals|hscan|lrange|zrange|smembers|sort)$/.test(cmd), `${cmd} walks a key`);
      if (cmd === 'get') assert.ok(key.endsWith(':c'), `GET ${key} reads a whole pool`);
      if (cmd === 'getrange') {
        const length = Number(rest[1]) - Number(rest[0]) + 1;
        assert.ok(length <= bytes, `GETRANGE of ${length} bytes`);
      }
      // the monitor escapes binary bytes (up to 4 characters each)
      if (cmd === 'set' || cmd === 'setrange') assert.ok(rest.join('').length <= 4 * bytes, `${cmd} of ${rest.join('').length} characters`);
    }
  }
}

/**
 * A big swarm (both families, over SMALL_POOL peers each) through random joins, stops, seeder flips,
 * moves and the address limit, every answer checked against the peers it should hold; then
 * (shrink) most peers stop and join again, so that pools cross chunk edges both ways. Last, the
 * index, records, address counts and chunk keys agree with the peers.
 */
async function bigSwarmExact(store: RedisStore, chunk: number, shrink = false): Promise<void> {
  // no peer expires here, so a big pool's counts are exact: every move of a slot is checked
  const rnd = prng(7);
  const int = (n: number) => Math.floor(rnd() * n);
  const infoHash = randomBytes(20);
  const [m, r4, p6, r6, x] = store.swarmKeys(infoHash);
  const t = Date.now();
  interface P { id: Buffer; addr: Buffer; key: string | undefined; family: 4 | 6; seeder: boolean; live: boolean; done: boolean }
  const peers: P[] = [];
  const shared = { 4: randomBytes(4), 6: randomBytes(8) };
  // with small chunks, pools of 2.5 and 1.25 chunks: the random steps cross chunk edges
  const sizes = shrink ? [Math.round(2.5 * chunk), Math.round(1.25 * chunk)] : [3 * SMALL_POOL, 2 * SMALL_POOL];
  for (const [family, count] of [[4, sizes[0]], [6, sizes[1]]] as const) {
    for (let i = 0; i < count; i++) {
      const addr = randomBytes(family === 4 ? 6 : 18);
      // one address in twenty shares its IP (IPv6: its /64) with others: the limit of 3 bites
      if (i % 20 === 0) shared[family].copy(addr);
      peers.push({ id: randomBytes(20), addr, key: i % 2 === 0 ? `k${i}` : undefined, family, seeder: false, live: false, done: false });
    }
  }
  const ipOf = (p: { family: 4 | 6; addr: Buffer }) => p.addr.subarray(0, p.family === 4 ? 4 : 8).toString('hex');
  let completed = 0;
  let step = 0;
  const check = (r: StoreAnnounceResult, p: P, stopped: boolean, what: string) => {
    const live = peers.filter((q) => q.live);
    assert.deepEqual([r.complete, r.incomplete, r.downloaded], [live.filter((q) => q.seeder).length, live.filter((q) => !q.seeder).length, completed], what);
    const size = p.family === 4 ? 6 : 18;
    const cands = stopped ? [] : live.filter((q) => q.family === p.family && q !== p && (!p.seeder || !q.seeder));
    assert.equal(r.peers.length, Math.min(20, cands.length) * size, what);
    // a peer is its address and id together: two peers may share an address, and the store keeps
    // both (peers of the shared IP with a port drawn alike: 1 in 65,536 a pair, about 36 pairs
    // live together in a run)
    const byPeer = new Set(cands.map((q) => q.addr.toString('hex') + q.id.toString('hex')));
    assert.equal(r.peerIds?.length, r.peers.length / size * 20, what);
    const seen = new Set<string>();
    for (let j = 0; j * size < r.peers.length; j++) {
      const a = r.peers.subarray(j * size, (j + 1) * size).toString('hex') + r.peerIds!.subarray(j * 20, j * 20 + 20).toString('hex');
      assert.ok(byPeer.has(a) && !seen.has(a), `${what}: selected a non-candidate or twice`);
      seen.add(a);
    }
  };
  const announce = (p: P, o: { seeder: boolean; event: 'none' | 'started' | 'stopped' | 'completed'; addr?: Buffer; key?: string }) =>
    store.announce({ infoHash, peerId: p.id, family: p.family, addr: o.addr ?? p.addr, key: 'key' in o ? o.key : p.key, seeder: o.seeder, event: o.event, numWant: 20, withPeerIds: true, now: t + step, peerLifetimeMs: 600_000, maxPeersPerAddress: 3 });
  const join = async (p: P, seeder: boolean, event: 'started' | 'completed') => {
    const r = await announce(p, { seeder, event });
    const full = peers.filter((q) => q.live && q.family === p.family && ipOf(q) === ipOf(p)).length >= 3;
    assert.equal(r.refused, full ? 'address-full' : undefined, `join ${step}`);
    // (a refused peer is answered in the role it announced)
    p.seeder = seeder;
    if (!full) {
      Object.assign(p, { live: true, done: seeder && event === 'completed' });
      if (p.done) completed++;
    }
    check(r, p, false, `join ${step}`);
  };
  for (const p of peers) {
    step++;
    await join(p, int(3) === 0, 'started');
  }
  for (; step < peers.length + 2000; step++) {
    const p = peers[int(peers.length)];
    const what = `step ${step}`;
    if (!p.live) {
      await join(p, int(2) === 0, int(2) === 0 ? 'completed' : 'started');
      continue;
    }
    const op = int(5);
    if (op === 0) {
      const r = await announce(p, { seeder: p.seeder, event: 'stopped' });
      p.live = false;
      check(r, p, true, what);
    } else if (op === 1) {
      const seeder = !p.seeder;
      const event = seeder && int(2) === 0 ? 'completed' : 'none';
      const r = await announce(p, { seeder, event });
      p.seeder = seeder;
      if (event === 'completed' && !p.done) {
        p.done = true;
        completed++;
      }
      check(r, p, false, what);
    } else if (op === 2) {
      check(await announce(p, { seeder: p.seeder, event: 'none' }), p, false, what);
    } else {
      // a new port (op 3), or another IP: taken with the peer's key only
      const addr = op === 3 ? Buffer.concat([p.addr.subarray(0, p.addr.length - 2), randomBytes(2)]) : randomBytes(p.addr.length);
      const r = await announce(p, { seeder: p.seeder, event: 'none', addr });
      if (op === 3 || p.key !== undefined) p.addr = addr;
      check(r, p, false, what);
    }
  }
  const chunkKeys = async () => (await keysOf(store, infoHash)).filter((k) => /\.\d+$/.test(k) && !k.startsWith(`${x}.`)).sort();
  // the chunk keys of a pool of n peers that grew to n
  const expected = (family: 4 | 6, n: number) => {
    const [pk, rk] = family === 4 ? [m, r4] : [p6, r6];
    const ks: string[] = [];
    for (let c = 1; c < Math.ceil(n / chunk); c++) ks.push(`${pk}.${c}`, `${rk}.${c}`);
    return ks;
  };
  if (shrink) {
    // each pool stops down to below half a chunk (its chunks go), then every peer joins again
    for (const family of [4, 6] as const) {
      const mine = peers.filter((q) => q.family === family && q.live);
      for (const p of mine.slice(0, mine.length - (chunk / 2 - 8))) {
        step++;
        const r = await announce(p, { seeder: p.seeder, event: 'stopped' });
        p.live = false;
        check(r, p, true, `shrink ${step}`);
      }
    }
    assert.deepEqual(await chunkKeys(), [], 'chunks left after the pools shrank');
    for (const p of peers) {
      if (p.live) continue;
      step++;
      await join(p, int(2) === 0, 'started');
    }
    const n4 = peers.filter((q) => q.live && q.family === 4).length;
    const n6 = peers.filter((q) => q.live && q.family === 6).length;
    assert.deepEqual(await chunkKeys(), [...expected(4, n4), ...expected(6, n6)].sort());
  }
  // the index, the records and the address counts agree with the peers (slot i of a pool string:
  // chunk floor(i / chunk), the declared key for chunk 0)
  const live = peers.filter((q) => q.live);
  const at = (base: string, off: number, size: number, slot: number): [string, number] =>
    slot < chunk ? [base, off + slot * size] : [`${base}.${Math.floor(slot / chunk)}`, (slot % chunk) * size];
  const index = await indexOf(store, infoHash);
  for (const p of live) {
    const [pk, rk] = p.family === 4 ? [m, r4] : [p6, r6];
    const [off, size] = p.family === 4 ? [HEADER_BYTES, 6] : [0, 18];
    const slot = Number(index.get((p.family === 4 ? p.id : Buffer.concat([p.id, Buffer.from([6])])).toString('hex')));
    const [rkey, ro] = at(rk, 0, 38, slot);
    assert.deepEqual(await store.client.getrangeBuffer(rkey, ro + 18, ro + 37), p.id);
    const [pkey, po] = at(pk, off, size, slot);
    assert.deepEqual(await store.client.getrangeBuffer(pkey, po, po + size - 1), p.addr);
  }
  const ips = new Set(live.map((q) => `${q.family}${ipOf(q)}`));
  assert.equal(index.size, live.length + ips.size);
  // every key of the swarm, chunks included, expires
  for (const k of await keysOf(store, infoHash)) assert.ok((await store.client.pttl(k)) > 0, `${k} has no TTL`);
}

/** A big swarm whose half is due: never returned, swept out within a bounded number of calls. */
async function expiredNeverReturned(store: RedisStore, n = 10 * SMALL_POOL): Promise<void> {
  const infoHash = randomBytes(20);
  const lifetime = 60_000;
  const t = Date.now();
  const peers = Array.from({ length: n }, (_, i) => ({ id: randomBytes(20), addr: randomBytes(6), at: i % 2 === 0 ? t : t + lifetime / 2 }));
  const announce = (p: { id: Buffer; addr: Buffer }, now: number, numWant = 50) =>
    store.announce({ infoHash, peerId: p.id, family: 4, addr: p.addr, key: undefined, seeder: false, event: 'none', numWant, withPeerIds: false, now, peerLifetimeMs: lifetime });
  await Promise.all(peers.map((p) => announce(p, p.at, 0)));
  const now = t + lifetime;
  const live = peers.filter((p) => p.at !== t);
  const expired = new Set(peers.filter((p) => p.at === t).map((p) => p.addr.toString('hex')));
  // each call passes SWEEP_SLOTS slots or drops SWEEP_DROPS; a peer moved into a hole behind
  // the cursor waits for the next pass: a bound on the calls it takes to drop all n / 2
  const bound = 2 * (Math.ceil(n / 2 / SWEEP_DROPS) + Math.ceil(n / SWEEP_SLOTS)) + 2;
  let last;
  for (let i = 0; i < bound; i++) {
    // (a window that meets peers not swept yet leaves them out: fewer than numWant then)
    last = await announce(live[i % live.length], now);
    for (let j = 0; j < last.peers.length; j += 6) assert.ok(!expired.has(last.peers.subarray(j, j + 6).toString('hex')), 'an expired peer was returned');
  }
  assert.equal(last?.incomplete, n / 2);
  assert.equal(last?.peers.length, 50 * 6);
  const [e] = await store.scrape([infoHash], now);
  assert.equal(e.incomplete, n / 2);
}

/**
 * A swarm's index (field as hex -> value): the hash x, or its shards x.<h>. A sharded index has
 * every shard, each with a field '' of its own, and x holds the field '' alone.
 */
async function indexOf(store: RedisStore, infoHash: Buffer): Promise<Map<string, string>> {
  const x = store.swarmKeys(infoHash)[4];
  const shards = (await keysOf(store, infoHash)).filter((k) => k.startsWith(`${x}.`));
  if (shards.length > 0) assert.equal(shards.length, INDEX_SHARDS, 'shards of the index missing');
  const index = new Map<string, string>();
  for (const k of [x, ...shards]) {
    // (as buffers: the fields are binary)
    const names = await store.client.hkeysBuffer(k);
    const values = names.length > 0 ? await store.client.hmget(k, ...names) : [];
    const fields = new Map(names.map((f, i) => [f.toString('hex'), String(values[i])]));
    if (shards.length > 0) {
      assert.equal(fields.get(''), '', `${k} lost its placeholder field`);
      fields.delete('');
      if (k === x) assert.equal(fields.size, 0, 'a sharded index has fields in x');
    }
    for (const [f, v] of fields) index.set(f, v);
  }
  return index;
}

/** The prime modulus of the index's shard hash (scripts.ts, XP). */
const LEGACY_XP = 33554393;

/**
 * The shard of index field f (a 20-byte peer id or a 4-byte IPv4 address) under multiplier k, as
 * the scripts took it before the mix: the polynomial hash of f's pieces mod LEGACY_XP, mod 64.
 */
function legacyShard(f: Buffer, k: number): number {
  const P = LEGACY_XP;
  let h: number;
  if (f.length === 4) {
    h = (f.readUInt16BE(0) * k + f.readUInt16BE(2)) % P;
  } else {
    h = f.readUIntBE(0, 3);
    for (let o = 3; o < 18; o += 3) h = (h * k + f.readUIntBE(o, 3)) % P;
    h = (h * k + f.readUInt16BE(18)) % P;
  }
  return ((h * k) % P) % INDEX_SHARDS;
}

/** Every key of a swarm that exists (SCAN of the masters for its prefix and hash tag). */
async function keysOf(store: RedisStore, infoHash: Buffer): Promise<string[]> {
  const client = store.client;
  const masters: Redis[] = 'nodes' in client ? client.nodes('master') : [client as Redis];
  const stem = store.swarmKeys(infoHash)[0].slice(0, -1);
  const found: string[] = [];
  for (const node of masters) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', `${stem}*`, 'COUNT', 1000);
      found.push(...keys);
      cursor = next;
    } while (cursor !== '0');
  }
  return found;
}

type Peer = { id: Buffer; addr: Buffer; family: 4 | 6; key: string | undefined };
const EVENTS = ['started', 'none', 'none', 'none', 'completed', 'stopped', 'paused'] as const;

/** A random announce of one of `peers` to one of `swarms`, at `now`. */
function randomAnnounce(rnd: () => number, swarms: Buffer[], peers: Peer[], now: number) {
  const p = peers[Math.floor(rnd() * peers.length)];
  const event = EVENTS[Math.floor(rnd() * EVENTS.length)];
  return {
    infoHash: swarms[Math.floor(rnd() * swarms.length)],
    peerId: p.id,
    family: p.family,
    addr: p.addr,
    key: p.key,
    seeder: event === 'completed' || rnd() < 0.3,
    event,
    numWant: Math.floor(rnd() * 60),
    withPeerIds: rnd() < 0.2,
    now,
    peerLifetimeMs: 60_000,
    maxPeersPerAddress: 3,
  };
}

function randomPeers(rnd: () => number, n: number): Peer[] {
  return Array.from({ length: n }, (_, i) => {
    const family = rnd() < 0.2 ? 6 : 4;
    // (a few peers share an address, so the address limit comes into play)
    const addr = Buffer.alloc(family === 4 ? 6 : 18, i % 7 === 0 ? 1 : 0);
    addr.writeUInt16BE(i, addr.length - 2);
    if (i % 7 !== 0) addr.writeUInt16BE(Math.floor(rnd() * 65536), 0);
    return { id: randomBytes(20), addr, family, key: rnd() < 0.5 ? String(i) : undefined };
  });
}

/** Moves a slot and its keys to another master (the next one), as `redis-cli --cluster reshard` does. */
async function moveSlot(client: import('ioredis').Cluster, slot: number): Promise<void> {
  const name = (n: Redis) => `${n.options.host}:${n.options.port}`;
  const masters = client.nodes('master');
  const source = masters.find((n) => name(n) === client.slots[slot][0])!;
  const target = masters[(masters.indexOf(source) + 1) % masters.length];
  const [sourceId, targetId] = (await Promise.all([source.cluster('MYID'), target.cluster('MYID')])) as string[];
  await target.cluster('SETSLOT', slot, 'IMPORTING', sourceId);
  await source.cluster('SETSLOT', slot, 'MIGRATING', targetId);
  for (;;) {
    const keys = (await source.cluster('GETKEYSINSLOT', slot, 100)) as string[];
    if (keys.length === 0) break;
    await source.migrate(String(target.options.host), String(target.options.port), '', 0, 5000, 'KEYS', ...keys);
  }
  for (const node of masters) await node.cluster('SETSLOT', slot, 'NODE', targetId);
  await client.refreshSlotsCache();
}

for (const kind of kinds) {
  describe(`redis ${kind} store, announces batched per master`, () => {
    it('answers every announce of a batch as the same announces sent one at a time, in the same order', async () => {
      // the same random numbers for both stores, drawn in the same order (one per announce)
      const draws: number[] = [];
      let next = 0;
      const sizes: number[] = [];
      let resent = 0;
      const batched = await open(kind, { random: () => draws[next++], onBatch: (n, r) => (sizes.push(n), (resent += r)) });
      let next1 = 0;
      const alone = await open(kind, { random: () => draws[next1++], batchMax: 1 });
      try {
        assert.equal(batched.batching, true);
        assert.equal(alone.batching, false);
        const rnd = prng(11);
        const swarms = Array.from({ length: 40 }, () => randomBytes(20));
        const peers = randomPeers(rnd, 150);
        let announces = 0;
        for (let round = 0; round < 30; round++) {
          const reqs = Array.from({ length: 150 }, () => randomAnnounce(rnd, swarms, peers, 1_000_000 + round * 1000));
          for (let i = 0; i < reqs.length; i++) draws.push(rnd());
          announces += reqs.length;
          // issued together: the batched store sends them as batches per master
          const [a, b] = await Promise.all([Promise.all(reqs.map((r) => batched.announce(r))), Promise.all(reqs.map((r) => alone.announce(r)))]);
          assert.deepEqual(a, b, `round ${round}`);
        }
        const both = await Promise.all([batched.scrape(swarms, 1_040_000), alone.scrape(swarms, 1_040_000)]);
        assert.deepEqual(both[0].map((e) => [e.complete, e.incomplete, e.downloaded]), both[1].map((e) => [e.complete, e.incomplete, e.downloaded]));
        assert.equal(sizes.reduce((x, y) => x + y, 0), announces, 'every announce went in a batch');
        assert.equal(resent, 0);
        // 150 at once: at most 64 a batch, batches of several announces per master
        const masters = kind === 'cluster' ? 3 : 1;
        assert.ok(Math.max(...sizes) <= 64 && sizes.length <= 30 * (masters + 2), `batch sizes ${sizes.slice(0, 20).join(',')}…`);
      } finally {
        await Promise.all([batched.close(), alone.close()]);
      }
    });

    if (kind === 'cluster') {
      it('sends an announce alone when its slot has moved since the slot map was read; the next one is batched again', async () => {
        const sizes: [number, number][] = [];
        const store = await open(kind, { onBatch: (n, r) => sizes.push([n, r]) });
        const admin = await open(kind);
        try {
          const infoHash = randomBytes(20);
          const req = (id: Buffer, now: number) => ({ infoHash, peerId: id, family: 4 as const, addr: randomBytes(6), key: undefined, seeder: false, event: 'started' as const, numWant: 10, withPeerIds: false, now, peerLifetimeMs: 60_000 });
          const first = randomBytes(20);
          await store.announce(req(first, 1000));
          assert.deepEqual(sizes, [[1, 0]]);
          // the slot moves to another master behind the store's back (its slot map is not refreshed)
          const client = admin.client as import('ioredis').Cluster;
          const [m] = admin.swarmKeys(infoHash);
          const slot = Number(await client.cluster('KEYSLOT', m));
          await moveSlot(client, slot);
          const r = await store.announce(req(randomBytes(20), 2000));
          assert.deepEqual([r.incomplete, r.peers.length], [2, 6], 'answered from the swarm on its new master');
          assert.deepEqual(sizes[1], [1, 1], 'the batch did not take it: sent again alone');
          // the alone call met MOVED, so the client read the slot map again
          await sleep(200);
          const r2 = await store.announce(req(first, 3000));
          assert.equal(r2.incomplete, 2);
          assert.deepEqual(sizes[2], [1, 0]);
          await moveSlot(client, slot);
        } finally {
          await Promise.all([store.close(), admin.close()]);
        }
      });
    }

    it('applies an announce by its deadline or never, in its master\'s clock whatever the local clock\'s offset', async () => {
      // a local clock an hour ahead: measured against each master, the offset leaves deadlines right
      let skew = 3_600_000;
      const clock = () => Date.now() + skew;
      const sizes: number[] = [];
      const keyPrefix = `t${randomBytes(4).toString('hex')}:`;
      const stores = [
        await open(kind, { keyPrefix, deadlineMs: 500, clock, onBatch: (n) => sizes.push(n) }),
        await open(kind, { keyPrefix, deadlineMs: 500, clock, batchMax: 1 }),
      ];
      const reader = await open(kind, { keyPrefix });
      try {
        for (const store of stores) {
          const swarms = Array.from({ length: 12 }, () => randomBytes(20));
          const req = (infoHash: Buffer, now: number) => ({ infoHash, peerId: randomBytes(20), family: 4 as const, addr: randomBytes(6), key: undefined, seeder: true, event: 'completed' as const, numWant: 10, withPeerIds: false, now, peerLifetimeMs: 60_000 });
          skew = 3_600_000;
          const ok = await Promise.all(swarms.map((h) => store.announce(req(h, 1000))));
          assert.deepEqual(ok.map((r) => [r.complete, r.downloaded]), swarms.map(() => [1, 1]));
          // the local clock jumps back 10 s after the offsets were measured: every call now
          // reaches Redis 9.5 s past its deadline, and must write nothing
          skew -= 10_000;
          const late = await Promise.allSettled(swarms.map((h) => store.announce(req(h, 2000))));
          for (const r of late) {
            assert.equal(r.status, 'rejected');
            assert.ok((r as PromiseRejectedResult).reason instanceof AnnounceLateError, String((r as PromiseRejectedResult).reason));
          }
          const after = await reader.scrape(swarms, 3000);
          assert.deepEqual(after.map((e) => [e.complete, e.downloaded]), swarms.map(() => [1, 1]), 'nothing of a late call was written');
          // measured again, the offsets are right: announces are applied
          await store.measureClocks();
          const again = await Promise.all(swarms.map((h) => store.announce(req(h, 4000))));
          assert.deepEqual(again.map((r) => r.complete), swarms.map(() => 2));
        }
        assert.ok(sizes.some((n) => n > 1), 'the first store sent batches');
      } finally {
        await Promise.all([...stores, reader].map((x) => x.close()));
      }
    });

    it('leaves a swarm as it was when an announce is applied twice (a batch call that failed after it ran is sent again)', async () => {
      // one store applies every announce once, the other twice in a row; a repeated call carries
      // the same bytes, so the same random number
      let r = 0;
      const once = await open(kind, { random: () => r, poolChunkSlots: 2 * SMALL_POOL });
      const twice = await open(kind, { random: () => r, poolChunkSlots: 2 * SMALL_POOL });
      try {
        const rnd = prng(12);
        const swarms = [randomBytes(20), randomBytes(20)];
        // one swarm small, one big enough for the big-pool paths and a split index
        const peers = randomPeers(rnd, 700);
        const big = swarms[1];
        for (let i = 0; i < 650; i++) {
          r = rnd();
          const req = { ...randomAnnounce(rnd, swarms, peers, 2_000_000), infoHash: big, event: 'started' as const };
          await once.announce(req);
          await twice.announce(req);
        }
        for (let step = 0; step < 1500; step++) {
          r = rnd();
          const req = randomAnnounce(rnd, swarms, peers, 2_000_000 + step * 20);
          const a = await once.announce(req);
          await twice.announce(req);
          const b = await twice.announce(req);
          const counts = (x: StoreAnnounceResult) => [x.complete, x.incomplete, x.downloaded, x.refused];
          assert.deepEqual(counts(b), counts(a), `step ${step}: ${req.event}`);
        }
        // every peer's standing: the same reply to a last re-announce in both
        for (const p of peers) {
          for (const infoHash of swarms) {
            r = 0.5;
            const req = { infoHash, peerId: p.id, family: p.family, addr: p.addr, key: p.key, seeder: false, event: 'none' as const, numWant: 0, withPeerIds: false, now: 2_031_000, peerLifetimeMs: 60_000, maxPeersPerAddress: 3 };
            const [a, b] = [await once.announce(req), await twice.announce(req)];
            assert.deepEqual([a.complete, a.incomplete, a.downloaded, a.refused], [b.complete, b.incomplete, b.downloaded, b.refused]);
          }
        }
      } finally {
        await Promise.all([once.close(), twice.close()]);
      }
    });
  });
}

for (const kind of kinds) {
  runStoreConformance(`redis ${kind}`, (o) => open(kind, o));
  runStoreConformance(
    `redis ${kind}, 5-minute swarm retention`,
    (o) => open(kind, { ...o, swarmRetentionMs: 300_000 }),
    undefined,
    { swarmRetentionMs: 300_000 },
  );

  describe(`redis ${kind} store`, () => {
    let store: RedisStore;
    before(async () => {
      store = await open(kind, { swarmRetentionMs: 600 });
    });
    after(async () => {
      await store?.close();
    });

    it('puts every key of a swarm in one slot', async () => {
      const keys = store.swarmKeys(randomBytes(20));
      assert.equal(keys.length, 7);
      assert.equal(new Set(keys.map((k) => k.slice(0, k.indexOf('}') + 1))).size, 1);
      if (kind === 'cluster') {
        const node = (store.client as import('ioredis').Cluster).nodes('master')[0];
        const slots = await Promise.all(keys.map((k) => node.cluster('KEYSLOT', k)));
        assert.equal(new Set(slots).size, 1, `slots ${slots.join(',')}`);
      }
    });

    it('lets the keys of an idle swarm expire', async () => {
      const infoHash = randomBytes(20);
      const keys = store.swarmKeys(infoHash);
      const base = { infoHash, key: undefined, numWant: 50, withPeerIds: false, peerLifetimeMs: 250 } as const;
      const now = Date.now();
      await store.announce({ ...base, peerId: randomBytes(20), family: 4, addr: randomBytes(6), seeder: true, event: 'completed', now });
      await store.announce({ ...base, peerId: randomBytes(20), family: 6, addr: randomBytes(18), seeder: false, event: 'started', now });
      const exists = () => Promise.all(keys.map((k) => store.client.exists(k)));
      // (a small swarm keeps no time bounds)
      assert.deepEqual(await exists(), [1, 1, 1, 1, 1, 1, 0]);
      await sleep(400);
      // the peers are gone, the completed count stays for the retention (600 ms)
      assert.deepEqual(await exists(), [0, 0, 0, 0, 0, 1, 0]);
      await sleep(400);
      assert.deepEqual(await exists(), [0, 0, 0, 0, 0, 0, 0]);
      const [entry] = await store.scrape([infoHash], Date.now());
      assert.deepEqual(entry, { infoHash, complete: 0, downloaded: 0, incomplete: 0 });
    });

    it('does bounded work per announce and scrape in a 20,000-peer swarm, expiry included', async () => {
      const big = await open(kind);
      try {
        const infoHash = randomBytes(20);
        const lifetime = 60_000;
        const t = Date.now();
        const peers = Array.from({ length: 20_000 }, (_, i) => ({ id: randomBytes(20), addr: randomBytes(6), at: i % 3 === 0 ? t : t + lifetime / 2 }));
        const announce = (p: { id: Buffer; addr: Buffer }, now: number, o: { seeder?: boolean; event?: 'stopped' | 'completed' | 'none'; numWant?: number } = {}) =>
          big.announce({ infoHash, peerId: p.id, family: 4, addr: p.addr, key: undefined, seeder: o.seeder ?? false, event: o.event ?? 'none', numWant: o.numWant ?? 50, withPeerIds: true, now, peerLifetimeMs: lifetime });
        for (let i = 0; i < peers.length; i += 500) {
          await Promise.all(peers.slice(i, i + 500).map((p, j) => announce(p, p.at, { seeder: (i + j) % 5 === 0, numWant: 0 })));
        }
        // a third of the peers is due: re-announces, new peers, stops, flips and scrapes
        const now = t + lifetime + 1;
        const live = peers.filter((p) => p.at !== t);
        const expired = new Set(peers.filter((p) => p.at === t).map((p) => p.addr.toString('hex')));
        const calls = await scriptCommands(big, async () => {
          for (let i = 0; i < 40; i++) {
            const r = await announce(live[i], now);
            for (let j = 0; j < r.peers.length; j += 6) assert.ok(!expired.has(r.peers.subarray(j, j + 6).toString('hex')), 'an expired peer was returned');
            await announce({ id: randomBytes(20), addr: randomBytes(6) }, now, { seeder: i % 2 === 0 });
            await announce(live[100 + i], now, { event: i % 2 === 0 ? 'stopped' : 'completed', seeder: i % 2 === 1 });
            await announce(live[200 + i], now, { seeder: (300 + i) % 5 !== 0 });
            await big.scrape([infoHash], now);
          }
        });
        assertBounded(calls, { bytes: 8192, commands: 400 });
      } finally {
        await big.close();
      }
    });

    it('never returns an expired peer of a big swarm, and sweeps it out within a bounded number of announces', () => expiredNeverReturned(store));

    it('never returns a due peer that a move or an earlier clock put into a block whose time bound was recent', async () => {
      const infoHash = randomBytes(20);
      const lifetime = 60_000;
      const t = Date.now();
      const n = 3 * SMALL_POOL;
      const mk = () => ({ id: randomBytes(20), addr: randomBytes(6) });
      const announce = (p: { id: Buffer; addr: Buffer }, now: number, numWant: number, event: 'none' | 'stopped' = 'none') =>
        store.announce({ infoHash, peerId: p.id, family: 4, addr: p.addr, key: undefined, seeder: false, event, numWant, withPeerIds: false, now, peerLifetimeMs: lifetime });
      // w keeps the pool's own bound early, so y's re-announce below takes the fast path
      const w = mk();
      const rest = Array.from({ length: n - 2 }, mk);
      const z = mk();
      const y = rest[BOUND_BLOCK + 1];
      await announce(w, t - 1, 0);
      for (const p of rest) await announce(p, t + lifetime / 2, 0);
      // z, the last slot, announced early; a stop in block 2 moves it there
      await announce(z, t, 0);
      await announce(rest[2 * BOUND_BLOCK + 1], t + lifetime / 2, 0, 'stopped');
      // y, in block 1, re-announces with an earlier clock
      await announce(y, t, 0);
      const due = new Set([w, z, y].map((p) => p.addr.toString('hex')));
      const now = t + lifetime;
      for (let i = 0; i < 4; i++) {
        const { peers } = await announce(rest[rest.length - 1 - i], now, n);
        assert.ok(peers.length > 0);
        for (let j = 0; j < peers.length; j += 6) assert.ok(!due.has(peers.subarray(j, j + 6).toString('hex')), 'a due peer was returned');
      }
    });

    it('keeps a big swarm exact through joins, stops, seeder flips, moves and the address limit', () => bigSwarmExact(store, POOL_CHUNK));

    it(`splits the index at ${INDEX_SPLIT} peers into shards no client can aim at, and merges it at ${INDEX_MERGE}`, async () => {
      const infoHash = randomBytes(20);
      const x = store.swarmKeys(infoHash)[4];
      const t = Date.now();
      const n = 2 * INDEX_SPLIT;
      // ids and addresses that differ only by multiples of 64 in their last piece: a hash that
      // took the last piece unmultiplied would put them all into one shard
      const base = randomBytes(20);
      const peers = Array.from({ length: n }, (_, i) => {
        const id = Buffer.from(base);
        id.writeUInt16BE(i * 64, 18);
        const addr = Buffer.from([10, 7, 0, 0, 0x1a, 0xe1]);
        addr.writeUInt16BE(i * 64, 2);
        return { id, addr, live: false };
      });
      let step = 0;
      const announce = (p: (typeof peers)[number], event: 'started' | 'stopped' | 'none') =>
        store.announce({ infoHash, peerId: p.id, family: 4, addr: p.addr, key: undefined, seeder: false, event, numWant: 10, withPeerIds: false, now: t + ++step, peerLifetimeMs: 600_000 });
      const shardKeys = async () => (await keysOf(store, infoHash)).filter((k) => k.startsWith(`${x}.`));
      const exact = async () => {
        const live = peers.filter((p) => p.live);
        const index = await indexOf(store, infoHash);
        assert.equal(index.size, 2 * live.length);
        for (const p of live) {
          assert.ok(index.has(p.id.toString('hex')), 'a peer is missing from the index');
          assert.equal(index.get(p.addr.subarray(0, 4).toString('hex')), '1');
        }
        for (const k of await keysOf(store, infoHash)) assert.ok((await store.client.pttl(k)) > 0, `${k} has no TTL`);
      };
      const join = async (p: (typeof peers)[number]) => {
        const r = await announce(p, 'started');
        assert.equal(r.refused, undefined);
        p.live = true;
      };
      for (const p of peers.slice(0, INDEX_SPLIT - 1)) await join(p);
      assert.deepEqual(await shardKeys(), []);
      for (const p of peers.slice(INDEX_SPLIT - 1)) await join(p);
      assert.equal((await shardKeys()).length, INDEX_SHARDS);
      await exact();
      // spread: the fullest shard holds at most three times the mean (a shard's '' field aside); a
      // uniform hash passes that with a probability below 64 P(Binomial(2048, 1/64) >= 97) < 1e-18
      const sizes = await Promise.all((await shardKeys()).map((k) => store.client.hlen(k)));
      assert.ok(Math.max(...sizes) - 1 <= (3 * 2 * n) / INDEX_SHARDS, `a shard of ${Math.max(...sizes)} fields`);
      // every peer is known: a re-announce adds nobody
      for (const p of peers) assert.equal((await announce(p, 'none')).incomplete, n);
      // down to INDEX_MERGE peers: one hash again
      for (const p of peers.slice(INDEX_MERGE)) {
        await announce(p, 'stopped');
        p.live = false;
      }
      assert.deepEqual(await shardKeys(), []);
      await exact();
      // and split again (another multiplier) as the swarm grows back
      for (const p of peers.slice(INDEX_MERGE)) await join(p);
      assert.equal((await shardKeys()).length, INDEX_SHARDS);
      await exact();
      for (const p of peers) assert.equal((await announce(p, 'none')).incomplete, n);
    });

    it('still finds the peers of an index split before the mixed shard hash (a seed below 2^31), until it merges', async () => {
      const infoHash = randomBytes(20);
      const [m, , , , x] = store.swarmKeys(infoHash);
      const t = Date.now();
      const n = INDEX_SPLIT + 8;
      const peers = Array.from({ length: n }, () => ({ id: randomBytes(20), addr: randomBytes(6) }));
      const announce = (p: (typeof peers)[number], event: 'started' | 'stopped' | 'none', now: number) =>
        store.announce({ infoHash, peerId: p.id, family: 4, addr: p.addr, key: undefined, seeder: false, event, numWant: 10, withPeerIds: false, now, peerLifetimeMs: 600_000 });
      for (const p of peers) await announce(p, 'started', t);
      // the header's last field is the index's seed: 2^31 + the multiplier since the mix
      const seed = (await store.client.getrangeBuffer(m, HEADER_BYTES - 4, HEADER_BYTES - 1)).readUInt32BE(0);
      assert.ok(seed > 2 ** 31 && seed < 2 ** 31 + LEGACY_XP, `seed ${seed}`);
      // the index as the scripts before the mix left it: the seed the bare multiplier, every field
      // in shard h mod 64
      const k = seed - 2 ** 31;
      const shards = Array.from({ length: INDEX_SHARDS }, (_, h) => `${x}.${h}`);
      const fields: Buffer[][] = shards.map(() => [Buffer.alloc(0), Buffer.alloc(0)]);
      for (const key of shards) {
        // (as buffers: the fields are binary)
        const names = (await store.client.hkeysBuffer(key)).filter((f) => f.length > 0);
        const values = names.length > 0 ? await store.client.hmgetBuffer(key, ...names) : [];
        names.forEach((f, i) => fields[legacyShard(f, k)].push(f, values[i]!));
      }
      const ttl = await store.client.pttl(x);
      for (const [h, key] of shards.entries()) {
        await store.client.del(key);
        await store.client.hset(key, ...fields[h]);
        await store.client.pexpire(key, ttl);
      }
      const legacy = Buffer.alloc(4);
      legacy.writeUInt32BE(k);
      await store.client.setrange(m, HEADER_BYTES - 4, legacy);
      const exact = async (live: number) => {
        const index = await indexOf(store, infoHash);
        assert.equal(index.size, 2 * live);
        for (const p of peers.slice(0, live)) assert.ok(index.has(p.id.toString('hex')), 'a peer is missing from the index');
      };
      await exact(n);
      // every peer is found (a re-announce adds nobody), and the index merges as before
      for (const p of peers) assert.equal((await announce(p, 'none', t + 1)).incomplete, n);
      await exact(n);
      for (const p of peers.slice(INDEX_MERGE)) await announce(p, 'stopped', t + 2);
      assert.deepEqual((await keysOf(store, infoHash)).filter((key) => key.startsWith(`${x}.`)), []);
      await exact(INDEX_MERGE);
    });

    it('keeps fixed-width records and an index, and the purge rebuilds them to size', async () => {
      const infoHash = randomBytes(20);
      const [m, r4, p6, r6, x] = store.swarmKeys(infoHash);
      const lifetime = 60_000;
      const t = Date.now();
      const announce = (peerId: Buffer, family: 4 | 6, addr: Buffer, now: number, numWant = 0) =>
        store.announce({ infoHash, peerId, family, addr, key: undefined, seeder: false, event: 'none', numWant, withPeerIds: true, now, peerLifetimeMs: lifetime });
      const v4 = Array.from({ length: 40 }, () => ({ id: randomBytes(20), addr: randomBytes(6) }));
      const v6 = Array.from({ length: 9 }, () => ({ id: randomBytes(20), addr: randomBytes(18) }));
      for (const [i, p] of v4.entries()) await announce(p.id, 4, p.addr, i < 4 ? t : t + 1000);
      for (const p of v6) await announce(p.id, 6, p.addr, t + 1000);
      // 80-byte header + 6 bytes an address; 38-byte records; one index entry per peer and one
      // count per address
      const lengths = async () =>
        [await store.client.strlen(m), await store.client.strlen(r4), await store.client.strlen(p6), await store.client.strlen(r6), await store.client.hlen(x)];
      assert.deepEqual(await lengths(), [HEADER_BYTES + 40 * 6, 40 * 38, 9 * 18, 9 * 38, 2 * 49]);
      // every peer is still there, ids in the order of the addresses
      const r = await announce(v4[0].id, 4, v4[0].addr, t + 2000, 100);
      assert.equal(r.incomplete, 49);
      assert.equal(r.peers.length, 39 * 6);
      const byAddr = new Map(v4.map((p) => [p.addr.toString('hex'), p.id.toString('hex')]));
      for (let j = 0; j < 39; j++) {
        assert.equal(byAddr.get(r.peers.subarray(j * 6, j * 6 + 6).toString('hex')), r.peerIds!.subarray(j * 20, j * 20 + 20).toString('hex'));
      }
      // the first four (but v4[0], which re-announced) expire: the strings are rebuilt to size
      let [e] = await store.scrape([infoHash], t + lifetime);
      assert.equal(e.incomplete, 37 + 9);
      assert.deepEqual(await lengths(), [HEADER_BYTES + 37 * 6, 37 * 38, 9 * 18, 9 * 38, 2 * 46]);
      // all but v4[0] expire
      [e] = await store.scrape([infoHash], t + 1000 + lifetime);
      assert.deepEqual([e.complete, e.incomplete], [0, 1]);
      assert.deepEqual(await lengths(), [HEADER_BYTES + 6, 38, 0, 0, 2]);
      const again = await announce(v4[0].id, 4, v4[0].addr, t + 1000 + lifetime, 10);
      assert.deepEqual([again.incomplete, again.peers.length], [1, 0]);
      // the last peer expires: nothing is left (no completed count)
      [e] = await store.scrape([infoHash], t + 1000 + 2 * lifetime);
      assert.deepEqual([e.complete, e.incomplete, e.downloaded], [0, 0, 0]);
      assert.equal(await store.client.exists(...store.swarmKeys(infoHash)), 0);
    });
  });

  describe(`redis ${kind} store, pools in chunks of ${2 * SMALL_POOL} slots`, () => {
    const chunk = 2 * SMALL_POOL;
    let store: RedisStore;
    before(async () => {
      store = await open(kind, { poolChunkSlots: chunk });
    });
    after(async () => {
      await store?.close();
    });

    it('keeps a big swarm exact while its pools grow and shrink across chunk edges', () => bigSwarmExact(store, chunk, true));

    it('never returns an expired peer of a swarm of several chunks, and sweeps it out', () => expiredNeverReturned(store, 5 * chunk));

    it('lets every key of an idle swarm of several chunks expire', async () => {
      const infoHash = randomBytes(20);
      const now = Date.now();
      const base = { infoHash, key: undefined, numWant: 0, withPeerIds: false, peerLifetimeMs: 250, seeder: false, event: 'started' } as const;
      await Promise.all(Array.from({ length: 3 * chunk }, () => store.announce({ ...base, peerId: randomBytes(20), family: 4, addr: randomBytes(6), now })));
      await Promise.all(Array.from({ length: chunk + 1 }, () => store.announce({ ...base, peerId: randomBytes(20), family: 6, addr: randomBytes(18), now })));
      const [m, r4, p6, r6] = store.swarmKeys(infoHash);
      const chunks = [`${m}.1`, `${m}.2`, `${r4}.1`, `${r4}.2`, `${p6}.1`, `${r6}.1`];
      assert.deepEqual((await keysOf(store, infoHash)).filter((k) => /\.\d+$/.test(k) && !/:x\.\d+$/.test(k)).sort(), chunks.sort());
      await sleep(500);
      assert.deepEqual(await keysOf(store, infoHash), []);
    });

    if (kind === 'cluster') {
      it('answers TRYAGAIN and writes nothing while the slot of a chunked swarm moves, on either node; whole afterwards', async () => {
        // few, fast retries: each call below must fail while the slot is split
        const mover = await open('cluster', { poolChunkSlots: chunk, clusterOptions: { maxRedirections: 2, retryDelayOnTryAgain: 5 } });
        const client = mover.client as import('ioredis').Cluster;
        try {
          const infoHash = randomBytes(20);
          const keys = mover.swarmKeys(infoHash);
          const [m, r4] = keys;
          const t = Date.now();
          const mk = (family: 4 | 6) => ({ id: randomBytes(20), addr: randomBytes(family === 4 ? 6 : 18), family });
          type P = ReturnType<typeof mk>;
          const announce = (p: P, event: 'started' | 'completed' | 'stopped' | 'none', now: number, seeder = false) =>
            mover.announce({ infoHash, peerId: p.id, family: p.family, addr: p.addr, key: undefined, seeder, event, numWant: 30, withPeerIds: false, now, peerLifetimeMs: 600_000 });
          const v4 = Array.from({ length: Math.round(2.5 * chunk) }, () => mk(4));
          const v6 = Array.from({ length: 10 }, () => mk(6));
          // every declared key exists (a completed count, both pools, a big pool's bounds), so that
          // the target node runs the script once the declared keys have moved
          await announce(v4[0], 'completed', t, true);
          for (const p of [...v4.slice(1), ...v6]) await announce(p, 'started', t);
          const all = (await keysOf(mover, infoHash)).sort();
          // (with more than INDEX_SPLIT peers, the index is in shards)
          const shards = Array.from({ length: INDEX_SHARDS }, (_, h) => `${keys[4]}.${h}`);
          assert.deepEqual(all, [...keys, `${m}.1`, `${m}.2`, `${r4}.1`, `${r4}.2`, ...shards].sort());
          // the nodes: the slot's master and another
          const masters = client.nodes('master');
          const slot = Number(await masters[0].cluster('KEYSLOT', m));
          const name = (n: Redis) => `${n.options.host}:${n.options.port}`;
          const source = masters.find((n) => name(n) === client.slots[slot][0])!;
          const target = masters.find((n) => n !== source)!;
          const [sourceId, targetId] = (await Promise.all([source.cluster('MYID'), target.cluster('MYID')])) as string[];
          const moveKeys = (ks: string[]) => source.migrate(String(target.options.host), String(target.options.port), '', 0, 5000, 'KEYS', ...ks);
          // a key's bytes wherever it is (the source answers ASK for a key already moved)
          const dumps = () =>
            Promise.all(
              all.map(async (k) => {
                const here = await source.dumpBuffer(k).catch(() => undefined);
                if (here !== undefined) return here;
                const res = await target.pipeline().asking().dumpBuffer(k).exec();
                return res![1][1] as Buffer;
              }),
            );
          const later = t + 1000;
          // a known peer in chunk 1 re-announcing (the fast path reads its chunk), a new peer, a
          // stop, a seeder flip, and a scrape: each must fail before it writes
          const attempts: [string, () => Promise<unknown>][] = [
            ['re-announce', () => announce(v4[chunk + 5], 'none', later)],
            ['new peer', () => announce(mk(4), 'started', later)],
            ['stop', () => announce(v4[2 * chunk + 3], 'stopped', later)],
            ['seeder flip', () => announce(v4[chunk + 9], 'completed', later, true)],
            ['scrape', () => mover.scrape([infoHash], later)],
          ];
          const refused = async (side: string) => {
            const before = await dumps();
            for (const [what, call] of attempts) {
              await assert.rejects(call(), /TRYAGAIN|Too many Cluster redirections/, `${side}: ${what}`);
            }
            assert.deepEqual(await dumps(), before, `${side}: a refused call wrote`);
          };
          await target.cluster('SETSLOT', slot, 'IMPORTING', sourceId);
          await source.cluster('SETSLOT', slot, 'MIGRATING', targetId);
          // the script runs on the source; one of the chunks it reads is on the target already
          await moveKeys([`${r4}.1`]);
          await refused('source');
          // the index's shards have moved too (the fast path reads its announcer's shard)
          await moveKeys(shards);
          await refused('source, index moved');
          // the declared keys have moved: the script runs on the target (ASK); a chunk is not there yet
          await moveKeys(keys);
          await refused('target');
          // the slot moves on: every call is answered, and nothing was lost or counted twice
          await moveKeys(all.filter((k) => !keys.includes(k) && k !== `${r4}.1` && !shards.includes(k)));
          // and any other swarm's keys in the slot (earlier tests' swarms share this cluster: a
          // slot still holding keys cannot be given away)
          for (let left = (await source.cluster('GETKEYSINSLOT', slot, 100)) as string[]; left.length > 0; left = (await source.cluster('GETKEYSINSLOT', slot, 100)) as string[]) {
            await moveKeys(left);
          }
          for (const node of masters) await node.cluster('SETSLOT', slot, 'NODE', targetId);
          for (const [, call] of attempts) await call();
          const [e] = await mover.scrape([infoHash], later);
          // v4[0] and the flipped peer seed, both completed; one new peer, one stop
          assert.deepEqual([e.complete, e.incomplete, e.downloaded], [2, v4.length + v6.length - 2, 2]);
          for (const p of [...v4, ...v6]) {
            if (p === v4[2 * chunk + 3]) continue;
            const r = await announce(p, 'none', later + 1, p === v4[0] || p === v4[chunk + 9]);
            assert.equal(r.refused, undefined);
          }
          const [e2] = await mover.scrape([infoHash], later + 1);
          assert.deepEqual([e2.complete, e2.incomplete], [2, v4.length + v6.length - 2]);
        } finally {
          await mover.close();
        }
      });
    }
  });
}
