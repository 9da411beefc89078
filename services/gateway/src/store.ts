import { MemoryStore, type StoreAnnounce, type StoreAnnounceResult, type SwarmStore } from '@peertracker/tracker';
import type { ScrapeEntry } from '@peertracker/protocol';
import { createRedisStore, type RedisStore } from '@peertracker/redis-store';
import type { GatewayConfig } from './config';
import { silentLogger, throttled, type Logger } from './log';
import { BatchTally } from './metrics';
import { StoreTimeoutError, StoreUnavailableError } from './store-errors';


/** The in-memory store with the limits of the configuration (TRACKER_MEMORY_*). */
export function openMemoryStore(config: GatewayConfig): MemoryStore {
  return new MemoryStore({
    swarmRetentionMs: config.swarmRetentionSec * 1000,
    maxPeers: config.memoryMaxPeers,
    maxSwarms: config.memoryMaxSwarms,
  });
}

/**
 * Opens the swarm store TRACKER_STORE names. The caller owns it and closes it on shutdown.
 *
 * Redis failure policy (TRACKER_REDIS_TIMEOUT_MS = T): a store call must fail within T, never hang,
 * so the gateway answers a failure reason (HTTP) or an error (UDP) at once and the client retries.
 *   - `commandTimeout: T` on every connection: a command without a reply after T is rejected;
 *   - single server: `enableOfflineQueue: false`, so commands issued while disconnected fail at
 *     once instead of queueing until a reconnect, and `maxRetriesPerRequest: 1`, so a command in
 *     flight when the connection drops is retried on one reconnect at most (both still bounded by T);
 *   - cluster: `enableOfflineQueue: false` on the Cluster (commands fail at once while the slot map
 *     is being rebuilt); the node connections keep ioredis' own offline queue (ioredis forces it),
 *     bounded by commandTimeout and `maxRetriesPerRequest: 1`; `slotsRefreshTimeout: T`;
 *   - and announce/scrape are additionally raced against a T deadline here (withDeadline), which
 *     also bounds cluster redirections/retries that span several commands.
 * Reconnection itself is ioredis' default (backoff up to 2 s, forever): the gateway recovers on
 * its own when Redis comes back.
 */
export async function openStore(config: GatewayConfig, log: Logger = silentLogger): Promise<SwarmStore & { batches?: BatchTally }> {
  if (config.store === 'memory') return openMemoryStore(config);
  const timeout = config.redisTimeoutMs;
  const target =
    config.redisUrl !== undefined
      ? { url: config.redisUrl, tls: config.redisTls }
      : config.redisClusterNodes !== undefined
        ? { clusterNodes: config.redisClusterNodes, username: config.redisUsername, password: config.redisPassword, tls: config.redisTls }
        : undefined;
  if (target === undefined) throw new Error('TRACKER_STORE=redis without REDIS_URL or REDIS_CLUSTER_NODES');
  const batches = new BatchTally();
  const store = await createRedisStore(target, {
    keyPrefix: config.redisKeyPrefix,
    batchMax: config.redisBatchMax,
    // (an announce answered as failed at its deadline is never applied after it, so the client's
    // next announce cannot be undone by a late copy; a tenth earlier, at most 100 ms, so that
    // the clock offsets' error, half a round trip, stays inside)
    deadlineMs: Math.max(1, timeout - Math.min(100, timeout / 10)),
    onBatch: (size, resent) => batches.observe(size, resent),
    swarmRetentionMs: config.swarmRetentionSec * 1000,
    redisOptions: {
      commandTimeout: timeout,
      maxRetriesPerRequest: 1,
      ...('url' in target ? { enableOfflineQueue: false } : {}),
    },
    clusterOptions: {
      enableOfflineQueue: false,
      slotsRefreshTimeout: timeout,
    },
  });
  try {
    await checkRedisSettings(store, config.redisAllowEviction, log);
  } catch (err) {
    await store.close();
    throw err;
  }
  logClientErrors(store, log);
  if (config.redisBatchMax > 1 && !store.batching) {
    log.warn('Redis refused the batch script (script flags need Redis 7.0 or later): every announce is sent alone', { batchMax: config.redisBatchMax });
  }
  return Object.assign(withDeadline(store, timeout), { batches });
}

/**
 * Refuses a Redis that may evict keys: under a maxmemory eviction policy Redis may drop any key of
 * a live swarm, so peers and completed counts vanish, and a swarm left with only some of its keys
 * is no longer consistent (a record key can come back without a TTL). Every master must have
 * maxmemory-policy noeviction, or maxmemory 0 (no limit, so nothing is evicted): then a full
 * Redis fails writes, which the gateway answers as errors. TRACKER_REDIS_ALLOW_EVICTION=true
 * turns the refusal into a warning. Where CONFIG is not allowed (managed Redis often renames or
 * denies it), the policy cannot be read: that is logged, and the gateway starts.
 * Also warns when a master frees expired keys in its main thread (lazyfree-lazy-expire no): the
 * index hash of a swarm of 1,000,000 peers that goes idle and expires then holds the master for
 * most of a second (0.75 s measured freeing a hash of 2,300,000 fields), every swarm of it waiting.
 */
export async function checkRedisSettings(store: RedisStore, allowEviction: boolean, log: Logger): Promise<void> {
  const client = store.client;
  const masters = 'nodes' in client ? client.nodes('master') : [client];
  for (const node of masters) {
    const where = `${node.options.host}:${node.options.port}`;
    let settings: Map<string, string>;
    try {
      // (one parameter per CONFIG GET: Redis before 7.0 takes no more)
      const flat = [...((await node.config('GET', 'maxmemory*')) as string[]), ...((await node.config('GET', 'lazyfree-lazy-expire')) as string[])];
      settings = new Map(flat.flatMap((v, i) => (i % 2 === 0 ? [[v, flat[i + 1]] as [string, string]] : [])));
    } catch (err) {
      log.warn('could not read the Redis eviction policy (CONFIG GET refused): make sure maxmemory-policy is noeviction', {
        node: where,
        err,
      });
      continue;
    }
    if (settings.get('lazyfree-lazy-expire') === 'no') {
      log.warn(
        `Redis ${where} has lazyfree-lazy-expire no: when a big swarm expires, freeing its keys holds that master ` +
          '(0.75 s measured freeing a hash of 2,300,000 fields, the index of about 1,150,000 peers). Set lazyfree-lazy-expire yes',
        { node: where },
      );
    }
    const policy = settings.get('maxmemory-policy');
    const maxmemory = settings.get('maxmemory');
    if (policy === 'noeviction' || maxmemory === '0') continue;
    const problem =
      `Redis ${where} has maxmemory-policy ${policy ?? '(unknown)'} with maxmemory ${maxmemory ?? '(unknown)'}: ` +
      'it may evict swarm keys, losing peers and completed counts or keeping keys without their TTL';
    if (!allowEviction) {
      throw new Error(`${problem}. Set maxmemory-policy noeviction, or TRACKER_REDIS_ALLOW_EVICTION=true to start anyway`);
    }
    log.warn(`${problem}. Starting anyway because TRACKER_REDIS_ALLOW_EVICTION=true`, { node: where, policy, maxmemory });
  }
}

function logClientErrors(store: RedisStore, log: Logger): void {
  const report = throttled(log, 'warn', 'redis client error');
  store.client.on('error', (err: unknown) => report({ err }));
}

/**
 * The store, with announce and scrape rejected with StoreTimeoutError when they take longer than
 * `ms` (the command may still complete on the server later), and with StoreUnavailableError (the
 * original as its cause) when they fail. stats, scrapeAll and close are passed
 * through: each of their commands is bounded by the client's own timeout.
 */
export function withDeadline(store: SwarmStore, ms: number): SwarmStore {
  const race = <T>(work: T | Promise<T>, what: string): T | Promise<T> => {
    if (!(work instanceof Promise)) return work;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new StoreTimeoutError(`store ${what} took longer than ${ms} ms`)), ms);
      work.then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (err: unknown) => {
          clearTimeout(timer);
          const why = err instanceof Error ? err.message : String(err);
          reject(new StoreUnavailableError(`store ${what} failed: ${why}`, { cause: err }));
        },
      );
    });
  };
  return {
    announce: (req: StoreAnnounce): StoreAnnounceResult | Promise<StoreAnnounceResult> =>
      race(store.announce(req), 'announce'),
    scrape: (infoHashes: Buffer[], now: number): Promise<ScrapeEntry[]> =>
      race(store.scrape(infoHashes, now), 'scrape') as Promise<ScrapeEntry[]>,
    scrapeAll: (now: number) => store.scrapeAll(now),
    stats: () => store.stats(),
    close: () => store.close(),
  };
}
