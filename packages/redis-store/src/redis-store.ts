import calculateSlot from 'cluster-key-slot';
import { createHash } from 'node:crypto';
import type { ConnectionOptions } from 'node:tls';
import { Cluster, Command, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { connectRedis } from '@peertracker/events';
import type { ScrapeEntry } from '@peertracker/protocol';
import {
  DEFAULT_SWARM_RETENTION_MS,
  type StoreAnnounce,
  type StoreAnnounceResult,
  type SwarmStore,
} from '@peertracker/tracker';
import { ANNOUNCE_ARG_BYTES, ANNOUNCE_BATCH_LUA, ANNOUNCE_LUA, BATCH_ITEM_HEAD, EVENT_CODES, HEADER_BYTES, POOL_CHUNK, REFUSAL_CODES, SCRAPE_LUA, withPoolChunk } from './scripts';

/*
 * The Redis swarm store, on one server or a Redis Cluster (DESIGN.md invariant 4). Every key of
 * a swarm is `<keyPrefix>{<info_hash hex>}:<name>`, so the Lua scripts (scripts.ts) can touch
 * them all. Announces are batched per master (ANNOUNCE_BATCH_LUA): those issued before the event
 * loop's current pass over I/O ends, up to batchMax, go to the master serving their swarms as one
 * EVALSHA on that node's own connection; an announce the batch cannot take (its slot moved, or
 * the call failed) is sent alone through the client, one EVALSHA, as is every announce when
 * batching is off. A scrape is one EVALSHA per hash; commands issued in the same tick go out as
 * one pipeline per node (ioredis auto-pipelining, forced on: in cluster mode it groups them by the
 * node serving their slot).
 */

/**
 * One server (its URL carries any credentials and `rediss:` for TLS), or a Redis Cluster's seed
 * nodes with the credentials (AUTH, or an ACL user) that every node shares. `tls`: connect with
 * these TLS options (CA, client certificate, server name); for a URL they complete `rediss:`.
 */
export type RedisTarget =
  | { url: string; tls?: ConnectionOptions }
  | { clusterNodes: { host: string; port: number }[]; username?: string; password?: string; tls?: ConnectionOptions };

export interface RedisStoreOptions {
  /** Put before every key; must not contain '{' or '}'. Default 'pt:'. */
  keyPrefix?: string;
  /** As for the memory store; default DEFAULT_SWARM_RETENTION_MS (24 h). */
  swarmRetentionMs?: number;
  /** Uniform in [0, 1); picks the selection windows. Default Math.random. */
  random?: () => number;
  /** Passed to ioredis (for a cluster: as redisOptions of every node). */
  redisOptions?: RedisOptions;
  /** Passed to ioredis Cluster (cluster only); scaleReads is always 'master'. */
  clusterOptions?: ClusterOptions;
  /**
   * Slots per chunk key of a pool's strings (scripts.ts, POOL_CHUNK); for tests, which need chunk
   * edges within a few hundred peers. Every store on one Redis must use the same value.
   */
  poolChunkSlots?: number;
  /**
   * Announces sent to one master in one script call, at most (default BATCH_MAX); 1 sends each
   * alone. A batch leaves when it is full or when the event loop's current pass over I/O ends,
   * whichever comes first: it never waits for more announces to come.
   */
  batchMax?: number;
  /** Called when a batch call ends: the announces it carried, and how many were sent again alone. */
  onBatch?: (size: number, resent: number) => void;
  /**
   * An announce is applied within this many ms of the call, or never: each call carries its
   * deadline in its master's clock (offsets measured with TIME, every CLOCK_EVERY_MS), and the
   * scripts refuse a call that reaches Redis later, writing nothing (it rejects with
   * AnnounceLateError). The caller answers an announce as failed at its deadline, and the
   * client announces again: without this a copy still on its way (a batch sent again alone
   * while a failover ends, a command ioredis retries) could be applied after the client's next
   * announce, undoing it (reshard.int.test.ts found a completion lost so). Undefined: no
   * deadline.
   */
  deadlineMs?: number;
  /** the local clock of the deadlines (tests: a skewed clock); default Date.now */
  clock?: () => number;
}

/** How often the masters' clock offsets are measured again. */
const CLOCK_EVERY_MS = 30_000;

/** An announce that reached Redis after its deadline (RedisStoreOptions.deadlineMs): nothing was written. */
export class AnnounceLateError extends Error {
  override readonly name = 'AnnounceLateError';
  constructor() {
    super('the announce reached Redis after its deadline and was not applied');
  }
}

/** the scripts' reply to a call past its deadline */
const LATE = 'LATE';

/** the default batchMax */
export const BATCH_MAX = 64;

type Client = Redis | Cluster;
interface Scripted {
  ptAnnounceBuffer(...args: (string | Buffer | number)[]): Promise<Buffer>;
  ptBatchBuffer(prefix: string, items: Buffer, ...deadline: string[]): Promise<Buffer[] | Buffer | string>;
  ptScrape(...args: (string | Buffer | number)[]): Promise<[number, number, number]>;
}

const EMPTY = Buffer.alloc(0);
/** the names of a swarm's keys after `<prefix>{<hex>}:`, in the scripts' KEYS order */
const KEY_NAMES = ['m', 'r4', 'p6', 'r6', 'x', 'c', 'b'] as const;
const KEY_NAME_BYTES = KEY_NAMES.reduce((n, k) => n + k.length, 0);
const HEX = Buffer.from('0123456789abcdef');
/** keys sampled per master by stats() */
const STATS_SAMPLE = 32;
/** the most bytes of one batch item: head, argument, an IPv6 address */
const ITEM_MAX_BYTES = BATCH_ITEM_HEAD + ANNOUNCE_ARG_BYTES + 18;
/**
 * Items a new batch has room for; it doubles when full. Batches under the benchmark's load
 * average 8 announces: room for all 64 at once was a 9.5 kB buffer per batch, outside Buffer's
 * pool, about 1.1 kB of garbage per announce. Measured (cluster bench, 200,000 peers, three
 * alternated pairs): 17.2 µs of gateway CPU per announce against 17.7, a small gain, near the noise.
 */
const BATCH_START = 8;

/** announces on their way to one master in one call */
interface Batch {
  node: Redis;
  /** the items (BATCH_ITEM_HEAD, then the announce's argument), one after another */
  buf: Buffer;
  len: number;
  items: BatchItem[];
  /** the local time of its first announce's deadline (the earliest), or undefined */
  deadline: number | undefined;
}

interface BatchItem {
  /** where the item starts in its batch's buf */
  at: number;
  infoHash: Buffer;
  size: number;
  withPeerIds: boolean;
  resolve: (r: StoreAnnounceResult) => void;
  reject: (e: unknown) => void;
}

/** Connects and returns the store (the client is ready: cluster slots are known). */
export async function createRedisStore(target: RedisTarget, options: RedisStoreOptions = {}): Promise<RedisStore> {
  const redisOptions: RedisOptions = { ...options.redisOptions, lazyConnect: true, enableAutoPipelining: true };
  const client: Client =
    'url' in target
      ? new Redis(target.url, target.tls !== undefined ? { ...redisOptions, tls: target.tls } : redisOptions)
      : new Cluster(target.clusterNodes, {
          ...options.clusterOptions,
          scaleReads: 'master',
          enableAutoPipelining: true,
          lazyConnect: true,
          redisOptions: { ...options.redisOptions, username: target.username, password: target.password, ...(target.tls !== undefined ? { tls: target.tls } : {}) },
        });
  await connectRedis(client, 'clusterNodes' in target ? target.clusterNodes[0] : undefined, target.tls);
  const store = new RedisStore(client, options);
  try {
    await store.checkBatching();
    await store.measureClocks();
  } catch (e) {
    await store.close();
    throw e;
  }
  return store;
}


export class RedisStore implements SwarmStore {
  readonly client: Client;
  private readonly prefix: string;
  /** the prefix and '{' as bytes, the start of every key */
  private readonly keyHead: Buffer;
  private readonly retentionMs: number;
  private readonly random: () => number;
  private readonly batchMax: number;
  private readonly batchLua: string;
  private readonly announceLua: string;
  private readonly announceSha: string;
  private readonly onBatch?: (size: number, resent: number) => void;
  /** false when the masters refuse the batch script (before Redis 7.0: no script flags) */
  private batchable: boolean;
  private readonly pending = new Map<Redis, Batch>();
  private flushScheduled = false;
  /** cluster: each master's own connection by the "host:port" of the slot map */
  private masterByKey = new Map<string, Redis>();
  private readonly deadlineMs: number | undefined;
  private readonly clock: () => number;
  /** each master's clock minus the local clock, ms, by "host:port" (single server: '') */
  private clockOffsets = new Map<string, number>();
  /** the largest of them: for a master not measured yet (the deadline then errs late, by the masters' skew) */
  private maxClockOffset = 0;
  private clockTimer: NodeJS.Timeout | undefined;
  private clocksMeasuredAt = 0;

  constructor(client: Client, options: RedisStoreOptions = {}) {
    this.client = client;
    this.prefix = options.keyPrefix ?? 'pt:';
    if (/[{}]/.test(this.prefix)) throw new RangeError('RedisStore: keyPrefix must not contain { or }');
    this.keyHead = Buffer.from(`${this.prefix}{`);
    const retention = options.swarmRetentionMs ?? DEFAULT_SWARM_RETENTION_MS;
    if (!(retention >= 0 && retention < Infinity)) {
      throw new RangeError(`RedisStore: swarmRetentionMs must be a finite number >= 0, got ${String(retention)}`);
    }
    this.retentionMs = retention;
    this.random = options.random ?? Math.random;
    const chunk = options.poolChunkSlots ?? POOL_CHUNK;
    this.announceLua = withPoolChunk(ANNOUNCE_LUA, chunk);
    this.announceSha = createHash('sha1').update(this.announceLua).digest('hex');
    client.defineCommand('ptAnnounce', { numberOfKeys: KEY_NAMES.length, lua: this.announceLua });
    client.defineCommand('ptScrape', { numberOfKeys: KEY_NAMES.length, lua: withPoolChunk(SCRAPE_LUA, chunk) });
    const batchMax = options.batchMax ?? BATCH_MAX;
    if (!(Number.isInteger(batchMax) && batchMax >= 1 && batchMax <= 1024)) {
      throw new RangeError(`RedisStore: batchMax must be a whole number from 1 to 1024, got ${String(batchMax)}`);
    }
    this.batchMax = batchMax;
    this.batchable = batchMax > 1;
    this.batchLua = withPoolChunk(ANNOUNCE_BATCH_LUA, chunk);
    this.onBatch = options.onBatch;
    if (options.deadlineMs !== undefined && !(options.deadlineMs > 0 && Number.isFinite(options.deadlineMs))) {
      throw new RangeError(`RedisStore: deadlineMs must be a finite number > 0, got ${String(options.deadlineMs)}`);
    }
    this.deadlineMs = options.deadlineMs;
    this.clock = options.clock ?? Date.now;
    if (client instanceof Cluster) {
      // a master added, removed or replaced: its connection is looked up again
      const forget = () => this.masterByKey.clear();
      client.on('+node', forget);
      client.on('-node', forget);
    }
  }

  /** Whether announces are batched: batchMax > 1 and every master took the batch script. */
  get batching(): boolean {
    return this.batchable;
  }

  /**
   * Loads the batch script on every master; when one refuses it (Redis before 7.0 knows no
   * script flags), announces are sent alone, as before batching.
   */
  async checkBatching(): Promise<void> {
    if (!this.batchable) return;
    for (const node of this.masters()) {
      try {
        await node.script('LOAD', this.batchLua);
      } catch {
        this.batchable = false;
        return;
      }
    }
  }

  /**
   * Measures each master's clock against the local one (TIME; the error is half a round trip),
   * now and every CLOCK_EVERY_MS; with no deadlineMs, nothing. A master that fails to answer
   * keeps its last offset.
   */
  async measureClocks(): Promise<void> {
    if (this.deadlineMs === undefined) return;
    this.clocksMeasuredAt = this.clock();
    const measured = await Promise.allSettled(
      this.masters().map(async (node) => {
        const before = this.clock();
        const [s, us] = await node.time();
        const after = this.clock();
        return [this.nodeKey(node), Number(s) * 1000 + Number(us) / 1000 - (before + after) / 2] as const;
      }),
    );
    const offsets = new Map(this.clockOffsets);
    for (const m of measured) if (m.status === 'fulfilled') offsets.set(m.value[0], m.value[1]);
    this.clockOffsets = offsets;
    // (none measured yet, every master down: no offset until one answers)
    this.maxClockOffset = offsets.size > 0 ? Math.max(...offsets.values()) : 0;
    if (this.clockTimer === undefined) {
      this.clockTimer = setInterval(() => void this.measureClocks().catch(() => {}), CLOCK_EVERY_MS);
      this.clockTimer.unref();
    }
  }

  private nodeKey(node: Redis): string {
    return this.client instanceof Cluster ? `${node.options.host}:${node.options.port}` : '';
  }

  /**
   * A deadline in the clock of the master at `key` ('' single server; undefined: the swarm's
   * master, from the slot map, for a call ioredis routes), as the scripts take it; [] without one.
   */
  private deadlineArg(localDeadline: number | undefined, key: string | undefined, infoHash?: Buffer): string[] {
    if (localDeadline === undefined) return [];
    if (key === undefined) {
      const client = this.client;
      if (client instanceof Cluster) {
        writeHex(HEX_SCRATCH, 0, infoHash!);
        key = client.slots[calculateSlot(HEX_SCRATCH)]?.[0] ?? '?';
      } else key = '';
    }
    let offset = this.clockOffsets.get(key);
    if (offset === undefined) {
      offset = this.maxClockOffset;
      // a master not measured yet (a replica just promoted): measured soon
      if (this.clock() - this.clocksMeasuredAt > 1000) void this.measureClocks().catch(() => {});
    }
    return [String(Math.floor(localDeadline + offset))];
  }

  /**
   * The seven keys of a swarm (see scripts.ts), all in the slot of `{<hex>}`: m (swarm header and
   * IPv4 addresses), r4 (IPv4 peer records), p6 and r6 (the IPv6 pool), x (peer id -> slot,
   * address -> peers), c (completed count), b (a big pool's time bounds per block of slots).
   */
  swarmKeys(infoHash: Buffer): string[] {
    return this.keyBuffers(infoHash).map((k) => k.toString());
  }

  /**
   * swarmKeys as bytes, all six in one allocation, as the scripts are called with them: ioredis
   * computes a key's cluster slot from its UTF-8 bytes, and for a string it first builds an array
   * of them, several times per command (Pipeline.exec checks every key); with Buffers it reads
   * the bytes. That was ≈ 5 % of the gateway's CPU in cluster mode, with the garbage it left.
   */
  private keyBuffers(infoHash: Buffer): Buffer[] {
    const head = this.keyHead;
    const stem = head.length + 40 + 2; // <prefix>{<hex>}:
    const buf = Buffer.allocUnsafe(KEY_NAMES.length * stem + KEY_NAME_BYTES);
    head.copy(buf, 0);
    writeHex(buf, head.length, infoHash);
    buf[stem - 2] = 0x7d; // }
    buf[stem - 1] = 0x3a; // :
    const keys: Buffer[] = [];
    let at = 0;
    for (const name of KEY_NAMES) {
      if (at > 0) buf.copy(buf, at, 0, stem);
      const end = at + stem + buf.write(name, at + stem, 'latin1');
      keys.push(buf.subarray(at, end));
      at = end;
    }
    return keys;
  }

  announce(req: StoreAnnounce): Promise<StoreAnnounceResult> {
    const size = req.family === 4 ? 6 : 18;
    if (req.addr.length !== size || req.infoHash.length !== 20 || req.peerId.length !== 20) {
      return Promise.reject(new TypeError('announce: info_hash and peer_id must be 20 bytes, addr 6 (IPv4) or 18 (IPv6)'));
    }
    if (!(req.peerLifetimeMs > 0 && Number.isFinite(req.peerLifetimeMs))) {
      return Promise.reject(new RangeError('announce: peerLifetimeMs must be a finite number > 0'));
    }
    const deadline = this.deadlineMs === undefined ? undefined : this.clock() + this.deadlineMs;
    // (the hex digits once: for the slot, then copied into the batch)
    if (this.batchable) writeHex(HEX_SCRATCH, 0, req.infoHash);
    const node = this.batchable ? this.masterOf() : undefined;
    if (node === undefined) {
      const arg = Buffer.allocUnsafe(ANNOUNCE_ARG_BYTES + size);
      this.writeArg(arg, 0, req, size);
      return this.announceAlone(req.infoHash, arg, size, req.withPeerIds, deadline);
    }
    let batch = this.pending.get(node);
    if (batch === undefined) {
      batch = { node, buf: Buffer.allocUnsafe(Math.min(this.batchMax, BATCH_START) * ITEM_MAX_BYTES), len: 0, items: [], deadline };
      this.pending.set(node, batch);
    } else if (batch.len + ITEM_MAX_BYTES > batch.buf.length) {
      const grown = Buffer.allocUnsafe(Math.min(2 * batch.buf.length, this.batchMax * ITEM_MAX_BYTES));
      batch.buf.copy(grown, 0, 0, batch.len);
      batch.buf = grown;
    }
    const at = batch.len;
    const buf = batch.buf;
    HEX_SCRATCH.copy(buf, at);
    buf[at + 40] = ANNOUNCE_ARG_BYTES + size;
    this.writeArg(buf, at + BATCH_ITEM_HEAD, req, size);
    batch.len = at + BATCH_ITEM_HEAD + ANNOUNCE_ARG_BYTES + size;
    return new Promise<StoreAnnounceResult>((resolve, reject) => {
      batch.items.push({ at, infoHash: req.infoHash, size, withPeerIds: req.withPeerIds, resolve, reject });
      if (batch.items.length >= this.batchMax) {
        this.pending.delete(node);
        this.send(batch);
      } else if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(this.flush);
      }
    });
  }

  /** the announce's argument, written at `at` (layout: scripts.ts, ANNOUNCE_LUA) */
  private writeArg(arg: Buffer, at: number, req: StoreAnnounce, size: number): void {
    // the key record, time, scalars, peer id and address in one argument
    writeKeyRecord(arg, at, req.key);
    arg.writeDoubleBE(req.now, at + 9);
    arg.writeDoubleBE(this.retentionMs, at + 17);
    arg.writeDoubleBE(req.peerLifetimeMs, at + 25);
    arg.writeDoubleBE(this.random(), at + 33);
    arg.writeDoubleBE(Math.max(0, Math.floor(req.numWant)), at + 41);
    arg[at + 49] = req.family;
    arg[at + 50] = req.seeder ? 1 : 0;
    arg[at + 51] = EVENT_CODES[req.event] ?? 0;
    arg[at + 52] = req.withPeerIds ? 1 : 0;
    arg.writeDoubleBE(limit(req.maxPeersPerSwarm), at + 53);
    arg.writeDoubleBE(limit(req.maxPeersPerAddress), at + 61);
    req.peerId.copy(arg, at + 69);
    req.addr.copy(arg, at + ANNOUNCE_ARG_BYTES, 0, size);
  }

  /** One announce, one EVALSHA through the client (which follows MOVED, ASK and TRYAGAIN). */
  private async announceAlone(infoHash: Buffer, arg: Buffer, size: number, withPeerIds: boolean, deadline: number | undefined): Promise<StoreAnnounceResult> {
    const reply = await (this.client as unknown as Scripted).ptAnnounceBuffer(...this.keyBuffers(infoHash), arg, ...this.deadlineArg(deadline, undefined, infoHash));
    return parseAnnounceReply(reply, size, withPeerIds);
  }

  /**
   * An announce a batch did not take, sent again alone: as one command, not through ioredis'
   * auto-pipelining. Its slot is moving or has moved, and an auto-pipelined call then fails where
   * a single command is redirected: a pipeline whose keys' slots changed owner while it was
   * queued is refused whole ("All keys in the pipeline should belong to the same slots allocation
   * group"), and MOVED and TRYAGAIN inside one come back as errors (seen under
   * `redis-cli --cluster reshard`, reshard.int.test.ts). A node that has not loaded the script
   * (a replica just promoted) gets it with EVAL.
   */
  private async announceResent(infoHash: Buffer, arg: Buffer, size: number, withPeerIds: boolean, deadline: number | undefined): Promise<StoreAnnounceResult> {
    if (deadline !== undefined && this.clock() > deadline) throw new AnnounceLateError();
    const keys = this.keyBuffers(infoHash);
    const late = this.deadlineArg(deadline, undefined, infoHash);
    const send = (name: 'evalsha' | 'eval', script: string) =>
      this.client.sendCommand(new Command(name, [script, KEY_NAMES.length, ...keys, arg, ...late], { replyEncoding: null })) as Promise<Buffer>;
    let reply: Buffer;
    try {
      reply = await send('evalsha', this.announceSha);
    } catch (e) {
      if (!(e instanceof Error && e.message.startsWith('NOSCRIPT'))) throw e;
      reply = await send('eval', this.announceLua);
    }
    return parseAnnounceReply(reply, size, withPeerIds);
  }

  /**
   * The connection of the master serving the slot of the swarm whose hex digits are in
   * HEX_SCRATCH (single server: the client).
   */
  private masterOf(): Redis | undefined {
    const client = this.client;
    if (!(client instanceof Cluster)) return client;
    const key = client.slots[calculateSlot(HEX_SCRATCH)]?.[0];
    if (key === undefined) return undefined;
    let node = this.masterByKey.get(key);
    if (node === undefined) {
      this.masterByKey = new Map(client.nodes('master').map((n) => [`${n.options.host}:${n.options.port}`, n]));
      node = this.masterByKey.get(key);
    }
    return node;
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    const batches = [...this.pending.values()];
    this.pending.clear();
    for (const batch of batches) this.send(batch);
  };

  /**
   * One call for the batch. An item the node does not serve now, and every item of a call that
   * failed, is sent alone (announceResent): an announce applied twice leaves the swarm as applying it once did
   * (scripts.ts; tested), so an item the failed call may have applied can be sent again.
   */
  private send(batch: Batch): void {
    const { node, items } = batch;
    if (!('ptBatchBuffer' in node)) node.defineCommand('ptBatch', { numberOfKeys: 0, lua: this.batchLua });
    const arg = (item: BatchItem) => batch.buf.subarray(item.at + BATCH_ITEM_HEAD, item.at + BATCH_ITEM_HEAD + batch.buf[item.at + 40]);
    const alone = (item: BatchItem) => this.announceResent(item.infoHash, arg(item), item.size, item.withPeerIds, batch.deadline).then(item.resolve, item.reject);
    (node as unknown as Scripted).ptBatchBuffer(this.prefix, batch.buf.subarray(0, batch.len), ...this.deadlineArg(batch.deadline, this.nodeKey(node))).then(
      (replies) => {
        if (!Array.isArray(replies) && String(replies) === LATE) {
          for (const item of items) item.reject(new AnnounceLateError());
          this.onBatch?.(items.length, 0);
          return;
        }
        if (!Array.isArray(replies) || replies.length !== items.length) {
          for (const item of items) void alone(item);
          this.onBatch?.(items.length, items.length);
          return;
        }
        let resent = 0;
        for (let i = 0; i < items.length; i++) {
          const item = items[i];
          const reply = replies[i];
          if (reply.length === 0) {
            resent++;
            void alone(item);
            continue;
          }
          try {
            item.resolve(parseAnnounceReply(reply, item.size, item.withPeerIds));
          } catch (e) {
            item.reject(e);
          }
        }
        this.onBatch?.(items.length, resent);
      },
      () => {
        for (const item of items) void alone(item);
        this.onBatch?.(items.length, items.length);
        this.refreshSlots();
      },
    );
  }

  private slotsRefreshedAt = 0;

  /**
   * Reads the cluster's slot map again after a batch call failed (its master down, say): the
   * batches follow client.slots, which ioredis refreshes on MOVED, and a master that died sends
   * none, so without this every batch would go on failing until the next MOVED. At most every
   * 200 ms.
   */
  private refreshSlots(): void {
    const client = this.client;
    if (!(client instanceof Cluster) || Date.now() - this.slotsRefreshedAt < 200) return;
    this.slotsRefreshedAt = Date.now();
    client.refreshSlotsCache();
  }

  /** One EVALSHA per hash, all issued at once: auto-pipelining sends one batch per node. */
  async scrape(infoHashes: Buffer[], now: number): Promise<ScrapeEntry[]> {
    const client = this.client as unknown as Scripted;
    const replies = await Promise.all(
      infoHashes.map((h) => client.ptScrape(...this.keyBuffers(h), String(now), String(this.retentionMs))),
    );
    return replies.map(([complete, incomplete, downloaded], i) => ({
      infoHash: infoHashes[i],
      complete,
      downloaded,
      incomplete,
    }));
  }

  /**
   * A full scrape: SCAN on every master for the swarms' `m` keys (every swarm with live peers has
   * one) and `c` keys (every swarm with a completed count has one), then a scrape of those. It
   * walks the keyspace, so it is for the occasional full-scrape snapshot, never the announce path;
   * no correctness depends on it.
   */
  async scrapeAll(now: number): Promise<ScrapeEntry[]> {
    const pattern = `${globEscape(this.prefix)}{*}:[mc]`;
    const hexes = new Set<string>();
    for (const node of this.masters()) {
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        for (const key of keys) {
          const hex = key.slice(this.prefix.length + 1, this.prefix.length + 41);
          if (/^[0-9a-f]{40}$/.test(hex) && key.length === this.prefix.length + 44) hexes.add(hex);
        }
      } while (cursor !== '0');
    }
    const entries = await this.scrape([...hexes].map((h) => Buffer.from(h, 'hex')), now);
    return entries.filter((e) => e.complete + e.incomplete > 0 || e.downloaded > 0);
  }

  /**
   * An estimate, from a random sample of keys on every master (no walk, nothing global kept on
   * the announce path): swarms with peers ≈ DBSIZE × the share of sampled keys that are this
   * store's `m` keys (one per swarm with live peers); peers ≈ that × the mean peer count in the
   * sampled swarm headers (scripts.ts; counts peers not yet purged). Exact for an empty store;
   * rough for small ones.
   */
  async stats(): Promise<{ peers: number; swarms: number }> {
    let peers = 0;
    let swarms = 0;
    const shape = new RegExp(`^${regexEscape(this.prefix)}\\{[0-9a-f]{40}\\}:m$`);
    for (const node of this.masters()) {
      const total = await node.dbsize();
      if (total === 0) continue;
      const sample = await Promise.all(Array.from({ length: Math.min(STATS_SAMPLE, total) }, () => node.randomkey()));
      let m = 0;
      let held = 0;
      for (const key of sample) {
        if (key === null || !shape.test(key)) continue;
        m++;
        const header = await node.getrangeBuffer(key, 0, HEADER_BYTES - 1);
        // peers of the IPv4 and IPv6 pools: 32-bit counts at 28 and 48
        if (header?.length === HEADER_BYTES) held += header.readUInt32BE(28) + header.readUInt32BE(48);
      }
      const found = (total * m) / sample.length;
      swarms += found;
      if (m > 0) peers += found * (held / m);
    }
    return { peers: Math.round(peers), swarms: Math.round(swarms) };
  }

  async close(): Promise<void> {
    clearInterval(this.clockTimer);
    await this.client.quit().catch(() => this.client.disconnect());
  }

  private masters(): Redis[] {
    return this.client instanceof Cluster ? this.client.nodes('master') : [this.client];
  }
}

/** The announce script's reply: refusal code, complete, incomplete, downloaded (u32 each), the peers' addresses, their ids. */
function parseAnnounceReply(reply: Buffer, size: number, withPeerIds: boolean): StoreAnnounceResult {
  if (reply.length === LATE.length && reply.toString('latin1') === LATE) throw new AnnounceLateError();
  const k = (reply.length - 13) / (size + (withPeerIds ? 20 : 0));
  const refused = REFUSAL_CODES[reply[0]];
  if (!Number.isInteger(k) || k < 0 || refused === undefined) {
    throw new Error(`announce script: a reply of ${reply.length} bytes does not parse`);
  }
  const peersEnd = 13 + k * size;
  const result: StoreAnnounceResult = {
    complete: reply.readUInt32BE(1),
    incomplete: reply.readUInt32BE(5),
    downloaded: reply.readUInt32BE(9),
    peers: k === 0 ? EMPTY : reply.subarray(13, peersEnd),
  };
  if (withPeerIds) result.peerIds = k === 0 ? EMPTY : reply.subarray(peersEnd);
  if (refused !== '') result.refused = refused;
  return result;
}

/** the 40 lowercase hex digits of a 20-byte info hash, written at `at` */
function writeHex(buf: Buffer, at: number, infoHash: Buffer): void {
  for (let i = 0, o = at; i < 20; i++, o += 2) {
    const b = infoHash[i];
    buf[o] = HEX[b >> 4];
    buf[o + 1] = HEX[b & 15];
  }
}

/** an announce's info hash in hex, for masterOf and the batch */
const HEX_SCRATCH = Buffer.alloc(40);

/**
 * The key record of an announce, written at `at`: 1 and a 64-bit fingerprint of its BEP 3 key, or
 * 9 zeros for none ('' counts as none). Every gateway must compute the same fingerprint, so it is
 * unseeded: two 32-bit FNV-1a style multiply-xor chains over the key's char codes, each finished
 * with murmur3's fmix32. Not cryptographic, and it need not be: the stored fingerprint never
 * leaves Redis, so a client that does not know a peer's key can only guess (about 2^-63 a try, as
 * both chains' lowest bits start alike; a UDP key has only 32 bits anyway). SHA-256 from
 * node:crypto cost ≈ 3.5 % of the gateway's CPU in cluster mode (profile under the UDP benchmark
 * load); this is a few ns.
 */
export function writeKeyRecord(buf: Buffer, at: number, key: string | undefined): void {
  if (key === undefined || key === '') {
    buf.fill(0, at, at + 9);
    return;
  }
  let a = 0x811c9dc5 ^ key.length;
  let b = 0x2545f491 ^ key.length;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
  }
  buf[at] = 1;
  buf.writeUInt32BE(fmix32(a) >>> 0, at + 1);
  buf.writeUInt32BE(fmix32(b ^ a) >>> 0, at + 5);
}

/** A limit as the script takes it: none (undefined) is Infinity. */
function limit(n: number | undefined): number {
  return n === undefined ? Infinity : Math.max(0, Math.floor(n));
}

function fmix32(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return h ^ (h >>> 16);
}

function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, '\\$&');
}

function regexEscape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
