/*
 * The Redis store against real servers (DESIGN.md, "Real infrastructure in tests"): one server and
 * one 6-node cluster, started for this file (or taken from REDIS_URL / REDIS_CLUSTER_NODES).
 * Every store gets a random key prefix, so the suites share the servers safely.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { runStoreConformance } from '@peertracker/tracker/dist/store-conformance';
import { createRedisStore, type RedisStore, type RedisStoreOptions, type RedisTarget } from './redis-store';
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

for (const kind of kinds) {
  runStoreConformance(`redis ${kind}`, () => open(kind));
  runStoreConformance(
    `redis ${kind}, 5-minute swarm retention`,
    () => open(kind, { swarmRetentionMs: 300_000 }),
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
      assert.equal(keys.length, 8);
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
      assert.deepEqual(await exists(), [1, 1, 1, 1, 1, 1, 1, 1]);
      await sleep(400);
      // the peers are gone, the completed count stays for the retention (600 ms)
      assert.deepEqual(await exists(), [0, 0, 0, 0, 0, 0, 0, 1]);
      await sleep(400);
      assert.deepEqual(await exists(), [0, 0, 0, 0, 0, 0, 0, 0]);
      const [entry] = await store.scrape([infoHash], Date.now());
      assert.deepEqual(entry, { infoHash, complete: 0, downloaded: 0, incomplete: 0 });
    });

    it('keeps fixed-width records and an index, and the purge rebuilds them to size', async () => {
      const infoHash = randomBytes(20);
      const [m, t4, r4, p6, t6, r6, x] = store.swarmKeys(infoHash);
      const lifetime = 60_000;
      const t = Date.now();
      const announce = (peerId: Buffer, family: 4 | 6, addr: Buffer, now: number, numWant = 0) =>
        store.announce({ infoHash, peerId, family, addr, key: undefined, seeder: false, event: 'none', numWant, withPeerIds: true, now, peerLifetimeMs: lifetime });
      const v4 = Array.from({ length: 40 }, () => ({ id: randomBytes(20), addr: randomBytes(6) }));
      const v6 = Array.from({ length: 9 }, () => ({ id: randomBytes(20), addr: randomBytes(18) }));
      for (const [i, p] of v4.entries()) await announce(p.id, 4, p.addr, i < 4 ? t : t + 1000);
      for (const p of v6) await announce(p.id, 6, p.addr, t + 1000);
      // 76-byte header + 6 bytes an address; 17-byte time and 21-byte id records; one index entry
      // per peer and one count per address
      const lengths = async () =>
        [await store.client.strlen(m), await store.client.strlen(t4), await store.client.strlen(r4), await store.client.strlen(p6), await store.client.strlen(t6), await store.client.strlen(r6), await store.client.hlen(x)];
      assert.deepEqual(await lengths(), [76 + 40 * 6, 40 * 17, 40 * 21, 9 * 18, 9 * 17, 9 * 21, 2 * 49]);
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
      assert.deepEqual(await lengths(), [76 + 37 * 6, 37 * 17, 37 * 21, 9 * 18, 9 * 17, 9 * 21, 2 * 46]);
      // all but v4[0] expire
      [e] = await store.scrape([infoHash], t + 1000 + lifetime);
      assert.deepEqual([e.complete, e.incomplete], [0, 1]);
      assert.deepEqual(await lengths(), [76 + 6, 17, 21, 0, 0, 0, 2]);
      const again = await announce(v4[0].id, 4, v4[0].addr, t + 1000 + lifetime, 10);
      assert.deepEqual([again.incomplete, again.peers.length], [1, 0]);
      // the last peer expires: nothing is left (no completed count)
      [e] = await store.scrape([infoHash], t + 1000 + 2 * lifetime);
      assert.deepEqual([e.complete, e.incomplete, e.downloaded], [0, 0, 0]);
      assert.equal(await store.client.exists(...store.swarmKeys(infoHash)), 0);
    });
  });
}
