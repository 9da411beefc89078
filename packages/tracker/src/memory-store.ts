import type { ScrapeEntry } from '@peertracker/protocol';
import { DEFAULT_SWARM_RETENTION_MS } from './store';
import type { RefusalReason, StoreAnnounce, StoreAnnounceResult, SwarmStore } from './store';

/*
 * The embedded swarm store. It is on the hot path and holds every peer in the process, so it
 * is laid out for memory first: ≈ 83 bytes of V8 heap per peer at 1,000,000 peers in 20,000
 * swarms (77 before the per-slot `meta` int, 82 before the retained-list links of each swarm),
 * also after churn (measured with --expose-gc, heapUsed + arrayBuffers; bench/heap-per-peer.mjs).
 * A Map of small objects per peer costs well over 300; a Map<peer_id string, slot> per pool cost 127
 * after filling and 163 after churn (a Map that has seen deletions grows to twice its size).
 *
 * One swarm holds one Pool per address family (the IPv6 one only once an IPv6 peer comes).
 * A pool keeps its peers in dense slots 0..count-1, seeders first ([0, seeders)), leechers
 * after ([seeders, count)), in two typed arrays per storage chunk (one chunk up to CHUNK = 4,096
 * slots, then chunks of 4,096):
 *   - bytes: the compact addresses, slot i at i*size (6 or 18 bytes), so a selection is a
 *     contiguous window copied with a few Buffer copies (one more where it crosses a chunk);
 *     then the 20-byte peer ids, same order;
 *   - ints: five int32 per slot: prev, next, expiry (ms, relative to `base`), index position,
 *     and `meta`: a 31-bit fingerprint of the peer's BEP 3 key (0 = none) shifted left by one,
 *     with bit 0 set once this peer's completion has been counted (so it counts once per stay).
 *     prev/next chain the slots in expiry order; since every announce sets expiry = now +
 *     lifetime, a refreshed peer goes to the tail in O(1) and the expired peers are exactly the
 *     head, which every announce, scrape and sweep pops: expiry is exact to the millisecond and
 *     costs amortized O(1). Then, up to CHUNK slots, the index peer_id → slot: open addressing
 *     with linear probing, 2 × capacity entries (slot + 1, 0 = empty), a per-process seeded hash
 *     of the id; above, a SegmentedIndex (extendible hashing) of its own.
 * Removal moves the last slot of the region into the hole (O(1)); becoming a seeder or a
 * leecher swaps the slot with the region boundary. Up to CHUNK slots, capacity doubles when full
 * and halves when a quarter full (copying at most CHUNK slots and rehashing at most CHUNK ids);
 * above, the pool adds a chunk when full and drops one when one and a half are free, copying
 * nothing, and its index and per-address counts split (and merge back) one segment at a time. So
 * no announce, stop or sweep step copies or rehashes more than ≈ 4,096 slots or entries, whatever
 * the swarm's size (the test counts them: memoryStoreWork). The announce that doubled a pool of
 * 524,288 peers held the event loop for 73–283 ms (index rebuild, copy); the announce that finds
 * it full now takes 8–33 µs (bench/memory-swarm-series.mjs). The pool's fields for chunks and
 * the segmented index cost ≈ 23 bytes (a swarm of one peer: ≈ 893 instead of 870). A purge that
 * finds every peer of a pool expired (the whole swarm stopped announcing) empties it at once. Two
 * steps still grow with the swarm, rarely: a purge removes the expired peers of a pool that keeps
 * live ones one by one (≈ 1 µs each: many only when many peers that joined together left
 * together), and the int32 expiries are rebased once per ~24 days of a pool's life.
 *
 * Selection (see Pool.select): a seeder gets a random contiguous window of the leecher region;
 * a leecher gets a random contiguous window of the whole pool minus itself, so seeders and
 * leechers come in proportion to their numbers on average.
 *
 * An announce for a known peer id from another IP is accepted only with the key the entry holds
 * (compared by fingerprint: another key passes with probability 2^-31); a refused announce is
 * answered (select with the entry as `self`, so it is never returned) and changes nothing.
 *
 * A swarm whose peers are all gone but that has a completed count stays in the map, pools freed
 * (≈ 156 bytes measured: key string, Swarm object with its boxed `last` and list links, map
 * entry; a swarm of one peer ≈ 893, bench/memory-swarm-series.mjs), until
 * `swarmRetentionMs` has passed since its last announce; it is then treated as gone at once
 * (announce, scrape and scrapeAll compare `last` with their `now`) and freed by the next sweep
 * that reaches it, or by that announce or scrape.
 *
 * Limits. Per swarm (StoreAnnounce.maxPeersPerSwarm / maxPeersPerAddress, passed by the logic):
 * checked only for a peer id new to the swarm, after its expired peers are purged, so only live
 * peers count. The swarm limit compares the peers held; the address limit (IPv4 address, IPv6
 * /64) needs nothing in a pool of at most SCAN_MAX peers below the limit, scans such a pool at
 * the limit, and above SCAN_MAX peers keeps exact per-address counts (AddressCounts, whatever the
 * limit, so that they never start from a large pool in one announce), updated on join, leave,
 * expiry and a move to another address: ≈ 14–17 more bytes per peer in such pools (84 instead of
 * 70.5 at 10,000 peers, 71.7 instead of 54.8 at 1,000,000) and a cache miss or two per new peer
 * and per leave.
 * Store-wide (MemoryStoreOptions.maxPeers / maxSwarms), the shedding policy: a new peer beyond
 * maxPeers is answered (counts and peers, as any announce) and not stored, `refused:
 * 'store-full'`; a new swarm beyond maxSwarms takes the place of the swarm kept longest only for
 * its completed count (a list through the Swarm objects, O(1)); when there is none, its first
 * peer is answered with zeros and not stored, `refused: 'store-full'`. Known peers always keep
 * announcing, and stops and expiry make room again. The defaults bound the store to roughly
 * 0.45 GB of one-peer swarms (500,000 × ≈ 893 bytes, heapUsed + arrayBuffers) plus 0.4–0.5 GB
 * of peers (5,000,000 × 82–100 bytes).
 *
 * Sweeping: `sweep(now)` walks every swarm at once (tests); `sweepSome(now, budget)` walks the
 * next `budget` swarms with a cursor kept across calls (a live Map iterator: deletions and
 * insertions between calls are fine), and `startSweeper` spreads a full pass over its interval in
 * batches, so the event loop is never held for long (a full pass over 300,000 swarms took
 * 160–280 ms; a step of 1,000 swarms ≈ 0.5 ms, rarely up to ≈ 10 ms when the Map rehashes or GC
 * runs). stats() reads running totals of peers held and swarms holding peers, kept up to
 * date by every operation that adds or drops peers.
 */

const NIL = -1;
const MIN_CAPACITY = 4;
const INT32_MAX = 0x7fffffff;
const INT32_MIN = -0x80000000;
/** Expiry is stored as int32 milliseconds relative to a per-pool base. */
export const MAX_PEER_LIFETIME_MS = INT32_MAX;
const EMPTY = Buffer.alloc(0);
const NO_INTS = new Int32Array(0);
/** bytes of a peer id */
const ID = 20;
/** ints per slot in Pool.ints: prev, next, expiry, position in the index, meta (key fingerprint, counted bit) */
const L = 5;
/**
 * Most peers a pool counts per address by scanning its addresses (a new peer's announce only, and
 * only once the pool holds maxPeersPerAddress peers); above it the pool keeps AddressCounts.
 */
const SCAN_MAX = 128;
/** entries of the smallest AddressCounts table */
const MIN_ADDRESS_CAPACITY = 64;
/** entries of an AddressCounts segment once the table is split (a power of two) */
const ADDRESS_SEG = 4096;
/** two buddy AddressCounts segments merge when they hold this many entries together (load 3/8) */
const ADDRESS_MERGE = (ADDRESS_SEG * 3) >>> 3;
/**
 * Slots of a storage chunk (a power of two): a pool up to CHUNK slots is one chunk that doubles
 * and halves, its index inside (rebuilt then: at most CHUNK ids); a larger pool adds and drops
 * whole chunks, copying nothing, and keeps a SegmentedIndex. 188 KB of an IPv4 pool's bytes.
 */
const CHUNK_BITS = 12;
const CHUNK = 1 << CHUNK_BITS;
const CHUNK_MASK = CHUNK - 1;
/** entries of a SegmentedIndex segment (a power of two), 16 KB */
const SEG_BITS = 12;
const SEG = 1 << SEG_BITS;
const SEG_MASK = SEG - 1;
/** a segment splits when a new entry would take it above this (load 1/2) */
const SEG_FULL = SEG >>> 1;
/** buddy segments merge when they hold this many together (load 1/4), checked as one falls to half of it */
const SEG_MERGE = SEG >>> 2;
/** hash bits left above a segment's own probe bits, the deepest a directory goes */
const MAX_DEPTH = 32 - SEG_BITS;
/** swarms a timed sweeper step walks, by default */
const SWEEP_BATCH = 1000;

/** Default MemoryStoreOptions.maxPeers: ≈ 0.4–0.5 GB of peers at 82–100 bytes each. */
export const DEFAULT_MEMORY_MAX_PEERS = 5_000_000;
/** Default MemoryStoreOptions.maxSwarms: ≈ 0.45 GB if each holds one peer (≈ 893 bytes). */
export const DEFAULT_MEMORY_MAX_SWARMS = 500_000;

export interface MemoryStoreOptions {
  /** Uniform in [0, 1); picks the selection windows. Default Math.random. */
  random?: () => number;
  /**
   * A swarm without live peers is forgotten, completed count included, once this many
   * milliseconds have passed since its last announce. Default DEFAULT_SWARM_RETENTION_MS (24 h).
   */
  swarmRetentionMs?: number;
  /**
   * Most peers the store holds, all swarms together (peers not yet swept after expiring
   * included). A new peer beyond it is answered but not stored (`refused: 'store-full'`); known
   * peers keep announcing. Default DEFAULT_MEMORY_MAX_PEERS; 0: no limit.
   */
  maxPeers?: number;
  /**
   * Most swarms the store holds, those kept only for their completed count included. A new swarm
   * beyond it first takes the place of the swarm kept longest only for its completed count; when
   * there is none, its first peer is answered but not stored (`refused: 'store-full'`). Default
   * DEFAULT_MEMORY_MAX_SWARMS; 0: no limit.
   */
  maxSwarms?: number;
}

/**
 * Work counters for tests, of what a pool moves besides the announcing peer: slots copied to new
 * storage, peer-id index and address-count entries (re)inserted (resizes, splits), peers removed
 * one by one (stops, expiry). Tests read the difference around one operation.
 */
export const memoryStoreWork = { slotsCopied: 0, indexEntriesMoved: 0, addressEntriesMoved: 0, peersRemoved: 0 };

export interface SweeperOptions {
  /** swarms walked per step (default 1000) */
  batch?: number;
}

/** Diagnostics of one family pool (for tests and debugging). */
export interface PoolInfo {
  seeders: number;
  leechers: number;
  /** allocated slots */
  capacity: number;
  /** segments of the peer-id index, in a pool above 4,096 slots */
  indexSegments?: number;
  /** segments of the per-address counts, once split */
  addressSegments?: number;
}

/**
 * The directory of an extendible hash table (AddressCounts, SegmentedIndex): 2^depth entries,
 * picked by the top bits of a hash, name the segment; each segment has a local depth, the hash
 * bits that pick it, so it owns the 2^(depth − local) entries under those bits. Segments are
 * numbered 0..segments − 1; their tables and entries belong to the user, which moves the
 * entries when one splits or merges and keeps its per-segment lists in the same numbering.
 */
class SegmentDirectory {
  private dir: Int32Array;
  /** hash bits of the directory (read only outside) */
  depth: number;
  /** local depth, per segment */
  private readonly local: number[] = [];

  /** 2^depth segments, segment s under entry s */
  constructor(depth: number) {
    this.depth = depth;
    this.dir = new Int32Array(1 << depth);
    for (let s = 0; s < this.dir.length; s++) {
      this.dir[s] = s;
      this.local.push(depth);
    }
  }

  /** The segment of hash h. */
  seg(h: number): number {
    return this.depth === 0 ? 0 : this.dir[h >>> (32 - this.depth)];
  }

  /** Segment s came from a split (local depth above 0), so it may merge with its buddy. */
  canMerge(s: number): boolean {
    return this.local[s] > 0;
  }

  /** Segment s can split by one more hash bit. */
  canSplit(s: number): boolean {
    return this.local[s] < MAX_DEPTH;
  }

  /**
   * Splits segment s (which holds hash h) by its next hash bit: the directory doubles when s is
   * as deep as it, and the upper half of s's entries goes to a new segment, numbered after the
   * last. The user adds that segment's table and re-enters s's entries.
   */
  split(s: number, h: number): void {
    const d = this.local[s];
    if (d === this.depth) {
      const dir = new Int32Array(this.dir.length * 2);
      for (let i = 0; i < dir.length; i++) dir[i] = this.dir[i >>> 1];
      this.dir = dir;
      this.depth++;
    }
    // the directory entries of s are the 2^(depth − d) entries under h's top d bits
    const span = 2 ** (this.depth - d);
    const first = (d === 0 ? 0 : h >>> (32 - d)) * span;
    const t = this.local.length;
    this.local.push(d + 1);
    this.local[s] = d + 1;
    this.dir.fill(t, first + span / 2, first + span);
  }

  /** The buddy of segment s (which holds hash h, local depth above 0), or NIL when it is split deeper. */
  buddy(s: number, h: number): number {
    const d = this.local[s];
    const b = this.dir[((h >>> (32 - d)) ^ 1) * 2 ** (this.depth - d)];
    return this.local[b] === d ? b : NIL;
  }

  /**
   * Points the entries of segment s (which holds hash h) and of its buddy at s, undoing a split.
   * The user then re-enters the buddy's entries and calls free(buddy).
   */
  merge(s: number, h: number): void {
    const d = this.local[s];
    const span = 2 ** (this.depth - d);
    const first = ((h >>> (32 - d)) & ~1) * span;
    this.dir.fill(s, first, first + 2 * span);
    this.local[s] = d - 1;
  }

  /**
   * Frees number b of a segment merged away: the last segment takes it (the directory renamed).
   * Returns the last segment's old number; the user moves its lists' last item to b and pops.
   */
  free(b: number): number {
    const z = this.local.length - 1;
    if (b !== z) {
      this.local[b] = this.local[z];
      for (let i = 0; i < this.dir.length; i++) if (this.dir[i] === z) this.dir[i] = b;
    }
    this.local.pop();
    return z;
  }

  /** Segment s owns exactly its 2^(depth − local) directory entries (for checks). */
  consistent(s: number): boolean {
    const refs = this.dir.reduce((k, x) => (x === s ? k + 1 : k), 0);
    return refs === 2 ** (this.depth - this.local[s]);
  }
}

/**
 * Live peers per address of one pool, for StoreAnnounce.maxPeersPerAddress: an address is an IPv4
 * address (the first 4 bytes of the compact form) or an IPv6 /64 (the first 8). Open addressing
 * with linear probing over `width` int32 per entry (the address in 1 or 2 ints, then the count;
 * count 0 = empty), grown at 3/4 full, so ≈ 11–21 bytes per distinct IPv4 address, 16–32 per
 * IPv6 /64 as it grows. Up to ADDRESS_SEG entries it is one table that doubles, and halves at 1/8
 * full; above, segments of ADDRESS_SEG entries under a directory, as SegmentedIndex (a full
 * segment splits by one more hash bit; buddies that hold 3/8 × ADDRESS_SEG together merge), so no
 * update rehashes more than 3/4 × ADDRESS_SEG entries. A pool keeps one only while it holds more
 * than SCAN_MAX peers (and a limit asked for a count); a smaller pool is scanned, and the table
 * goes when the pool falls to SCAN_MAX / 2.
 */
class AddressCounts {
  /** int32 words of an address: 1 (IPv4) or 2 (IPv6 /64) */
  private readonly words: number;
  private readonly width: number;
  private readonly segs: Int32Array[] = [];
  /** entries held, per segment */
  private readonly segUsed: number[] = [];
  private readonly dir: SegmentDirectory;
  /** distinct addresses held */
  used = 0;

  constructor(words: number, expected: number) {
    this.words = words;
    this.width = words + 1;
    let capacity = MIN_ADDRESS_CAPACITY;
    while (capacity * 3 < expected * 4 + 4 && capacity < ADDRESS_SEG) capacity *= 2;
    // more than one segment takes: enough of them for a load of 3/8, so none splits at once
    let depth = 0;
    while (capacity * 3 < expected * 4 + 4 && (ADDRESS_SEG << depth) * 3 < (expected * 4 + 4) * 2) depth++;
    this.dir = new SegmentDirectory(depth);
    for (let s = 0; s < 1 << depth; s++) {
      this.segs.push(new Int32Array(capacity * this.width));
      this.segUsed.push(0);
    }
  }

  /** Peers at the address of the compact address at buf[at]. */
  get(buf: Uint8Array, at: number): number {
    const k0 = word(buf, at);
    const k1 = this.words === 2 ? word(buf, at + 4) : 0;
    const h = addressHash(k0, k1);
    const t = this.segs[this.dir.seg(h)];
    return t[this.position(t, h, k0, k1) * this.width + this.words];
  }

  /** Adds `delta` (+1 or −1) to the count of the address at buf[at]; a count of 0 leaves the table. */
  add(buf: Uint8Array, at: number, delta: number): void {
    const k0 = word(buf, at);
    const k1 = this.words === 2 ? word(buf, at + 4) : 0;
    const h = addressHash(k0, k1);
    const s = this.dir.seg(h);
    const t = this.segs[s];
    const pos = this.position(t, h, k0, k1);
    const e = pos * this.width;
    const n = t[e + this.words] + delta;
    if (n < 0) throw new Error('address count below zero');
    if (t[e + this.words] === 0) {
      t[e] = k0;
      if (this.words === 2) t[e + 1] = k1;
      this.used++;
      this.segUsed[s]++;
    }
    t[e + this.words] = n;
    const capacity = t.length / this.width;
    if (n === 0) {
      this.used--;
      this.segUsed[s]--;
      this.vacate(t, pos);
      if (this.dir.depth === 0 && capacity > MIN_ADDRESS_CAPACITY && this.used * 8 < capacity) this.rehash(s, capacity >>> 1);
      else if (this.dir.canMerge(s) && this.segUsed[s] <= ADDRESS_MERGE / 2) this.merge(s, h);
    } else if (this.segUsed[s] * 4 > capacity * 3) {
      if (capacity < ADDRESS_SEG) this.rehash(s, capacity * 2);
      else if (this.dir.canSplit(s)) this.split(s, h);
    }
  }

  /** Entries with a count, as address key → count (for checks). */
  entries(): Map<string, number> {
    const m = new Map<string, number>();
    for (let s = 0; s < this.segs.length; s++) {
      const t = this.segs[s];
      let n = 0;
      for (let e = 0; e < t.length; e += this.width) {
        if (t[e + this.words] === 0) continue;
        n++;
        m.set(this.words === 2 ? `${t[e]}:${t[e + 1]}` : `${t[e]}`, t[e + this.words]);
      }
      if (n !== this.segUsed[s]) throw new Error(`address count segment ${s} counts ${this.segUsed[s]}, holds ${n}`);
      if (!this.dir.consistent(s)) throw new Error(`address count directory entries of segment ${s}`);
    }
    return m;
  }

  /** Where the address (k0, k1) of hash h is in table t, or the empty entry where it would go. */
  private position(t: Int32Array, h: number, k0: number, k1: number): number {
    const w = this.width;
    const two = this.words === 2;
    const mask = t.length / w - 1;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const e = i * w;
      if (t[e + this.words] === 0) return i;
      if (t[e] === k0 && (!two || t[e + 1] === k1)) return i;
    }
  }

  /** Empties entry `hole` of table t, shifting later entries of its probe run back. */
  private vacate(t: Int32Array, hole: number): void {
    const w = this.width;
    const mask = t.length / w - 1;
    for (let j = (hole + 1) & mask; ; j = (j + 1) & mask) {
      const e = j * w;
      if (t[e + this.words] === 0) break;
      const home = addressHash(t[e], this.words === 2 ? t[e + 1] : 0) & mask;
      // an entry whose home lies cyclically in (hole, j] must stay where it is
      if (hole <= j ? hole < home && home <= j : hole < home || home <= j) continue;
      t.copyWithin(hole * w, e, e + w);
      hole = j;
    }
    t.fill(0, hole * w, hole * w + w);
  }

  /** Gives segment s a table of `capacity` entries, re-entering its own. */
  private rehash(s: number, capacity: number): void {
    const old = this.segs[s];
    this.segs[s] = new Int32Array(capacity * this.width);
    this.segUsed[s] = 0;
    this.reenter(old);
  }

  /** Splits segment s (which holds hash h) by its next hash bit. */
  private split(s: number, h: number): void {
    this.dir.split(s, h);
    this.segs.push(new Int32Array(ADDRESS_SEG * this.width));
    this.segUsed.push(0);
    this.rehash(s, ADDRESS_SEG);
  }

  /**
   * Merges segment s (which holds hash h) with its buddy, undoing a split, when both together hold
   * at most ADDRESS_MERGE entries; the last segment takes the freed number.
   */
  private merge(s: number, h: number): void {
    const b = this.dir.buddy(s, h);
    if (b === NIL || this.segUsed[s] + this.segUsed[b] > ADDRESS_MERGE) return;
    this.dir.merge(s, h);
    this.reenter(this.segs[b]);
    const z = this.dir.free(b);
    this.segs[b] = this.segs[z];
    this.segUsed[b] = this.segUsed[z];
    this.segs.pop();
    this.segUsed.pop();
  }

  segments(): number {
    return this.segs.length;
  }

  /** Enters the entries of a table that was replaced (their segments' counts already cleared). */
  private reenter(old: Int32Array): void {
    const w = this.width;
    let moved = 0;
    for (let e = 0; e < old.length; e += w) {
      if (old[e + this.words] === 0) continue;
      const k1 = this.words === 2 ? old[e + 1] : 0;
      const h = addressHash(old[e], k1);
      const s = this.dir.seg(h);
      const t = this.segs[s];
      t.set(old.subarray(e, e + w), this.position(t, h, old[e], k1) * w);
      this.segUsed[s]++;
      moved++;
    }
    memoryStoreWork.addressEntriesMoved += moved;
  }
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
  /**
   * Storage in chunks: up to CHUNK slots one chunk of `capacity` slots, then chunks of CHUNK slots
   * (slot s in chunk s >>> CHUNK_BITS). Per chunk, compact addresses (slots × size), then peer ids
   * (slots × 20) from idAt; and L ints per slot (up to CHUNK slots, followed by the index,
   * 2 × capacity). Chunk 0 in fields of its own, all chunks in lists only above CHUNK slots: a
   * list per small pool cost 2.3 bytes per peer in swarms of 50 (bench/heap-per-peer.mjs).
   */
  bytes0: Buffer = EMPTY;
  ints0: Int32Array = NO_INTS;
  bytesN: Buffer[] | null = null;
  intsN: Int32Array[] | null = null;
  /** where the peer ids start in a chunk of bytes (the same in every chunk) */
  idAt = 0;
  /** where the index starts in ints0 (up to CHUNK slots) */
  tableAt = 0;
  /** index positions are hash & mask (2 × capacity − 1), up to CHUNK slots */
  mask = 0;
  /** live peers per address, kept while the pool holds more than SCAN_MAX peers once counted */
  private addrs: AddressCounts | null = null;
  /** the index above CHUNK slots; null: it is in ints0 at tableAt */
  private index: SegmentedIndex | null = null;

  constructor(size: number, now: number) {
    this.size = size;
    this.base = now;
    this.resize(MIN_CAPACITY);
  }

  byteChunk(slot: number): Buffer {
    return slot < CHUNK ? this.bytes0 : this.bytesN![slot >>> CHUNK_BITS];
  }

  intChunk(slot: number): Int32Array {
    return slot < CHUNK ? this.ints0 : this.intsN![slot >>> CHUNK_BITS];
  }

  /** Int k of the slot (0 prev, 1 next, 2 expiry, 3 index position, 4 meta). */
  int(slot: number, k: number): number {
    return this.intChunk(slot)[(slot & CHUNK_MASK) * L + k];
  }

  setInt(slot: number, k: number, v: number): void {
    this.intChunk(slot)[(slot & CHUNK_MASK) * L + k] = v;
  }

  /** Hash of the slot's peer id. */
  idHash(slot: number): number {
    return hashId(this.byteChunk(slot), this.idAt + (slot & CHUNK_MASK) * ID);
  }

  /** The slot holds peer id `id`. */
  holds(id: Buffer, slot: number): boolean {
    return sameId(id, this.byteChunk(slot), this.idAt + (slot & CHUNK_MASK) * ID);
  }

  /** The slot of a peer id, or NIL. */
  find(id: Buffer): number {
    if (this.index !== null) return this.index.find(id);
    const t = this.ints0;
    const mask = this.mask;
    const at = this.tableAt;
    const bytes = this.bytes0;
    for (let i = hashId(id, 0) & mask; ; i = (i + 1) & mask) {
      const e = t[at + i];
      if (e === 0) return NIL;
      if (sameId(id, bytes, this.idAt + (e - 1) * ID)) return e - 1;
    }
  }

  /**
   * Drops every peer whose expiry is <= now: one by one, or, when the newest has expired too (the
   * whole swarm stopped announcing), all at once, leaving the pool empty and small.
   */
  purge(now: number): void {
    const limit = now - this.base;
    if (this.tail !== NIL && this.int(this.tail, 2) <= limit) {
      this.count = this.seeders = 0;
      this.head = this.tail = NIL;
      this.addrs = this.index = null;
      this.bytesN = this.intsN = null;
      this.resize(MIN_CAPACITY);
      return;
    }
    let removed = false;
    while (this.head !== NIL && this.int(this.head, 2) <= limit) {
      this.remove(this.head);
      removed = true;
    }
    if (removed) this.shrink();
  }

  /** The slot's IP (the address without its port) equals that of `addr`. */
  sameIp(slot: number, addr: Buffer): boolean {
    const bytes = this.byteChunk(slot);
    const at = (slot & CHUNK_MASK) * this.size;
    for (let i = this.size - 3; i >= 0; i--) if (bytes[at + i] !== addr[i]) return false;
    return true;
  }

  /**
   * Peers of the pool at the address of `addr` (its IPv4 address or IPv6 /64); a small pool is
   * scanned, stopping at `limit`, a large one keeps a table from the first count on.
   */
  peersAt(addr: Buffer, limit: number): number {
    if (this.addrs === null && this.count > SCAN_MAX) {
      const addrs = new AddressCounts(this.size === 6 ? 1 : 2, this.count);
      for (let s = 0; s < this.count; s++) addrs.add(this.byteChunk(s), (s & CHUNK_MASK) * this.size, 1);
      memoryStoreWork.addressEntriesMoved += this.count;
      this.addrs = addrs;
    }
    if (this.addrs !== null) return this.addrs.get(addr, 0);
    // at most SCAN_MAX peers: all in chunk 0
    const n = this.size === 6 ? 4 : 8;
    const bytes = this.bytes0;
    let found = 0;
    for (let at = 0, end = this.count * this.size; at < end; at += this.size) {
      let i = 0;
      while (i < n && bytes[at + i] === addr[i]) i++;
      if (i === n && ++found >= limit) break;
    }
    return found;
  }

  /** key fingerprint << 1 | counted bit */
  meta(slot: number): number {
    return this.int(slot, 4);
  }

  setMeta(slot: number, meta: number): void {
    this.setInt(slot, 4, meta);
  }

  /** Adds a new peer; returns its slot. */
  add(id: Buffer, addr: Buffer, seeder: boolean, expiry: number, now: number, meta: number): number {
    if (this.count === this.capacity) this.grow();
    let slot = this.count;
    if (seeder) {
      if (this.count > this.seeders) this.move(this.seeders, this.count);
      slot = this.seeders++;
    }
    this.count++;
    const bytes = this.byteChunk(slot);
    const at = this.idAt + (slot & CHUNK_MASK) * ID;
    for (let i = 0; i < ID; i++) bytes[at + i] = id[i];
    this.write(slot, addr);
    if (this.addrs !== null) this.addrs.add(addr, 0, 1);
    this.indexAdd(slot);
    this.setInt(slot, 2, this.relative(expiry, now));
    this.setInt(slot, 4, meta);
    this.insert(slot);
    return slot;
  }

  /** Re-announce of a known peer: new address (the port may change) and expiry. */
  refresh(slot: number, addr: Buffer, expiry: number, now: number): void {
    if (this.addrs !== null && !this.sameNet(slot, addr)) {
      this.addrs.add(this.byteChunk(slot), (slot & CHUNK_MASK) * this.size, -1);
      this.addrs.add(addr, 0, 1);
    }
    this.write(slot, addr);
    this.unlink(slot);
    this.setInt(slot, 2, this.relative(expiry, now));
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
    memoryStoreWork.peersRemoved++;
    if (this.addrs !== null) this.addrs.add(this.byteChunk(slot), (slot & CHUNK_MASK) * this.size, -1);
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

  /**
   * Gives memory back: up to CHUNK slots, halves the pool at a quarter full; above, drops the last
   * chunk once one and a half chunks are free (one chunk per call, so no call frees more).
   */
  shrink(): void {
    if (this.addrs !== null && this.count <= SCAN_MAX / 2) this.addrs = null;
    if (this.capacity > CHUNK) {
      if (this.count <= this.capacity - CHUNK - CHUNK / 2) this.dropChunk();
    } else if (this.capacity > MIN_CAPACITY && this.count <= this.capacity >>> 2) {
      let capacity = MIN_CAPACITY;
      while (capacity < this.count * 2) capacity *= 2;
      this.resize(capacity);
    }
  }

  /**
   * Picks up to `want` peers for an announcer (a seeder or a leecher) whose entry is at `self`
   * as a random contiguous window (wrapping) of its candidates, and writes them to `out`. A
   * seeder's candidates are the leecher region [seeders, count), a leecher's the whole pool, minus
   * `self` either way. Up to three slot ranges (the window may wrap and may straddle `self`,
   * which is skipped), each one Buffer copy, or two where it crosses into the next chunk.
   */
  select(
    self: number,
    seeder: boolean,
    want: number,
    random: () => number,
    withIds: boolean,
    segs: Int32Array,
    out: StoreAnnounceResult,
  ): void {
    const lo = seeder ? this.seeders : 0;
    const hi = this.count;
    // virtual index v in [lo, lo + m) is slot v, or v + 1 from `skip` on (skip = hi: none)
    const skip = self >= lo && self < hi ? self : hi;
    const m = hi - lo - (skip < hi ? 1 : 0);
    const k = Math.min(want, m);
    if (k <= 0) return;
    const start = lo + pick(random, m);
    const end = Math.min(start + k, lo + m);
    // entries written to segs: [from, to) slot pairs
    let n = virtualSegment(segs, 0, start, end, skip);
    if (end - start < k) n = virtualSegment(segs, n, lo, lo + k - (end - start), skip);
    const peers = Buffer.allocUnsafe(k * this.size);
    let pos = 0;
    for (let i = 0; i < n; i += 2) pos = this.copySlots(peers, pos, segs[i], segs[i + 1], 0, this.size);
    out.peers = peers;
    if (withIds) {
      const ids = Buffer.allocUnsafe(k * ID);
      pos = 0;
      for (let i = 0; i < n; i += 2) pos = this.copySlots(ids, pos, segs[i], segs[i + 1], this.idAt, ID);
      out.peerIds = ids;
    }
  }

  info(): PoolInfo {
    const info: PoolInfo = { seeders: this.seeders, leechers: this.count - this.seeders, capacity: this.capacity };
    if (this.index !== null) info.indexSegments = this.index.segments();
    if (this.addrs !== null && this.addrs.segments() > 1) info.addressSegments = this.addrs.segments();
    return info;
  }

  /** Throws if the slots, index and expiry chain disagree (for tests). */
  check(): void {
    const fail = (what: string): never => {
      throw new Error(`pool invariant broken: ${what}`);
    };
    if (this.seeders < 0 || this.seeders > this.count || this.count > this.capacity) fail('bounds');
    const chunks = Math.max(1, this.capacity / CHUNK);
    const listed =
      chunks === 1 ? this.bytesN === null && this.intsN === null : this.bytesN?.length === chunks && this.intsN?.length === chunks;
    if (!listed) fail('chunks');
    if (chunks > 1 && (this.bytesN![0] !== this.bytes0 || this.intsN![0] !== this.ints0)) fail('chunk 0');
    if ((this.index !== null) !== this.capacity > CHUNK) fail('index kind');
    let used = 0;
    if (this.index !== null) used = this.index.check();
    else for (let i = 0; i <= this.mask; i++) if (this.ints0[this.tableAt + i] !== 0) used++;
    if (used !== this.count) fail(`index holds ${used} of ${this.count}`);
    for (let s = 0; s < this.count; s++) {
      if (this.entry(this.int(s, 3)) !== s + 1) fail(`index position of ${s}`);
      const at = this.idAt + (s & CHUNK_MASK) * ID;
      if (this.find(this.byteChunk(s).subarray(at, at + ID)) !== s) fail(`find(${s})`);
    }
    let seen = 0;
    let prev = NIL;
    for (let s = this.head; s !== NIL; s = this.int(s, 1)) {
      if (++seen > this.count) fail('cycle');
      if (this.int(s, 0) !== prev) fail(`prev of ${s}`);
      if (prev !== NIL && this.int(prev, 2) > this.int(s, 2)) fail('expiry order');
      prev = s;
    }
    if (seen !== this.count || this.tail !== prev) fail('chain length or tail');
    if (this.addrs !== null) {
      const n = this.size === 6 ? 1 : 2;
      const expected = new Map<string, number>();
      for (let s = 0; s < this.count; s++) {
        const b = this.byteChunk(s);
        const at = (s & CHUNK_MASK) * this.size;
        const k = n === 2 ? `${word(b, at)}:${word(b, at + 4)}` : `${word(b, at)}`;
        expected.set(k, (expected.get(k) ?? 0) + 1);
      }
      const held = this.addrs.entries();
      if (held.size !== expected.size || this.addrs.used !== expected.size) fail('address count entries');
      for (const [k, c] of expected) if (held.get(k) !== c) fail(`address count of ${k}`);
    }
  }

  /** Copies the `width` bytes at `from` of slots [a, b) (chunk by chunk) to out[pos]; returns the new pos. */
  private copySlots(out: Buffer, pos: number, a: number, b: number, from: number, width: number): number {
    while (a < b) {
      const c = a >>> CHUNK_BITS;
      const end = Math.min(b, (c + 1) << CHUNK_BITS);
      const off = a & CHUNK_MASK;
      pos += this.byteChunk(a).copy(out, pos, from + off * width, from + (off + end - a) * width);
      a = end;
    }
    return pos;
  }

  /** Expiry relative to base; rebases (O(n), once per ~24 days of a pool) if it overflows. */
  private relative(expiry: number, now: number): number {
    let rel = Math.ceil(expiry - this.base);
    if (rel > INT32_MAX || rel < INT32_MIN) {
      for (let s = 0; s < this.count; s++) this.setInt(s, 2, clampInt32(this.int(s, 2) + this.base - now));
      this.base = now;
      rel = clampInt32(Math.ceil(expiry - now));
    }
    return rel;
  }

  /** The slot's address (IPv4 address, IPv6 /64) equals that of `addr`. */
  private sameNet(slot: number, addr: Buffer): boolean {
    const bytes = this.byteChunk(slot);
    const at = (slot & CHUNK_MASK) * this.size;
    for (let i = (this.size === 6 ? 4 : 8) - 1; i >= 0; i--) if (bytes[at + i] !== addr[i]) return false;
    return true;
  }

  /** A byte loop: Buffer.copy costs more than this for 6 or 18 bytes. */
  private write(slot: number, addr: Buffer): void {
    const size = this.size;
    const bytes = this.byteChunk(slot);
    const at = (slot & CHUNK_MASK) * size;
    for (let i = 0; i < size; i++) bytes[at + i] = addr[i];
  }

  /** Inserts `slot` in the expiry chain, searching from the tail (where a refresh lands). */
  private insert(slot: number): void {
    const expiry = this.int(slot, 2);
    let p = this.tail;
    while (p !== NIL && this.int(p, 2) > expiry) p = this.int(p, 0);
    const n = p === NIL ? this.head : this.int(p, 1);
    this.setInt(slot, 0, p);
    this.setInt(slot, 1, n);
    if (p === NIL) this.head = slot;
    else this.setInt(p, 1, slot);
    if (n === NIL) this.tail = slot;
    else this.setInt(n, 0, slot);
  }

  private unlink(slot: number): void {
    const p = this.int(slot, 0);
    const n = this.int(slot, 1);
    if (p === NIL) this.head = n;
    else this.setInt(p, 1, n);
    if (n === NIL) this.tail = p;
    else this.setInt(n, 0, p);
  }

  /** The index entry at `pos` (slot + 1, 0 = empty). */
  private entry(pos: number): number {
    return this.index !== null ? this.index.get(pos) : this.ints0[this.tableAt + pos];
  }

  private setEntry(pos: number, e: number): void {
    if (this.index !== null) this.index.set(pos, e);
    else this.ints0[this.tableAt + pos] = e;
  }

  /** Enters the id at `slot` in the index (linear probing; stored as slot + 1, 0 is empty). */
  private indexAdd(slot: number): void {
    if (this.index !== null) {
      this.index.add(slot);
      return;
    }
    const ints = this.ints0;
    const mask = this.mask;
    const t = this.tableAt;
    for (let i = hashId(this.bytes0, this.idAt + slot * ID) & mask; ; i = (i + 1) & mask) {
      if (ints[t + i] === 0) {
        ints[t + i] = slot + 1;
        ints[slot * L + 3] = i;
        return;
      }
    }
  }

  /** Takes `slot` out of the index, shifting later entries of its probe run back. */
  private indexDelete(slot: number): void {
    if (this.index !== null) {
      this.index.delete(slot);
      return;
    }
    const ints = this.ints0;
    const bytes = this.bytes0;
    const mask = this.mask;
    const t = this.tableAt;
    let hole = ints[slot * L + 3];
    for (let j = (hole + 1) & mask; ; j = (j + 1) & mask) {
      const e = ints[t + j];
      if (e === 0) break;
      const home = hashId(bytes, this.idAt + (e - 1) * ID) & mask;
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
    const bf = this.byteChunk(from);
    const bt = this.byteChunk(to);
    const af = (from & CHUNK_MASK) * size;
    const at = (to & CHUNK_MASK) * size;
    for (let i = 0; i < size; i++) bt[at + i] = bf[af + i];
    const idFrom = this.idAt + (from & CHUNK_MASK) * ID;
    const idTo = this.idAt + (to & CHUNK_MASK) * ID;
    for (let i = 0; i < ID; i++) bt[idTo + i] = bf[idFrom + i];
    const f = this.intChunk(from);
    const t = this.intChunk(to);
    const fo = (from & CHUNK_MASK) * L;
    const tout = (to & CHUNK_MASK) * L;
    const p = f[fo];
    const n = f[fo + 1];
    const pos = f[fo + 3];
    t[tout] = p;
    t[tout + 1] = n;
    t[tout + 2] = f[fo + 2];
    t[tout + 3] = pos;
    t[tout + 4] = f[fo + 4];
    this.setEntry(pos, to + 1);
    if (p === NIL) this.head = to;
    else this.setInt(p, 1, to);
    if (n === NIL) this.tail = to;
    else this.setInt(n, 0, to);
  }

  /** Exchanges the peers at slots a and b, keeping each one's place in the expiry chain. */
  private swap(a: number, b: number): void {
    if (a === b) return;
    const size = this.size;
    const ba = this.byteChunk(a);
    const bb = this.byteChunk(b);
    for (let i = 0, x = (a & CHUNK_MASK) * size, y = (b & CHUNK_MASK) * size; i < size; i++) {
      const t = ba[x + i];
      ba[x + i] = bb[y + i];
      bb[y + i] = t;
    }
    for (let i = 0, x = this.idAt + (a & CHUNK_MASK) * ID, y = this.idAt + (b & CHUNK_MASK) * ID; i < ID; i++) {
      const t = ba[x + i];
      ba[x + i] = bb[y + i];
      bb[y + i] = t;
    }
    const pa = this.int(a, 0);
    const na = this.int(a, 1);
    const ea = this.int(a, 2);
    const qa = this.int(a, 3);
    const ma = this.int(a, 4);
    const pb = this.int(b, 0);
    const nb = this.int(b, 1);
    const eb = this.int(b, 2);
    const qb = this.int(b, 3);
    const mb = this.int(b, 4);
    // the peer from a now lives at b and vice versa; a pointer to a or b is renamed
    this.setInt(b, 0, pa === b ? a : pa);
    this.setInt(b, 1, na === b ? a : na);
    this.setInt(b, 2, ea);
    this.setInt(b, 3, qa);
    this.setInt(b, 4, ma);
    this.setInt(a, 0, pb === a ? b : pb);
    this.setInt(a, 1, nb === a ? b : nb);
    this.setInt(a, 2, eb);
    this.setInt(a, 3, qb);
    this.setInt(a, 4, mb);
    this.setEntry(qa, b + 1);
    this.setEntry(qb, a + 1);
    if (pa === NIL) this.head = b;
    else if (pa !== b) this.setInt(pa, 1, b);
    if (na === NIL) this.tail = b;
    else if (na !== b) this.setInt(na, 0, b);
    if (pb === NIL) this.head = a;
    else if (pb !== a) this.setInt(pb, 1, a);
    if (nb === NIL) this.tail = a;
    else if (nb !== a) this.setInt(nb, 0, a);
  }

  /** Room for one more peer: the one chunk doubles up to CHUNK slots; above, one more chunk. */
  private grow(): void {
    if (this.capacity < CHUNK) {
      this.resize(this.capacity * 2);
      return;
    }
    if (this.capacity === CHUNK) {
      // the index leaves ints0 for a SegmentedIndex, built from these CHUNK ids once
      const ints = new Int32Array(CHUNK * L);
      ints.set(this.ints0.subarray(0, CHUNK * L));
      this.ints0 = ints;
      this.bytesN = [this.bytes0];
      this.intsN = [ints];
      memoryStoreWork.slotsCopied += CHUNK;
      this.index = new SegmentedIndex(this, this.count);
      for (let s = 0; s < this.count; s++) this.index.add(s);
      memoryStoreWork.indexEntriesMoved += this.count;
      this.tableAt = 0;
      this.mask = 0;
    }
    this.bytesN!.push(Buffer.allocUnsafeSlow(CHUNK * (this.size + ID)));
    this.intsN!.push(new Int32Array(CHUNK * L));
    this.capacity += CHUNK;
  }

  /** Drops the last chunk (empty: slots are dense); back at CHUNK slots, the index returns to ints0. */
  private dropChunk(): void {
    this.bytesN!.pop();
    this.intsN!.pop();
    this.capacity -= CHUNK;
    if (this.capacity === CHUNK) {
      const ints = new Int32Array(CHUNK * (L + 2));
      ints.set(this.ints0.subarray(0, CHUNK * L));
      this.ints0 = ints;
      this.bytesN = this.intsN = null;
      memoryStoreWork.slotsCopied += CHUNK;
      this.index = null;
      this.tableAt = CHUNK * L;
      this.mask = 2 * CHUNK - 1;
      for (let s = 0; s < this.count; s++) this.indexAdd(s);
      memoryStoreWork.indexEntriesMoved += this.count;
    }
  }

  /** Reallocates the one chunk for `capacity` slots (a power of two, at most CHUNK) and rebuilds the index. */
  private resize(capacity: number): void {
    const size = this.size;
    const count = this.count;
    const bytes = Buffer.allocUnsafeSlow(capacity * (size + ID));
    const ints = new Int32Array(capacity * (L + 2));
    if (count > 0) {
      this.bytes0.copy(bytes, 0, 0, count * size);
      this.bytes0.copy(bytes, capacity * size, this.idAt, this.idAt + count * ID);
      ints.set(this.ints0.subarray(0, count * L));
      memoryStoreWork.slotsCopied += count;
    }
    this.bytes0 = bytes;
    this.ints0 = ints;
    this.idAt = capacity * size;
    this.tableAt = capacity * L;
    this.mask = 2 * capacity - 1;
    this.capacity = capacity;
    for (let s = 0; s < count; s++) this.indexAdd(s);
    memoryStoreWork.indexEntriesMoved += count;
  }
}

/**
 * The peer-id index of a large pool (extendible hashing): a directory of 2^depth entries, picked
 * by the top bits of the id's hash, names the segment; a segment is an open-addressing table of
 * SEG entries (slot + 1, 0 = empty) probed from the low bits. A full segment splits in two by one
 * more hash bit, rehashing its own entries only (at most SEG_FULL); the directory doubles when a
 * segment splits deeper than it (one int per ≈ 1,000–2,000 peers). Two buddy segments that hold
 * SEG_MERGE entries together merge again as the pool shrinks (the directory stays as it is). So no
 * insertion or deletion moves more than SEG_FULL + SEG_MERGE entries, whatever the pool's size. A
 * slot's index position (ints[slot * L + 3]) is segment << SEG_BITS | entry. At CHUNK slots the
 * index moves back into the pool's one chunk.
 */
class SegmentedIndex {
  private readonly pool: Pool;
  private readonly segs: Int32Array[] = [];
  /** entries held, per segment */
  private readonly used: number[] = [];
  private readonly dir: SegmentDirectory;

  /** `expected`: entries about to be added; enough segments for them at load 1/4, so none splits */
  constructor(pool: Pool, expected: number) {
    this.pool = pool;
    let depth = 0;
    while (SEG << depth < expected * 4) depth++;
    this.dir = new SegmentDirectory(depth);
    for (let s = 0; s < 1 << depth; s++) {
      this.segs.push(new Int32Array(SEG));
      this.used.push(0);
    }
  }

  find(id: Buffer): number {
    const h = hashId(id, 0);
    const t = this.segs[this.dir.seg(h)];
    const pool = this.pool;
    for (let i = h & SEG_MASK; ; i = (i + 1) & SEG_MASK) {
      const e = t[i];
      if (e === 0) return NIL;
      if (pool.holds(id, e - 1)) return e - 1;
    }
  }

  segments(): number {
    return this.segs.length;
  }

  get(pos: number): number {
    return this.segs[pos >>> SEG_BITS][pos & SEG_MASK];
  }

  set(pos: number, e: number): void {
    this.segs[pos >>> SEG_BITS][pos & SEG_MASK] = e;
  }

  add(slot: number): void {
    const pool = this.pool;
    const h = pool.idHash(slot);
    let s = this.dir.seg(h);
    while (this.used[s] >= SEG_FULL && this.dir.canSplit(s)) {
      this.split(s, h);
      s = this.dir.seg(h);
    }
    this.put(s, h, slot);
  }

  private put(s: number, h: number, slot: number): void {
    const t = this.segs[s];
    for (let i = h & SEG_MASK; ; i = (i + 1) & SEG_MASK) {
      if (t[i] === 0) {
        t[i] = slot + 1;
        this.pool.setInt(slot, 3, (s << SEG_BITS) | i);
        this.used[s]++;
        return;
      }
    }
  }

  /** Takes `slot` out, shifting later entries of its probe run back (within its segment). */
  delete(slot: number): void {
    const pool = this.pool;
    const pos = pool.int(slot, 3);
    const s = pos >>> SEG_BITS;
    const t = this.segs[s];
    const base = s << SEG_BITS;
    let hole = pos & SEG_MASK;
    for (let j = (hole + 1) & SEG_MASK; ; j = (j + 1) & SEG_MASK) {
      const e = t[j];
      if (e === 0) break;
      const home = pool.idHash(e - 1) & SEG_MASK;
      // an entry whose home lies cyclically in (hole, j] must stay where it is
      if (hole <= j ? hole < home && home <= j : hole < home || home <= j) continue;
      t[hole] = e;
      pool.setInt(e - 1, 3, base | hole);
      hole = j;
    }
    t[hole] = 0;
    this.used[s]--;
    // the slot still holds its id: the pool moves another peer into it only after this
    if (this.used[s] <= SEG_MERGE / 2 && this.dir.canMerge(s)) this.merge(s, pool.idHash(slot));
  }

  /**
   * Merges segment s (which holds hash h) with its buddy, undoing a split, when both together
   * hold at most SEG_MERGE entries: at most SEG_MERGE entries move, and the last segment takes
   * the freed number (its entries' positions renamed, at most SEG_FULL).
   */
  private merge(s: number, h: number): void {
    const b = this.dir.buddy(s, h);
    if (b === NIL || this.used[s] + this.used[b] > SEG_MERGE) return;
    this.dir.merge(s, h);
    const pool = this.pool;
    const from = this.segs[b];
    let moved = 0;
    for (let i = 0; i < SEG; i++) {
      const e = from[i];
      if (e === 0) continue;
      this.put(s, pool.idHash(e - 1), e - 1);
      moved++;
    }
    const z = this.dir.free(b);
    if (b !== z) {
      const t = this.segs[z];
      this.segs[b] = t;
      this.used[b] = this.used[z];
      for (let i = 0; i < SEG; i++) {
        if (t[i] === 0) continue;
        pool.setInt(t[i] - 1, 3, (b << SEG_BITS) | i);
        moved++;
      }
    }
    this.segs.pop();
    this.used.pop();
    memoryStoreWork.indexEntriesMoved += moved;
  }

  /** Splits segment s (which holds hash h) by its next hash bit. */
  private split(s: number, h: number): void {
    this.dir.split(s, h);
    this.segs.push(new Int32Array(SEG));
    this.used.push(0);
    const old = this.segs[s];
    this.segs[s] = new Int32Array(SEG);
    this.used[s] = 0;
    const pool = this.pool;
    let moved = 0;
    for (let i = 0; i < SEG; i++) {
      const e = old[i];
      if (e === 0) continue;
      const eh = pool.idHash(e - 1);
      this.put(this.dir.seg(eh), eh, e - 1);
      moved++;
    }
    memoryStoreWork.indexEntriesMoved += moved;
  }

  /** Entries held, after checking the directory and per-segment counts (for tests). */
  check(): number {
    let total = 0;
    for (let s = 0; s < this.segs.length; s++) {
      let n = 0;
      for (const e of this.segs[s]) if (e !== 0) n++;
      if (n !== this.used[s]) throw new Error(`pool invariant broken: segment ${s} counts ${this.used[s]}, holds ${n}`);
      if (!this.dir.consistent(s)) throw new Error(`pool invariant broken: directory entries of segment ${s}`);
      total += n;
    }
    return total;
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

/** The 4 bytes at buf[at] as an int32 (little-endian). */
function word(buf: Uint8Array, at: number): number {
  return buf[at] | (buf[at + 1] << 8) | (buf[at + 2] << 16) | (buf[at + 3] << 24);
}

/** Hash of an address key (k1 = 0 for IPv4), seeded like the id hash. */
function addressHash(k0: number, k1: number): number {
  let h = Math.imul(SEED ^ k0, 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 15) ^ k1, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** id (20 bytes) equals buf[at, at + 20); compared from the end, where client ids are random. */
function sameId(id: Buffer, buf: Buffer, at: number): boolean {
  for (let i = ID - 1; i >= 0; i--) if (id[i] !== buf[at + i]) return false;
  return true;
}

/**
 * Fingerprint of a BEP 3 key: 31 bits, never 0 for a key; 0 for none (undefined or ''). Seeded
 * like the id hash.
 */
function keyFingerprint(key: string | undefined): number {
  if (key === undefined || key.length === 0) return 0;
  let h = SEED ^ 0x2545f491;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  h ^= h >>> 16;
  return h & 0x7fffffff || 1;
}

class Swarm {
  completed = 0;
  /** time (ms) of the last announce, for the retention */
  last: number;
  v4: Pool | null = null;
  v6: Pool | null = null;
  /** its key in MemoryStore.swarms (the same string: no copy) */
  readonly key: string;
  /** neighbours in the list of retained swarms (MemoryStore.oldest), while in it */
  older: Swarm | null = null;
  newer: Swarm | null = null;
  constructor(key: string, now: number) {
    this.key = key;
    this.last = now;
  }
}

/** Peers a swarm holds (live or not yet purged). */
function held(swarm: Swarm): number {
  return (swarm.v4 === null ? 0 : swarm.v4.count) + (swarm.v6 === null ? 0 : swarm.v6.count);
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
  /**
   * The swarms held only for their completed count, a list through Swarm.older/newer in the order
   * they came to be so (one announced to again moves to the newest end): the oldest is shed when
   * a new swarm needs room. In the Swarm objects rather than a second Map: 24 bytes per swarm
   * instead of ≈ 77 per retained swarm (measured).
   */
  private oldest: Swarm | null = null;
  private newest: Swarm | null = null;
  private retainedCount = 0;
  private readonly random: () => number;
  private readonly retentionMs: number;
  private readonly maxPeers: number;
  private readonly maxSwarms: number;
  /** retained swarms dropped to make room for new ones */
  private shedCount = 0;
  /** scratch for Pool.select: up to three [from, to) slot ranges */
  private readonly segs = new Int32Array(8);
  /** running totals for stats(): peers held, swarms holding at least one */
  private peerTotal = 0;
  private activeSwarms = 0;
  /** sweepSome's place in `swarms` (a live iterator); null between passes */
  private cursor: IterableIterator<[string, Swarm]> | null = null;
  /** stoppers of the running timed sweepers (close() stops them) */
  private readonly sweepers = new Set<() => void>();

  constructor(options: MemoryStoreOptions = {}) {
    this.random = options.random ?? Math.random;
    const retention = options.swarmRetentionMs ?? DEFAULT_SWARM_RETENTION_MS;
    if (typeof retention !== 'number' || !(retention >= 0 && retention < Infinity)) {
      throw new RangeError(`MemoryStore: swarmRetentionMs must be a finite number >= 0, got ${String(retention)}`);
    }
    this.retentionMs = retention;
    this.maxPeers = limitOption('maxPeers', options.maxPeers, DEFAULT_MEMORY_MAX_PEERS);
    this.maxSwarms = limitOption('maxSwarms', options.maxSwarms, DEFAULT_MEMORY_MAX_SWARMS);
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
    const hash = req.infoHash.toString('latin1');
    const stopped = req.event === 'stopped';
    const result: StoreAnnounceResult = { complete: 0, incomplete: 0, downloaded: 0, peers: EMPTY };
    let swarm = this.swarms.get(hash);
    if (swarm === undefined) {
      if (stopped || this.peerTotal >= this.maxPeers || !this.roomForSwarm()) {
        if (!stopped) result.refused = 'store-full';
        if (req.withPeerIds) result.peerIds = EMPTY;
        return result;
      }
      swarm = new Swarm(hash, now);
      this.swarms.set(hash, swarm);
    }
    const before = held(swarm);
    if (swarm.v4 !== null) swarm.v4.purge(now);
    if (swarm.v6 !== null) swarm.v6.purge(now);
    if (held(swarm) === 0 && now - swarm.last >= this.retentionMs) swarm.completed = 0;
    swarm.last = now;

    let pool = req.family === 4 ? swarm.v4 : swarm.v6;
    let slot = pool === null ? NIL : pool.find(req.peerId);
    const fingerprint = keyFingerprint(req.key);
    // an entry is changed only from its own IP, or with the key it holds
    const accepted =
      slot === NIL || pool!.sameIp(slot, req.addr) || (fingerprint !== 0 && pool!.meta(slot) >>> 1 === fingerprint);
    const refused = slot === NIL && !stopped ? this.refusal(req, swarm, pool, before) : undefined;
    if (refused !== undefined) {
      result.refused = refused;
    } else if (stopped) {
      if (slot !== NIL && accepted) {
        pool!.remove(slot);
        pool!.shrink();
      }
    } else if (accepted) {
      const counting = req.seeder && req.event === 'completed';
      if (pool === null) {
        pool = new Pool(size, now);
        if (req.family === 4) swarm.v4 = pool;
        else swarm.v6 = pool;
      }
      const expiry = now + req.peerLifetimeMs;
      if (slot === NIL) {
        slot = pool.add(req.peerId, req.addr, req.seeder, expiry, now, (fingerprint << 1) | (counting ? 1 : 0));
        if (counting) swarm.completed++;
      } else {
        let counted = pool.meta(slot) & 1;
        if (req.seeder !== slot < pool.seeders) {
          slot = pool.setSeeder(slot, req.seeder);
          // a leecher becoming a seeder with event=completed, once per peer
          if (counting && counted === 0) {
            swarm.completed++;
            counted = 1;
          }
        }
        pool.setMeta(slot, (fingerprint << 1) | counted);
        pool.refresh(slot, req.addr, expiry, now);
      }
    }
    const v4 = swarm.v4;
    const v6 = swarm.v6;
    const seeders = (v4 === null ? 0 : v4.seeders) + (v6 === null ? 0 : v6.seeders);
    result.complete = seeders;
    result.incomplete = held(swarm) - seeders;
    result.downloaded = swarm.completed;
    // a refused announcer is answered with `self` at the entry it could not change
    if (!stopped && req.numWant > 0 && pool !== null) {
      pool.select(slot, req.seeder, req.numWant, this.random, req.withPeerIds, this.segs, result);
    }
    if (req.withPeerIds && result.peerIds === undefined) result.peerIds = EMPTY;
    this.settle(hash, swarm, before, now, true);
    return result;
  }

  /**
   * Why a new peer cannot be stored (the swarm purged; `before`: peers it held before the purge),
   * or undefined. Known peers are never asked.
   */
  private refusal(req: StoreAnnounce, swarm: Swarm, pool: Pool | null, before: number): RefusalReason | undefined {
    const perAddress = req.maxPeersPerAddress;
    if (perAddress !== undefined) {
      // above SCAN_MAX peers always asked, so that the counts start at SCAN_MAX + 1 peers, not at a
      // high limit's worth in one announce
      const small = pool === null || (pool.count < perAddress && pool.count <= SCAN_MAX);
      const there = small ? (pool?.count ?? 0) : pool!.peersAt(req.addr, perAddress);
      if (there >= perAddress) return 'address-full';
    }
    const live = held(swarm);
    if (req.maxPeersPerSwarm !== undefined && live >= req.maxPeersPerSwarm) return 'swarm-full';
    // the running total still counts the peers this announce purged
    if (this.peerTotal - before + live >= this.maxPeers) return 'store-full';
    return undefined;
  }

  /** Whether a new swarm may be stored, shedding the longest-retained swarm if that makes room. */
  private roomForSwarm(): boolean {
    if (this.swarms.size < this.maxSwarms) return true;
    const shed = this.oldest;
    if (shed === null) return false;
    this.unlist(shed);
    this.swarms.delete(shed.key);
    this.shedCount++;
    return true;
  }

  private listed(swarm: Swarm): boolean {
    return swarm.older !== null || this.oldest === swarm;
  }

  /** Appends a swarm to the retained list as its newest. */
  private list(swarm: Swarm): void {
    swarm.older = this.newest;
    swarm.newer = null;
    if (this.newest === null) this.oldest = swarm;
    else this.newest.newer = swarm;
    this.newest = swarm;
    this.retainedCount++;
  }

  private unlist(swarm: Swarm): void {
    if (swarm.older === null) this.oldest = swarm.newer;
    else swarm.older.newer = swarm.newer;
    if (swarm.newer === null) this.newest = swarm.older;
    else swarm.newer.older = swarm.older;
    swarm.older = swarm.newer = null;
    this.retainedCount--;
  }

  async scrape(infoHashes: Buffer[], now: number): Promise<ScrapeEntry[]> {
    const entries: ScrapeEntry[] = [];
    for (const infoHash of infoHashes) {
      const key = infoHash.toString('latin1');
      const swarm = this.swarms.get(key);
      entries.push(swarm === undefined ? zeros(infoHash) : this.count(key, infoHash, swarm, now));
    }
    return entries;
  }

  async scrapeAll(now: number): Promise<ScrapeEntry[]> {
    const entries: ScrapeEntry[] = [];
    for (const [key, swarm] of this.swarms) {
      const entry = this.count(key, null, swarm, now);
      if (entry.complete + entry.incomplete > 0 || entry.downloaded > 0) entries.push(entry);
    }
    return entries;
  }

  /**
   * Peers held and swarms holding peers, from running totals (no walk). Expired peers count
   * until a sweep or an announce or scrape of their swarm drops them; swarms kept only for their
   * completed count are not counted (see size()).
   */
  async stats(): Promise<{ peers: number; swarms: number }> {
    return { peers: this.peerTotal, swarms: this.activeSwarms };
  }

  /**
   * Swarms in the map, how many of them hold no peer (kept for their completed count), and how
   * many retained swarms were shed so far to make room for new swarms (maxSwarms). No walk.
   */
  size(): { swarms: number; retained: number; shed: number } {
    return { swarms: this.swarms.size, retained: this.retainedCount, shed: this.shedCount };
  }

  /**
   * Drops the expired peers of every swarm, the swarms left without peers and without a completed
   * count, and those whose retention has passed. Holds the event loop for the whole walk: for
   * tests and small stores; a server uses startSweeper.
   */
  sweep(now: number): void {
    for (const [key, swarm] of this.swarms) this.sweepOne(key, swarm, now);
  }

  /**
   * Sweeps the next `budget` swarms (as sweep does), continuing where the previous call stopped.
   * Returns true when it reached the end of a pass (the next call starts a new one).
   */
  sweepSome(now: number, budget: number): boolean {
    let it = this.cursor;
    if (it === null) it = this.cursor = this.swarms.entries();
    for (let i = 0; i < budget; i++) {
      const next = it.next();
      if (next.done === true) {
        this.cursor = null;
        return true;
      }
      this.sweepOne(next.value[0], next.value[1], now);
    }
    return false;
  }

  /**
   * Sweeps continuously on unref'd timers, a full pass about every `intervalMs`, spread over the
   * interval in steps of `batch` swarms (sweepSome), so that no step holds the event loop for
   * long. Returns the function that stops it; close() stops it too.
   */
  startSweeper(intervalMs: number, clock: () => number = Date.now, options: SweeperOptions = {}): () => void {
    const batch = options.batch ?? SWEEP_BATCH;
    if (!(intervalMs > 0) || !(Number.isInteger(batch) && batch > 0)) {
      throw new RangeError('startSweeper: intervalMs must be > 0 and batch a positive integer');
    }
    let timer: NodeJS.Timeout | undefined;
    let delay = 0;
    let stopped = false;
    /** the pause between steps of the pass starting now: the interval over its number of steps */
    const pace = () => (delay = intervalMs / Math.max(1, Math.ceil(this.swarms.size / batch)));
    const step = () => {
      if (stopped) return;
      const done = this.sweepSome(clock(), batch);
      if (done) pace();
      timer = setTimeout(step, delay);
      timer.unref();
    };
    pace();
    timer = setTimeout(step, delay);
    timer.unref();
    const stop = () => {
      stopped = true;
      clearTimeout(timer);
      this.sweepers.delete(stop);
    };
    this.sweepers.add(stop);
    return stop;
  }

  /** Seeders, leechers and capacity per family of one swarm (for tests and debugging). */
  inspect(infoHash: Buffer): { completed: number; v4: PoolInfo | null; v6: PoolInfo | null } | undefined {
    const swarm = this.swarms.get(infoHash.toString('latin1'));
    if (swarm === undefined) return undefined;
    return { completed: swarm.completed, v4: swarm.v4?.info() ?? null, v6: swarm.v6?.info() ?? null };
  }

  /** Throws if any pool's internal structure or the running totals are inconsistent (for tests). */
  checkInvariants(): void {
    let peers = 0;
    let active = 0;
    for (const swarm of this.swarms.values()) {
      swarm.v4?.check();
      swarm.v6?.check();
      if (swarm.v4?.count === 0 || swarm.v6?.count === 0) throw new Error('an empty pool was kept');
      const n = held(swarm);
      if (n === 0 && swarm.completed === 0) throw new Error('a swarm without peers nor completed count was kept');
      peers += n;
      if (n > 0) active++;
    }
    let listed = 0;
    for (let s = this.oldest; s !== null; s = s.newer) {
      if (++listed > this.swarms.size) throw new Error('retained list cycles');
      if (this.swarms.get(s.key) !== s || held(s) !== 0) throw new Error('a retained swarm holds peers or is gone');
      if ((s.newer === null ? this.newest : s.newer.older) !== s) throw new Error('retained list links');
    }
    if (listed !== this.retainedCount || listed !== this.swarms.size - active) throw new Error('retained swarms miscounted');
    if (peers !== this.peerTotal || active !== this.activeSwarms) {
      throw new Error(`stats totals ${this.peerTotal}/${this.activeSwarms}, counted ${peers}/${active}`);
    }
  }

  async close(): Promise<void> {
    for (const stop of [...this.sweepers]) stop();
    this.swarms.clear();
    this.oldest = this.newest = null;
    this.retainedCount = 0;
    this.cursor = null;
    this.peerTotal = 0;
    this.activeSwarms = 0;
  }

  private sweepOne(key: string, swarm: Swarm, now: number): void {
    const before = held(swarm);
    if (swarm.v4 !== null) swarm.v4.purge(now);
    if (swarm.v6 !== null) swarm.v6.purge(now);
    this.settle(key, swarm, before, now);
  }

  /**
   * The scrape entry of a swarm at `now` (zeros once forgotten), purging and settling it;
   * `infoHash` null: made from the key.
   */
  private count(key: string, infoHash: Buffer | null, swarm: Swarm, now: number): ScrapeEntry {
    const before = held(swarm);
    let complete = 0;
    let incomplete = 0;
    for (const pool of [swarm.v4, swarm.v6]) {
      if (pool === null) continue;
      pool.purge(now);
      complete += pool.seeders;
      incomplete += pool.count - pool.seeders;
    }
    const kept = this.settle(key, swarm, before, now);
    return {
      infoHash: infoHash ?? Buffer.from(key, 'latin1'),
      complete,
      downloaded: kept ? swarm.completed : 0,
      incomplete,
    };
  }

  /**
   * After an operation that may have added or dropped peers (`before`: peers held before it):
   * updates the totals, frees empty pools, and drops the swarm if it holds no peers and has no
   * completed count or its retention has passed. Returns whether the swarm is kept.
   */
  private settle(key: string, swarm: Swarm, before: number, now: number, announced = false): boolean {
    if (swarm.v4 !== null && swarm.v4.count === 0) swarm.v4 = null;
    if (swarm.v6 !== null && swarm.v6.count === 0) swarm.v6 = null;
    const after = held(swarm);
    if (after !== before) {
      this.peerTotal += after - before;
      if (before === 0) this.activeSwarms++;
      else if (after === 0) this.activeSwarms--;
    }
    if (after === 0 && (swarm.completed === 0 || now - swarm.last >= this.retentionMs)) {
      this.swarms.delete(key);
      if (this.listed(swarm)) this.unlist(swarm);
      return false;
    }
    if (after > 0) {
      if (before === 0 && this.listed(swarm)) this.unlist(swarm);
    } else if (before > 0 || announced) {
      // newly retained, or announced to while retained: to the newest end of the shedding order
      if (this.listed(swarm)) this.unlist(swarm);
      this.list(swarm);
    }
    return true;
  }
}

/** A store-wide limit option: a non-negative integer, 0 for none (kept as Infinity). */
function limitOption(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new RangeError(`MemoryStore: ${name} must be an integer >= 0 (0: no limit), got ${String(v)}`);
  }
  return v === 0 ? Infinity : v;
}

function zeros(infoHash: Buffer): ScrapeEntry {
  return { infoHash, complete: 0, downloaded: 0, incomplete: 0 };
}
