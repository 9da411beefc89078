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
      assert.deepEqual(await exists(), [1, 1, 1, 1, 1, 1, 1]);
      await sleep(400);
      // the peers are gone, the completed count stays for the retention (600 ms)
      assert.deepEqual(await exists(), [1, 0, 0, 0, 0, 0, 0]);
      await sleep(400);
      assert.deepEqual(await exists(), [0, 0, 0, 0, 0, 0, 0]);
      const [entry] = await store.scrape([infoHash], Date.now());
      assert.deepEqual(entry, { infoHash, complete: 0, downloaded: 0, incomplete: 0 });
    });
  });
}

