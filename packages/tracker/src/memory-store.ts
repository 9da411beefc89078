import type { ScrapeEntry } from '@peertracker/protocol';
import type { Family, StoreAnnounce, StoreAnnounceResult, SwarmStore } from './store';

/*
 * The embedded swarm store. It is on the hot path and holds every peer in the process, so it
 * is laid out for memory first: ≈ 77 bytes of V8 heap per peer at 1,000,000 peers in 20,000
 * swarms, also after churn (measured with --expose-gc, heapUsed + arrayBuffers). A Map of
 * small objects per peer costs well over 300; a Map<peer_id string, slot> per pool cost 127
 * after filling and 163 after churn (a Map that has seen deletions grows to twice its size).
 *
 * One swarm holds one Pool per address family (the IPv6 one only once an IPv6 peer comes).
 * A pool keeps its peers in dense slots 0..count-1, seeders first ([0, seeders)), leechers
 * after ([seeders, count)), in two typed arrays:
 *   - bytes: the compact addresses, slot i at i*size (6 or 18 bytes), so a selection is a
 *     contiguous window copied with a few Buffer copies; then the 20-byte peer ids, same order;
 *   - ints: four int32 per slot: prev, next, expiry (ms, relative to `base`), index position.
 *     prev/next chain the slots in expiry order; since every announce sets expiry = now +
 *     lifetime, a refreshed peer goes to the tail in O(1) and the expired peers are exactly the
 *     head, which every announce, scrape and sweep pops: expiry is exact to the millisecond and
 *     costs amortized O(1). Then the index peer_id → slot: open addressing with linear probing,
 *     2 × capacity entries (slot + 1, 0 = empty), a per-process seeded hash of the id.
 * Removal moves the last slot of the region into the hole (O(1)); becoming a seeder or a
 * leecher swaps the slot with the region boundary. Capacity doubles when full and shrinks
 * when a quarter full.
 *
 * Selection (see Pool.select): a seeder gets a random contiguous window of the leecher region;
 * a leecher gets a random contiguous window of the whole pool minus itself, so seeders and
 * leechers come in proportion to their numbers on average.
 *
 * A swarm whose peers are all gone but that has a completed count is kept as just that count
 * in `retired` (a Map<string, number>) so that `downloaded` outlives the peers, as the contract
 * asks: ≈ 80 bytes per such torrent (measured), kept for the life of the process (100,000
 * finished torrents ≈ 8 MB).
 */

const NIL = -1;
const MIN_CAPACITY = 4;
const INT32_MAX = 0x7fffffff;
const INT32_MIN = -0x80000000;
/** Expiry is stored as int32 milliseconds relative to a per-pool base. */
export const MAX_PEER_LIFETIME_MS = INT32_MAX;
const EMPTY = Buffer.alloc(0);
/** bytes of a peer id */
const ID = 20;
/** ints per slot in Pool.ints: prev, next, expiry, position in the index */
const L = 4;

export interface MemoryStoreOptions {
  /** Uniform in [0, 1); picks the selection windows. Default Math.random. */
  random?: () => number;
}

/** Diagnostics of one family pool (for tests and debugging). */
export interface PoolInfo {
  seeders: number;
  leechers: number;
  /** allocated slots */
  capacity: number;
}

class Pool {
  /** bytes per compact address: 6 (IPv4) or 18 (IPv6) */
  readonly size: number;
  capacity = 0;
  count = 0;
  seeders = 0;
  head = NIL;
  tail = NIL;
  /** expiries are stored relative to this (ms); it moves only when they would overflow int32 */
  base: number;
  /** compact addresses (capacity × size), then peer ids (capacity × 20) */
  bytes: Buffer = EMPTY;
  /** where the peer ids start in `bytes` */
  idAt = 0;
  /** per slot [prev, next, expiry, index position] (capacity × 4), then the index (2 × capacity) */
  ints = new Int32Array(0);
  /** where the index starts in `ints` */
  tableAt = 0;
  /** index positions are hash & mask (2 × capacity − 1) */
  mask = 0;

  constructor(size: number, now: number) {
    this.size = size;
    this.base = now;
    this.resize(MIN_CAPACITY);
  }

  /** The slot of a peer id, or NIL. */
  find(id: Buffer): number {
    const ints = this.ints;
    const mask = this.mask;
    const t = this.tableAt;
    for (let i = hashId(id, 0) & mask; ; i = (i + 1) & mask) {
      const e = ints[t + i];
      if (e === 0) return NIL;
      if (sameId(id, this.bytes, this.idAt + (e - 1) * ID)) return e - 1;
    }
  }

  /** Drops every peer whose expiry is <= now. */
  purge(now: number): void {
    const limit = now - this.base;
    const ints = this.ints;
    let removed = false;
    while (this.head !== NIL && ints[this.head * L + 2] <= limit) {
      this.remove(this.head);
      removed = true;
    }
    if (removed) this.shrink();
  }

  /** Adds a new peer; returns its slot. */
  add(id: Buffer, addr: Buffer, seeder: boolean, expiry: number, now: number): number {
    if (this.count === this.capacity) this.resize(this.capacity * 2);
    let slot = this.count;
    if (seeder) {
      if (this.count > this.seeders) this.move(this.seeders, this.count);
      slot = this.seeders++;
    }
    this.count++;
    const bytes = this.bytes;
    const at = this.idAt + slot * ID;
    for (let i = 0; i < ID; i++) bytes[at + i] = id[i];
    this.write(slot, addr);
    this.indexAdd(slot);
    this.ints[slot * L + 2] = this.relative(expiry, now);
    this.insert(slot);
    return slot;
  }

  /** Re-announce of a known peer: new address (the port may change) and expiry. */
  refresh(slot: number, addr: Buffer, expiry: number, now: number): void {
    this.write(slot, addr);
    this.unlink(slot);
    this.ints[slot * L + 2] = this.relative(expiry, now);
    this.insert(slot);
  }

  /** Moves a peer across the seeder/leecher boundary; returns its new slot. */
  setSeeder(slot: number, seeder: boolean): number {
    if (seeder) {
      this.swap(slot, this.seeders);
      return this.seeders++;
    }
    this.swap(slot, --this.seeders);
    return this.seeders;
  }

  remove(slot: number): void {
    this.unlink(slot);
    this.indexDelete(slot);
    let hole = slot;
    if (slot < this.seeders) {
      hole = --this.seeders;
      if (slot !== hole) this.move(hole, slot);
    }
    const last = --this.count;
    if (hole !== last) this.move(last, hole);
  }

  shrink(): void {
    if (this.capacity > MIN_CAPACITY && this.count <= this.capacity >>> 2) {
      let capacity = MIN_CAPACITY;
      while (capacity < this.count * 2) capacity *= 2;
      this.resize(capacity);
    }
  }

  /**
   * Picks up to `want` peers for the announcer at `self` as a random contiguous window
   * (wrapping) of its candidates, and writes them to `out`. Up to three Buffer copies: the
   * window may wrap and may straddle the announcer, who is skipped.
   */
  select(
    self: number,
    want: number,
    random: () => number,
    withIds: boolean,
    segs: Int32Array,
    out: StoreAnnounceResult,
  ): void {
    let n = 0; // entries written to segs: [from, to) slot pairs
    let k: number;
    if (self < this.seeders) {
      // a seeder: only leechers, i.e. the region [seeders, count), which excludes self
      const lo = this.seeders;
      const m = this.count - lo;
      k = Math.min(want, m);
      if (k <= 0) return;
      const start = lo + pick(random, m);
      const end = Math.min(start + k, this.count);
      segs[0] = start;
      segs[1] = end;
      n = 2;
      if (end - start < k) {
        segs[2] = lo;
        segs[3] = lo + k - (end - start);
        n = 4;
      }
    } else {
      // a leecher: everyone but self. Virtual index v in [0, m) is slot v, or v + 1 past self.
      const m = this.count - 1;
      k = Math.min(want, m);
      if (k <= 0) return;
      const start = pick(random, m);
      const end = Math.min(start + k, m);
      n = virtualSegment(segs, n, start, end, self);
      if (end - start < k) n = virtualSegment(segs, n, 0, k - (end - start), self);
    }
    const size = this.size;
    const peers = Buffer.allocUnsafe(k * size);
    let pos = 0;
    for (let i = 0; i < n; i += 2) pos += this.bytes.copy(peers, pos, segs[i] * size, segs[i + 1] * size);
    out.peers = peers;
    if (withIds) {
      const ids = Buffer.allocUnsafe(k * ID);
      pos = 0;
      for (let i = 0; i < n; i += 2) {
        pos += this.bytes.copy(ids, pos, this.idAt + segs[i] * ID, this.idAt + segs[i + 1] * ID);
      }
      out.peerIds = ids;
    }
  }

  info(): PoolInfo {
    return { seeders: this.seeders, leechers: this.count - this.seeders, capacity: this.capacity };
  }

  /** Throws if the slots, index and expiry chain disagree (for tests). */
  check(): void {
    const fail = (what: string): never => {
      throw new Error(`pool invariant broken: ${what}`);
    };
    const ints = this.ints;
    if (this.seeders < 0 || this.seeders > this.count || this.count > this.capacity) fail('bounds');
    let used = 0;
    for (let i = 0; i <= this.mask; i++) if (ints[this.tableAt + i] !== 0) used++;
    if (used !== this.count) fail(`index holds ${used} of ${this.count}`);
    for (let s = 0; s < this.count; s++) {
      if (ints[this.tableAt + ints[s * L + 3]] !== s + 1) fail(`index position of ${s}`);
      const id = this.bytes.subarray(this.idAt + s * ID, this.idAt + s * ID + ID);
      if (this.find(id) !== s) fail(`find(${s})`);
    }
    let seen = 0;
    let prev = NIL;
    for (let s = this.head; s !== NIL; s = ints[s * L + 1]) {
      if (++seen > this.count) fail('cycle');
      if (ints[s * L] !== prev) fail(`prev of ${s}`);
      if (prev !== NIL && ints[prev * L + 2] > ints[s * L + 2]) fail('expiry order');
      prev = s;
    }
    if (seen !== this.count || this.tail !== prev) fail('chain length or tail');
  }

  /** Expiry relative to base; rebases (O(n), once per ~24 days of a pool) if it overflows. */
  private relative(expiry: number, now: number): number {
    let rel = Math.ceil(expiry - this.base);
    if (rel > INT32_MAX || rel < INT32_MIN) {
      const ints = this.ints;
      for (let s = 0; s < this.count; s++) ints[s * L + 2] = clampInt32(ints[s * L + 2] + this.base - now);
      this.base = now;
      rel = clampInt32(Math.ceil(expiry - now));
    }
    return rel;
  }

  /** A byte loop: Buffer.copy costs more than this for 6 or 18 bytes. */
  private write(slot: number, addr: Buffer): void {
    const size = this.size;
    const bytes = this.bytes;
    for (let i = 0; i < size; i++) bytes[slot * size + i] = addr[i];
  }

  /** Inserts `slot` in the expiry chain, searching from the tail (where a refresh lands). */
  private insert(slot: number): void {
    const ints = this.ints;
    const expiry = ints[slot * L + 2];
    let p = this.tail;
    while (p !== NIL && ints[p * L + 2] > expiry) p = ints[p * L];
    const n = p === NIL ? this.head : ints[p * L + 1];
    ints[slot * L] = p;
    ints[slot * L + 1] = n;
    if (p === NIL) this.head = slot;
    else ints[p * L + 1] = slot;
    if (n === NIL) this.tail = slot;
    else ints[n * L] = slot;
  }

  private unlink(slot: number): void {
    const ints = this.ints;
    const p = ints[slot * L];
    const n = ints[slot * L + 1];
    if (p === NIL) this.head = n;
    else ints[p * L + 1] = n;
    if (n === NIL) this.tail = p;
    else ints[n * L] = p;
  }

  /** Enters the id at `slot` in the index (linear probing; stored as slot + 1, 0 is empty). */
  private indexAdd(slot: number): void {
    const ints = this.ints;
    const mask = this.mask;
    const t = this.tableAt;
    for (let i = hashId(this.bytes, this.idAt + slot * ID) & mask; ; i = (i + 1) & mask) {
      if (ints[t + i] === 0) {
        ints[t + i] = slot + 1;
        ints[slot * L + 3] = i;
        return;
      }
    }
  }

  /** Takes `slot` out of the index, shifting later entries of its probe run back. */
  private indexDelete(slot: number): void {
    const ints = this.ints;
    const mask = this.mask;
    const t = this.tableAt;
    let hole = ints[slot * L + 3];
    for (let j = (hole + 1) & mask; ; j = (j + 1) & mask) {
      const e = ints[t + j];
      if (e === 0) break;
      const home = hashId(this.bytes, this.idAt + (e - 1) * ID) & mask;
      // an entry whose home lies cyclically in (hole, j] must stay where it is
      if (hole <= j ? hole < home && home <= j : hole < home || home <= j) continue;
      ints[t + hole] = e;
      ints[(e - 1) * L + 3] = hole;
      hole = j;
    }
    ints[t + hole] = 0;
  }

  /** Moves the peer at `from` into the free slot `to`. */
  private move(from: number, to: number): void {
    const size = this.size;
    const bytes = this.bytes;
    for (let i = 0; i < size; i++) bytes[to * size + i] = bytes[from * size + i];
    const idFrom = this.idAt + from * ID;
    const idTo = this.idAt + to * ID;
    for (let i = 0; i < ID; i++) bytes[idTo + i] = bytes[idFrom + i];
    const ints = this.ints;
    const p = ints[from * L];
    const n = ints[from * L + 1];
    const pos = ints[from * L + 3];
    ints[to * L] = p;
    ints[to * L + 1] = n;
    ints[to * L + 2] = ints[from * L + 2];
    ints[to * L + 3] = pos;
    ints[this.tableAt + pos] = to + 1;
    if (p === NIL) this.head = to;
    else ints[p * L + 1] = to;
    if (n === NIL) this.tail = to;
    else ints[n * L] = to;
  }

  /** Exchanges the peers at slots a and b, keeping each one's place in the expiry chain. */
  private swap(a: number, b: number): void {
    if (a === b) return;
    const size = this.size;
    const bytes = this.bytes;
    for (let i = 0; i < size; i++) {
      const t = bytes[a * size + i];
      bytes[a * size + i] = bytes[b * size + i];
      bytes[b * size + i] = t;
    }
    for (let i = 0, x = this.idAt + a * ID, y = this.idAt + b * ID; i < ID; i++) {
      const t = bytes[x + i];
      bytes[x + i] = bytes[y + i];
      bytes[y + i] = t;
    }
    const ints = this.ints;
    const pa = ints[a * L];
    const na = ints[a * L + 1];
    const ea = ints[a * L + 2];
    const qa = ints[a * L + 3];
    const pb = ints[b * L];
    const nb = ints[b * L + 1];
    const eb = ints[b * L + 2];
    const qb = ints[b * L + 3];
    // the peer from a now lives at b and vice versa; a pointer to a or b is renamed
    ints[b * L] = pa === b ? a : pa;
    ints[b * L + 1] = na === b ? a : na;
    ints[b * L + 2] = ea;
    ints[b * L + 3] = qa;
    ints[a * L] = pb === a ? b : pb;
    ints[a * L + 1] = nb === a ? b : nb;
    ints[a * L + 2] = eb;
    ints[a * L + 3] = qb;
    ints[this.tableAt + qa] = b + 1;
    ints[this.tableAt + qb] = a + 1;
    if (pa === NIL) this.head = b;
    else if (pa !== b) ints[pa * L + 1] = b;
    if (na === NIL) this.tail = b;
    else if (na !== b) ints[na * L] = b;
    if (pb === NIL) this.head = a;
    else if (pb !== a) ints[pb * L + 1] = a;
    if (nb === NIL) this.tail = a;
    else if (nb !== a) ints[nb * L] = a;
  }

  /** Reallocates for `capacity` slots (a power of two) and rebuilds the index. */
  private resize(capacity: number): void {
    const size = this.size;
    const count = this.count;
    const bytes = Buffer.allocUnsafeSlow(capacity * (size + ID));
    this.bytes.copy(bytes, 0, 0, count * size);
    this.bytes.copy(bytes, capacity * size, this.idAt, this.idAt + count * ID);
    const ints = new Int32Array(capacity * (L + 2));
    ints.set(this.ints.subarray(0, count * L));
    this.bytes = bytes;
    this.idAt = capacity * size;
    this.ints = ints;
    this.tableAt = capacity * L;
    this.mask = 2 * capacity - 1;
    this.capacity = capacity;
    for (let s = 0; s < count; s++) this.indexAdd(s);
  }
}

/** Seeded so that clients cannot choose peer ids that pile up in one probe run. */
const SEED = (Math.random() * 0x100000000) | 0;

/** Hash of the 20-byte peer id at buf[at]. */
function hashId(buf: Uint8Array, at: number): number {
  let h = SEED;
  for (let i = at; i < at + ID; i += 4) {
    h = Math.imul(h ^ (buf[i] | (buf[i + 1] << 8) | (buf[i + 2] << 16) | (buf[i + 3] << 24)), 0x9e3779b1);
    h ^= h >>> 15;
  }
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  return h ^ (h >>> 13);
}

/** id (20 bytes) equals buf[at, at + 20); compared from the end, where client ids are random. */
function sameId(id: Buffer, buf: Buffer, at: number): boolean {
  for (let i = ID - 1; i >= 0; i--) if (id[i] !== buf[at + i]) return false;
  return true;
}

class Swarm {
  completed: number;
  v4: Pool | null = null;
  v6: Pool | null = null;
  constructor(completed: number) {
    this.completed = completed;
  }
}

function pick(random: () => number, m: number): number {
  const r = Math.floor(random() * m);
  return r >= m ? m - 1 : r < 0 ? 0 : r;
}

function clampInt32(x: number): number {
  return x > INT32_MAX ? INT32_MAX : x < INT32_MIN ? INT32_MIN : x;
}

/** Appends the slots of virtual range [a, b) (slot = v, or v + 1 from `self` on) to segs. */
function virtualSegment(segs: Int32Array, n: number, a: number, b: number, self: number): number {
  if (b <= self) {
    segs[n] = a;
    segs[n + 1] = b;
    return n + 2;
  }
  if (a >= self) {
    segs[n] = a + 1;
    segs[n + 1] = b + 1;
    return n + 2;
  }
  segs[n] = a;
  segs[n + 1] = self;
  segs[n + 2] = self + 1;
  segs[n + 3] = b + 1;
  return n + 4;
}

export class MemoryStore implements SwarmStore {
  private readonly swarms = new Map<string, Swarm>();
  /** swarms with no peers left but a completed count: info_hash (latin1) → count */
  private readonly retired = new Map<string, number>();
  private readonly random: () => number;
  /** scratch for Pool.select: up to three [from, to) slot ranges */
  private readonly segs = new Int32Array(6);

  constructor(options: MemoryStoreOptions = {}) {
    this.random = options.random ?? Math.random;
  }

  announce(req: StoreAnnounce): StoreAnnounceResult {
    const size = req.family === 4 ? 6 : 18;
    if (req.addr.length !== size || req.infoHash.length !== 20 || req.peerId.length !== 20) {
      throw new TypeError('announce: info_hash and peer_id must be 20 bytes, addr 6 (IPv4) or 18 (IPv6)');
    }
    if (!(req.peerLifetimeMs > 0 && req.peerLifetimeMs <= MAX_PEER_LIFETIME_MS)) {
      throw new RangeError(`announce: peerLifetimeMs must be in (0, ${MAX_PEER_LIFETIME_MS}]`);
    }
    const now = req.now;
    const key = req.infoHash.toString('latin1');
    let swarm = this.swarms.get(key);
    const result: StoreAnnounceResult = { complete: 0, incomplete: 0, downloaded: 0, peers: EMPTY };
    if (req.event === 'stopped') {
      if (swarm === undefined) {
        result.downloaded = this.retired.get(key) ?? 0;
        return result;
      }
      const pool = req.family === 4 ? swarm.v4 : swarm.v6;
      if (pool !== null) {
        pool.purge(now);
        const slot = pool.find(req.peerId);
        if (slot !== NIL) {
          pool.remove(slot);
          pool.shrink();
        }
        result.complete = pool.seeders;
        result.incomplete = pool.count - pool.seeders;
      }
      result.downloaded = swarm.completed;
      this.settle(key, swarm);
      return result;
    }

    if (swarm === undefined) {
      const completed = this.retired.get(key);
      swarm = new Swarm(completed ?? 0);
      if (completed !== undefined) this.retired.delete(key);
      this.swarms.set(key, swarm);
    }
    let pool = req.family === 4 ? swarm.v4 : swarm.v6;
    if (pool === null) {
      pool = new Pool(size, now);
      if (req.family === 4) swarm.v4 = pool;
      else swarm.v6 = pool;
    } else {
      pool.purge(now);
    }
    const expiry = now + req.peerLifetimeMs;
    let slot = pool.find(req.peerId);
    if (slot === NIL) {
      slot = pool.add(req.peerId, req.addr, req.seeder, expiry, now);
      if (req.seeder && req.event === 'completed') swarm.completed++;
    } else {
      const wasSeeder = slot < pool.seeders;
      if (req.seeder !== wasSeeder) {
        slot = pool.setSeeder(slot, req.seeder);
        if (req.seeder && req.event === 'completed') swarm.completed++;
      }
      pool.refresh(slot, req.addr, expiry, now);
    }
    result.complete = pool.seeders;
    result.incomplete = pool.count - pool.seeders;
    result.downloaded = swarm.completed;
    if (req.numWant > 0) pool.select(slot, req.numWant, this.random, req.withPeerIds, this.segs, result);
    if (req.withPeerIds && result.peerIds === undefined) result.peerIds = EMPTY;
    return result;
  }

  async scrape(infoHashes: Buffer[], now: number): Promise<ScrapeEntry[]> {
    const entries: ScrapeEntry[] = [];
    for (const infoHash of infoHashes) {
      const key = infoHash.toString('latin1');
      const swarm = this.swarms.get(key);
      if (swarm !== undefined) {
        entries.push(this.count(infoHash, swarm, now));
        this.settle(key, swarm);
      } else {
        entries.push({ infoHash, complete: 0, downloaded: this.retired.get(key) ?? 0, incomplete: 0 });
      }
    }
    return entries;
  }

  async scrapeAll(now: number): Promise<ScrapeEntry[]> {
    const entries: ScrapeEntry[] = [];
    for (const [key, swarm] of this.swarms) {
      const entry = this.count(Buffer.from(key, 'latin1'), swarm, now);
      if (entry.complete + entry.incomplete > 0 || entry.downloaded > 0) entries.push(entry);
      this.settle(key, swarm);
    }
    for (const [key, downloaded] of this.retired) {
      entries.push({ infoHash: Buffer.from(key, 'latin1'), complete: 0, downloaded, incomplete: 0 });
    }
    return entries;
  }

  /**
   * Peers and swarms held. Peers not yet swept count until the next sweep or announce; swarms
   * are those holding peers (completed-count-only swarms are not counted).
   */
  async stats(): Promise<{ peers: number; swarms: number }> {
    let peers = 0;
    for (const swarm of this.swarms.values()) {
      peers += (swarm.v4?.count ?? 0) + (swarm.v6?.count ?? 0);
    }
    return { peers, swarms: this.swarms.size };
  }

  /** Drops the expired peers of every swarm, then the swarms left without peers. */
  sweep(now: number): void {
    for (const [key, swarm] of this.swarms) {
      swarm.v4?.purge(now);
      swarm.v6?.purge(now);
      this.settle(key, swarm);
    }
  }

  /** Sweeps every `intervalMs` on an unref'd timer; returns the function that stops it. */
  startSweeper(intervalMs: number, clock: () => number = Date.now): () => void {
    const timer = setInterval(() => this.sweep(clock()), intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  /** Seeders, leechers and capacity per family of one swarm (for tests and debugging). */
  inspect(infoHash: Buffer): { completed: number; v4: PoolInfo | null; v6: PoolInfo | null } | undefined {
    const key = infoHash.toString('latin1');
    const swarm = this.swarms.get(key);
    if (swarm === undefined) {
      const completed = this.retired.get(key);
      return completed === undefined ? undefined : { completed, v4: null, v6: null };
    }
    return { completed: swarm.completed, v4: swarm.v4?.info() ?? null, v6: swarm.v6?.info() ?? null };
  }

  /** Throws if any pool's internal structure is inconsistent (for tests). */
  checkInvariants(): void {
    for (const swarm of this.swarms.values()) {
      swarm.v4?.check();
      swarm.v6?.check();
    }
  }

  async close(): Promise<void> {
    this.swarms.clear();
    this.retired.clear();
  }

  private count(infoHash: Buffer, swarm: Swarm, now: number): ScrapeEntry {
    let complete = 0;
    let incomplete = 0;
    for (const pool of [swarm.v4, swarm.v6]) {
      if (pool === null) continue;
      pool.purge(now);
      complete += pool.seeders;
      incomplete += pool.count - pool.seeders;
    }
    return { infoHash, complete, downloaded: swarm.completed, incomplete };
  }

  /** Frees empty pools; a swarm without peers goes, leaving its completed count if any. */
  private settle(key: string, swarm: Swarm): void {
    if (swarm.v4 !== null && swarm.v4.count === 0) swarm.v4 = null;
    if (swarm.v6 !== null && swarm.v6.count === 0) swarm.v6 = null;
    if (swarm.v4 === null && swarm.v6 === null) {
      this.swarms.delete(key);
      if (swarm.completed > 0) this.retired.set(key, swarm.completed);
    }
  }
}
