/*
 * The gateway refuses a Redis that may evict keys (store.ts, checkRedisSettings), against real
 * redis-server processes whose eviction settings are changed with CONFIG SET. These are local
 * servers of this suite's own (REDIS_URL / REDIS_CLUSTER_NODES are ignored: their settings are not
 * ours to change). Without redis-server the suite is skipped, except under CI=true, where it fails.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startRedisTestServer, type RedisTestServer } from '@peertracker/redis-store/dist/testing';
import { loadConfig } from './config';
import type { Logger } from './log';
import { openStore } from './store';
import { redisCli, redisServerInstalled, startGateway, stopGateway } from './testing/gateway-process';

const OWN_SERVERS: NodeJS.ProcessEnv = { ...process.env, REDIS_URL: '', REDIS_CLUSTER_NODES: '', REDIS_TEST_PROVIDER: 'local' };
const skip = process.env.CI === 'true' || redisServerInstalled() ? false : 'redis-server is not installed';

function capturingLogger(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  return {
    warnings,
    debug() {},
    info() {},
    warn: (msg) => void warnings.push(msg),
    error: (msg) => void warnings.push(msg),
  };
}

const env = (redis: Record<string, string>, extra: Record<string, string> = {}) => ({
  TRACKER_STORE: 'redis',
  TRACKER_REDIS_KEY_PREFIX: `ev${randomBytes(4).toString('hex')}:`,
  ...redis,
  ...extra,
});

const announce = (now: number) => ({
  infoHash: randomBytes(20),
  peerId: randomBytes(20),
  family: 4 as const,
  addr: randomBytes(6),
  key: undefined,
  seeder: false,
  event: 'started' as const,
  numWant: 10,
  withPeerIds: false,
  now,
  peerLifetimeMs: 60_000,
});

/**
 * Asserts that opening is refused with an error `check` accepts; a store opened by mistake is
 * closed, so that a failure does not leave connections holding the test process open.
 */
async function refused(opening: Promise<{ close(): Promise<void> }>, check: (message: string) => boolean): Promise<void> {
  const outcome = await opening.then(
    async (opened) => {
      await opened.close();
      return 'opened';
    },
    (err: Error) => err.message,
  );
  assert.ok(outcome !== 'opened', 'opened, but should have been refused');
  assert.ok(check(outcome), `refused, but with: ${outcome}`);
}

describe('the Redis eviction policy, checked when the store opens (one server)', { skip, timeout: 60_000 }, () => {
  let redis: RedisTestServer | undefined;
  let port = 0;
  const url = () => ({ REDIS_URL: redis!.url! });
  const set = (name: string, value: string) => redisCli(port, 'config', 'set', name, value);

  before(async () => {
    redis = await startRedisTestServer('single', OWN_SERVERS);
    port = redis.nodes[0].port;
  });
  after(async () => {
    await redis?.stop();
  });

  it('opens without a word on noeviction, and on any policy while maxmemory is 0 (no limit)', async () => {
    for (const policy of ['noeviction', 'allkeys-lru']) {
      await set('maxmemory-policy', policy);
      await set('maxmemory', '0');
      const log = capturingLogger();
      const store = await openStore(loadConfig(env(url())), log);
      await store.close();
      assert.deepEqual(log.warnings, [], policy);
    }
  });

  it('warns when expired keys are freed in the main thread (lazyfree-lazy-expire no)', async () => {
    await set('maxmemory', '0');
    await set('lazyfree-lazy-expire', 'no');
    try {
      const log = capturingLogger();
      const store = await openStore(loadConfig(env(url())), log);
      await store.close();
      assert.equal(log.warnings.length, 1);
      assert.match(log.warnings[0], new RegExp(`Redis 127\\.0\\.0\\.1:${port} has lazyfree-lazy-expire no.*Set lazyfree-lazy-expire yes`));
    } finally {
      await set('lazyfree-lazy-expire', 'yes');
    }
  });

  it('refuses to open under an eviction policy with a memory limit, naming the policy and the override', async () => {
    await set('maxmemory', '64mb');
    for (const policy of ['allkeys-lru', 'volatile-ttl', 'allkeys-random']) {
      await set('maxmemory-policy', policy);
      await refused(
        openStore(loadConfig(env(url())), capturingLogger()),
        (m) => m.includes(`maxmemory-policy ${policy}`) && m.includes(`127.0.0.1:${port}`) && m.includes('TRACKER_REDIS_ALLOW_EVICTION=true'),
      );
    }
  });

  it('opens with a warning under TRACKER_REDIS_ALLOW_EVICTION=true', async () => {
    await set('maxmemory', '64mb');
    await set('maxmemory-policy', 'allkeys-lru');
    const log = capturingLogger();
    const store = await openStore(loadConfig(env(url(), { TRACKER_REDIS_ALLOW_EVICTION: 'true' })), log);
    try {
      assert.equal(log.warnings.length, 1);
      assert.match(log.warnings[0], /maxmemory-policy allkeys-lru .*TRACKER_REDIS_ALLOW_EVICTION=true/);
      const r = await store.announce(announce(Date.now()));
      assert.equal(r.incomplete, 1);
    } finally {
      await store.close();
    }
  });

  it('opens with a warning when CONFIG is not allowed (as on managed Redis)', async () => {
    await set('maxmemory', '64mb');
    await set('maxmemory-policy', 'allkeys-lru');
    const password = randomBytes(8).toString('hex');
    await redisCli(port, 'acl', 'setuser', 'tracker', 'on', `>${password}`, '~*', '&*', '+@all', '-config');
    const log = capturingLogger();
    const store = await openStore(loadConfig(env({ REDIS_URL: `redis://tracker:${password}@127.0.0.1:${port}` })), log);
    try {
      assert.equal(log.warnings.length, 1);
      assert.match(log.warnings[0], /could not read the Redis eviction policy/);
      assert.equal((await store.announce(announce(Date.now()))).incomplete, 1);
    } finally {
      await store.close();
    }
  });

  it('stops the gateway process at start with the error on its output', async () => {
    await set('maxmemory', '64mb');
    await set('maxmemory-policy', 'allkeys-lfu');
    await refused(
      startGateway(env(url(), { TRACKER_HOST: '127.0.0.1' })).then((gw) => ({ close: () => stopGateway(gw) })),
      (m) => /gateway exited \(1\)/.test(m) && /maxmemory-policy allkeys-lfu/.test(m),
    );
    await set('maxmemory-policy', 'noeviction');
    const gw = await startGateway(env(url(), { TRACKER_HOST: '127.0.0.1' }));
    await stopGateway(gw);
  });
});

describe('the Redis eviction policy, checked on every master of a cluster', { skip, timeout: 90_000 }, () => {
  let redis: RedisTestServer | undefined;

  before(async () => {
    redis = await startRedisTestServer('cluster', OWN_SERVERS);
  });
  after(async () => {
    await redis?.stop();
  });

  it('refuses to open when one master may evict, naming it', async () => {
    const nodes = { REDIS_CLUSTER_NODES: redis!.nodes.map((n) => `${n.host}:${n.port}`).join(',') };
    let store = await openStore(loadConfig(env(nodes)), capturingLogger());
    await store.close();
    const masters = [];
    for (const n of redis!.nodes) {
      if (/role:master/.test(await redisCli(n.port, 'info', 'replication'))) masters.push(n.port);
    }
    assert.equal(masters.length, 3);
    const victim = masters[1];
    await redisCli(victim, 'config', 'set', 'maxmemory', '64mb');
    await redisCli(victim, 'config', 'set', 'maxmemory-policy', 'volatile-lru');
    await refused(openStore(loadConfig(env(nodes)), capturingLogger()), (m) =>
      m.includes(`127.0.0.1:${victim} has maxmemory-policy volatile-lru`),
    );
    const log = capturingLogger();
    store = await openStore(loadConfig(env(nodes, { TRACKER_REDIS_ALLOW_EVICTION: 'true' })), log);
    await store.close();
    assert.equal(log.warnings.length, 1);
    assert.match(log.warnings[0], new RegExp(`127\\.0\\.0\\.1:${victim} has maxmemory-policy volatile-lru`));
  });
});
