/*
 * The Lua scripts of the Redis store, loaded with ioredis defineCommand (sent by EVALSHA).
 * Both take the seven keys of one swarm, all with the hash tag {<info_hash hex>} (one slot), and
 * derive the chunk keys of big pools from them (POOL_CHUNK):
 *   KEYS[1] m   the swarm header (HEADER_BYTES, big-endian, one struct.unpack: completed, last
 *               announce, peer lifetime, the TTL deadline of m, r4 and x; per pool n (peers),
 *               s (seeders), the earliest announce time of its peers (a lower bound), its purge
 *               cursor; the TTL deadline of p6 and r6; the index's seed (xkey), 0 while unsharded), followed by the IPv4 pool's compact
 *               addresses (6 bytes a slot);
 *   KEYS[2] r4  the IPv4 peers' records, 38 bytes a slot: the key record (1 if the peer announced
 *               a BEP 3 key | its 8-byte fingerprint (writeKeyRecord), or 9 zeros) | announce
 *               time (double, ms, the caller's clock) | 1 once counted completed | peer id;
 *   KEYS[3] p6  the IPv6 pool's addresses (18 bytes a slot);
 *   KEYS[4] r6  the IPv6 peers' records;
 *   KEYS[5] x   the index, a hash: peer id (IPv6: id .. '\6') -> its slot, and address (IPv4: 4
 *               bytes; IPv6: its /64, 8 bytes) -> how many peers of the swarm it holds; from
 *               INDEX_SPLIT peers to INDEX_MERGE, in INDEX_SHARDS hashes x.<h> instead (xkey), x
 *               then holding the field '' alone, and the header the hash's seed;
 *   KEYS[6] c   the completed count and the latest announce time it covers (u32, double); exists
 *               only while the count is > 0, and outlives the peers by the retention;
 *   KEYS[7] b   while a pool is big, per block of BLK slots a lower bound of its peers' announce
 *               times (double; block i of the IPv4 pool at 16 i, of the IPv6 pool at 16 i + 8):
 *               set to the pool's bound when the pool turns big, lowered on every write of a
 *               time into the block (insert, move, re-announce), made exact when a block's
 *               records are read (the sweep, a due-looking block of a window); missing bytes
 *               read as 0, i.e. due. It lives as long as the longer-lived pool.
 * A pool keeps its peers in dense slots 0..n-1, seeders first ([0, s)), leechers after, as
 * fixed-width records in strings, so a selection is one window of compact addresses (at most
 * three runs, one GETRANGE each), the cheap reply shape (DESIGN.md). The number of commands and
 * bytes of every call is bounded whatever the swarm size (issue 7: the whole-pool layout before
 * this one read the whole pool on every announce, ≈ 620 µs of Redis CPU at 10,000 peers, and
 * rebuilt it in a purge, 145 ms at 100,000):
 * - a peer is found by HGET of its id in the index (O(1)); a small pool's addresses come with the header;
 * - a new peer takes slot n (a seeder: slot s, the first leecher moving to n): SETRANGE extends
 *   the strings, so they grow without a rebuild; slots from POOL_CHUNK on live in chunk keys
 *   (<key>.<c>, made whole when the pool enters them, deleted when it shrinks half a chunk
 *   below), so no string passes ~156 kB (one 38 MB record string of 1,000,000 peers took 120 ms
 *   to grow when jemalloc had to move it, bench/redis-swarm.mjs);
 * - a removed peer's hole is filled by the last seeder / last leecher (O(1) commands);
 * - expiry: a pool of at most SMALL peers is purged exactly (one pass over its records, the
 *   strings rebuilt in order) when its earliest time plus the lifetime is due, as before; a
 *   bigger one a step at a time from its cursor: in the general path SWEEP slots, at most DROPS
 *   of them removed; in the fast path a leecher's window starts at the cursor and moves it on,
 *   and a due peer in the window hands the call to the general path. Its counts may include peers
 *   expired since the cursor last passed them (with the announces a swarm of n peers gets, the
 *   cursor passes every slot about once per n / 50 leecher announces, whatever n). A big pool's
 *   announcer is checked itself, and the peers of a window are checked before they are
 *   returned, so an expired peer is never returned nor treated as known; a window that meets due
 *   peers in the general path leaves them out (fewer than numWant then). The fast path checks a
 *   window by its blocks' bounds (b) and reads a block's records only when its bound is due:
 *   reading the window's 51 records was ≈ 10 µs of a big pool's ≈ 30-35 µs announce.
 * The strings do not shrink as a big pool empties (the hole is filled from the end); they are
 * rebuilt to size by the exact purge once the pool is small again, or deleted when it is empty.
 * The normal announce, a known peer re-announcing from the same address in the same role, is
 * three commands in a small pool (GETRANGE of the header and the first SMALL IPv4 addresses, the
 * whole pool of a small swarm; HGET of its slot; SETRANGE of the first 17 bytes of its record:
 * key record and time) and about nine in a big one (its address, its time, the window's
 * addresses and its blocks' bounds read, its own block's bound; the cursor written). The header is written back only when a count, a bound,
 * a cursor or a deadline changed.
 * Measured (bench/redis-swarm.mjs, one swarm on a local 3-master cluster, Redis CPU per
 * announce, quiet machine): 14.7 µs at 50 peers, 31.7 at 10,000, 35.7 at 100,000, 42.7 at
 * 1,000,000 (the growth of the big pools' cost is cache misses in the index and records and the
 * window's 51 record checks); bench/redis-cluster.mjs (200,000 peers in 4,000 swarms): 25.9 µs
 * against a 4.1 µs do-nothing EVALSHA (22.3 against 3.6 before the index). The blocks' bounds
 * (5 s runs of bench/redis-swarm.mjs, one after the other): 16.2 µs at 50 peers, 30.7 at 10,000,
 * 31.4 at 100,000 (ratios 1.90 and 1.94), against 15.5, 32.0 and 39.3 (2.06 and 2.53) before.
 * Expiry is judged against the caller's `now` and the lifetime; the key TTLs only make idle
 * swarms vanish from memory: a pool's keys get lifetime × 1.25 (PEXPIRE) when their deadline kept
 * in the header (caller's clock) is less than a lifetime away, so about once per quarter
 * lifetime, without a PTTL call. (A caller clock behind the refresher's by more than a quarter
 * lifetime could see the pool keys expire first; an announce that finds them gone treats the
 * swarm's peers as gone, and dates them to deadline − lifetime for the retention.)
 * Limits (StoreAnnounce): a new peer is refused when its address's count in x would pass
 * maxPeersPerAddress (HINCRBY, taken back when it does), or the pools hold maxPeersPerSwarm
 * peers; the counts are kept in step on every insert, removal and move to another address.
 * The announce takes its scalars packed in one binary argument (every argument costs Redis
 * parsing and a Lua string: with 24 arguments an empty script cost ~3x a one-argument one).
 */

/** Bytes of the swarm header at the start of the main key (layout above). */
export const HEADER_BYTES = 80;
/** Pools of at most this many peers are purged exactly, and read whole by an announce. */
export const SMALL_POOL = 128;
/** Slots a big pool's purge cursor passes per announce or scrape, and removals at most. */
export const SWEEP_SLOTS = 32;
export const SWEEP_DROPS = 8;
/**
 * Slots per block of a big pool's time bounds (key b: per block a double, IPv4 pool then IPv6
 * pool, 16 bytes a block): each is at most the announce time of every peer in its block, so a
 * window whose blocks are not due needs no record read.
 */
export const BOUND_BLOCK = 32;
/**
 * Slots per chunk of a pool's strings: slot i is in chunk floor(i / POOL_CHUNK); chunk 0 is the
 * pool's declared key (m or p6, r4 or r6), chunk c > 0 the key of the same name followed by
 * '.c' (same hash tag, so the same slot). No string grows past a chunk: a 38 MB record string of
 * 1,000,000 peers stalled Redis for 120 ms when its growth made jemalloc move it.
 */
export const POOL_CHUNK = 4096;
/**
 * The index x of a swarm of at least INDEX_SPLIT peers is split into INDEX_SHARDS hashes
 * x.<h> (same hash tag), by a hash of each field salted per swarm; it is one hash again when
 * the swarm is down to INDEX_MERGE. Redis grows a hash's table at once: past 2^20 fields (about
 * 524,000 peers of one swarm) that was a 16 MB allocation that held a master for 7-14 ms. In 64
 * shards a swarm of 1,000,000 peers keeps about 36,000 fields per hash; and up to a few thousand
 * peers the shards are small enough for Redis's compact listpack encoding.
 */
export const INDEX_SHARDS = 64;
export const INDEX_SPLIT = 512;
export const INDEX_MERGE = 128;

/**
 * A script with another chunk size (for tests, so that chunk edges come within a few hundred
 * peers): a multiple of BOUND_BLOCK (a block never spans chunks) and at least 2 * SMALL_POOL (a
 * small pool, purged in one pass, lives in chunk 0 only: chunk 1 goes when a pool shrinks to
 * half a chunk).
 */
export function withPoolChunk(lua: string, slots: number): string {
  if (!(Number.isSafeInteger(slots) && slots % BOUND_BLOCK === 0 && slots >= 2 * SMALL_POOL)) {
    throw new RangeError(`pool chunk: ${slots} slots is not a multiple of ${BOUND_BLOCK} of at least ${2 * SMALL_POOL}`);
  }
  const line = `local CH = ${POOL_CHUNK}\n`;
  if (!lua.includes(line)) throw new Error('pool chunk: the script has no chunk size line');
  return lua.replace(line, `local CH = ${slots}\n`);
}

/** Constants of both scripts. */
const LAYOUT = `
local H = 80
local HF = '>I4dddI4I4dI4I4I4dI4dI4'
local RS = 38
local SMALL = ${SMALL_POOL}
local SWEEP = ${SWEEP_SLOTS}
local DROPS = ${SWEEP_DROPS}
local X = KEYS[5]
local BLK = ${BOUND_BLOCK}
local CH = ${POOL_CHUNK}
local XN = ${INDEX_SHARDS}
local XSPLIT = ${INDEX_SPLIT}
local XMERGE = ${INDEX_MERGE}
local XP = 33554393
-- the index's seed: 0 while it is the one hash x, else XMIX + the swarm's secret multiplier (in
-- [1, XP)); a seed below XMIX is the multiplier of an index split before the mix (xkey)
local XMIX = 2147483648
local XK = 0

-- Chunks c > 0 of a pool are keys the scripts derive from the declared ones (same hash tag, so
-- the same slot and node). While the slot is being migrated, such a key may be on the other node:
-- the source then raises "non local key", and the target (ASKING) reads it as missing. A call
-- that may touch chunks first probes with a two-key EXISTS of keys that never exist, which fails
-- on both sides of a migration and nowhere else, and answers TRYAGAIN (the client retries) before
-- it writes anything.
local function moving()
  error({ err = 'TRYAGAIN the swarm is being migrated to another node' })
end
local function probe()
  if type(redis.pcall('EXISTS', KEYS[1] .. '.p', KEYS[1] .. '.q')) == 'table' then moving() end
end
-- the key of index field f: x, or while the index is sharded x.<h>: h is a polynomial hash with
-- the swarm's secret multiplier K modulo the prime XP (the sum of f's 2- or 3-byte pieces a_i
-- times K^i, every piece multiplied), so that no client can aim its peer ids or addresses at one
-- shard: two fields collide mod XP with probability at most 7 / XP, whatever they are. Every
-- product is below 2^53, so exact. The shard is then taken from h through a fixed mix (xorshift,
-- multiply mod 2^25, twice; its top bits): h itself is linear in each piece, and fields that
-- differ in one piece only (ids or addresses counted up by a client) give an arithmetic
-- progression mod XP, whose residues mod XN bunch up for some multipliers. With 1,024 peers whose
-- ids and addresses count up in one piece, h mod XN put more than 3 times the mean into a shard
-- for about 1 multiplier in 250 (up to half the fields into one), where a uniform hash does with
-- a probability below 1e-18; with the mix, none of 180,000 random multipliers did, over several
-- such families of fields (offline runs of both hashes). A seed below XMIX (an index split
-- before the mix) keeps h mod XN until the index merges: a re-hash then would read the whole
-- index in one call.
-- A peer id's field (20 bytes, IPv6 21) goes by its id, an address's (4 or 8 bytes) by itself.
-- About 0.25 µs (struct.unpack and arithmetic: a loop of string.byte over the bytes was
-- 0.85 µs); the mix adds 0.16 µs (0.37 against 0.53 µs a call of a 20-byte field, a million
-- calls in one EVAL).
local function xkey(f)
  if XK == 0 then return X end
  local K, n, h = XK, #f
  if K >= XMIX then K = K - XMIX end
  if n == 4 then
    local a, b = struct.unpack('>I2I2', f)
    h = (a * K + b) % XP
  elseif n == 8 then
    local a, b, c = struct.unpack('>I3I3I2', f)
    h = ((a * K + b) % XP * K + c) % XP
  else
    local a, b, c, d, e, g, j = struct.unpack('>I3I3I3I3I3I3I2', f)
    h = (((((a * K + b) % XP * K + c) % XP * K + d) % XP * K + e) % XP * K + g) % XP
    h = (h * K + j) % XP
  end
  h = (h * K) % XP
  if XK < XMIX then return X .. '.' .. (h % XN) end
  -- (h < 2^25, the constants odd and below 2^27: each step a bijection of [0, 2^25), exact; XN
  -- a power of two)
  h = bit.bxor(h, bit.rshift(h, 13))
  h = h * 96280213 % 33554432
  h = bit.bxor(h, bit.rshift(h, 12))
  h = h * 45264437 % 33554432
  return X .. '.' .. math.floor(h / (33554432 / XN))
end
-- the index's keys: x, and its shards while it is sharded (x then holds the field '' alone, so
-- that every declared key of a swarm with peers exists: a migration then moves the script to the
-- target node with the declared keys, as before)
local function xkeys()
  if XK == 0 then return { X } end
  local ks = { X }
  for h = 0, XN - 1 do ks[h + 2] = X .. '.' .. h end
  return ks
end
-- the key and byte offset of slot i of a pool string: base key k (chunk 0, its slot 0 at byte o),
-- w bytes a slot
local function at(k, o, w, i)
  if i < CH then return k, o + i * w end
  local c = math.floor(i / CH)
  return k .. '.' .. c, (i - c * CH) * w
end
-- bytes [a, b] of key; a chunk key (far) read by a call that did not probe (the fast path)
-- answers TRYAGAIN when it is on another node
local function getr(key, a, b, far)
  if not far then return redis.call('GETRANGE', key, a, b) end
  local v = redis.pcall('GETRANGE', key, a, b)
  if type(v) == 'table' then moving() end
  return v
end
local function rs1(k, o, w, a, e)
  local key, off = at(k, o, w, a)
  return getr(key, off, off + (e - a) * w - 1, a >= CH)
end
-- slots [a, b) of a pool string, over as many chunks as they span
local function rs(k, o, w, a, b)
  if b <= a then return '' end
  local e = math.min(b, (math.floor(a / CH) + 1) * CH)
  -- (one chunk, as nearly always: no table)
  if e == b then return rs1(k, o, w, a, b) end
  local parts = {}
  while a < b do
    parts[#parts + 1] = rs1(k, o, w, a, e)
    a = e
    e = math.min(b, a + CH)
  end
  return table.concat(parts)
end
-- bytes [r, r + l) of slot i
local function rb(k, o, w, i, r, l)
  local key, off = at(k, o, w, i)
  return getr(key, off + r, off + r + l - 1, i >= CH)
end
-- writes v at byte r of slot i
local function ws(k, o, w, i, r, v)
  local key, off = at(k, o, w, i)
  redis.call('SETRANGE', key, off + r, v)
end
`;

/**
 * The start of both scripts after their arguments (now, life, retention, M: what was read of the
 * main key): the header, the pool operations, then the expiry step of both pools.
 */
const COMMON = `
local mainExists = #M >= H
local completed, last, hlife, dm, d6 = 0, 0, 0, 0, 0
local P4 = { n = 0, s = 0, min = 0, cur = 0, pk = KEYS[1], off = H, size = 6, ak = 4, rk = KEYS[2], tag = '', bo = 0 }
local P6 = { n = 0, s = 0, min = 0, cur = 0, pk = KEYS[3], off = 0, size = 18, ak = 8, rk = KEYS[4], tag = '\\6', bo = 8 }
local cExists = false
if mainExists then
  completed, last, hlife, dm, P4.n, P4.s, P4.min, P4.cur, P6.n, P6.s, P6.min, P6.cur, d6, XK = struct.unpack(HF, M)
  cExists = completed > 0
  -- the IPv4 addresses read with the header
  P4.A = M
  P4.na = math.min(P4.n, math.floor((#M - H) / 6))
else
  -- a new swarm, or one kept only for its completed count
  local cv = redis.call('GET', KEYS[6])
  if cv then
    cExists = true
    completed, last = struct.unpack('>I4d', cv)
  end
end
if life == nil then life = hlife end
-- a pool of CH / 2 peers or more may touch its chunks (it grows into one at CH, and one is
-- deleted when the pool shrinks to half a chunk below it); a sharded index, or one this call may
-- split, is in undeclared keys too
if P4.n >= CH / 2 or P6.n >= CH / 2 or XK > 0 or P4.n + P6.n >= XSPLIT - 1 then probe() end
P4.dl, P6.dl = dm, d6
P4.fresh, P6.fresh = P4.n == 0, P6.n == 0
P4.n0, P6.n0 = P4.n, P6.n
local live0 = P4.n + P6.n
local completed0 = completed
local dirty = false
local wiped = false
local bw = false

-- bytes [a, b) of key k
local function gr(k, a, b)
  if b <= a then return '' end
  return redis.call('GETRANGE', k, a, b - 1)
end

-- a pool's addresses and records of slots [a, b); bytes [r, r + l) of slot i's record
local function ad(p, a, b) return rs(p.pk, p.off, p.size, a, b) end
local function rc(p, a, b) return rs(p.rk, 0, RS, a, b) end
local function rpart(p, i, r, l) return rb(p.rk, 0, RS, i, r, l) end
local function wa(p, i, v) ws(p.pk, p.off, p.size, i, 0, v) end
local function wr(p, i, r, v) ws(p.rk, 0, RS, i, r, v) end
-- the chunks c > 0 of a pool of n peers that may exist: those in use, and the one above them
-- until the pool is half a chunk below it
local function chunks(n) return math.floor((n - 1 + CH / 2) / CH) end
local function chunkKeys(p, n)
  local ks = {}
  for c = 1, chunks(n) do
    ks[#ks + 1] = p.pk .. '.' .. c
    ks[#ks + 1] = p.rk .. '.' .. c
  end
  return ks
end
-- chunk c of pool p, made whole at once (a new key of the right length: never reallocated while
-- it fills), with the pool's deadline
local function grow(p, c)
  local d = dm
  if p == P6 then d = d6 end
  for _, k in ipairs({ { p.pk .. '.' .. c, p.size }, { p.rk .. '.' .. c, RS } }) do
    redis.call('SETRANGE', k[1], CH * k[2] - 1, '\0')
    redis.call('PEXPIRE', k[1], math.max(1, math.ceil(d - now)))
  end
end

-- the index split into its XN shards (the multiplier from the caller's random), or merged back
-- into x: bounded (at most about 2 XSPLIT fields, or 2 XMERGE + XN). Each shard holds a field ''
-- that is never deleted, so that a shard is never emptied and made again without a TTL.
local function xsplit(seed)
  local all = redis.call('HGETALL', X)
  redis.call('DEL', X)
  XK = seed
  local t = {}
  for _, k in ipairs(xkeys()) do t[k] = { '', '' } end
  for i = 1, #all, 2 do
    local a = t[xkey(all[i])]
    a[#a + 1] = all[i]
    a[#a + 1] = all[i + 1]
  end
  local pt = math.max(1, math.ceil(dm - now))
  for k, fv in pairs(t) do
    redis.call('HSET', k, unpack(fv))
    redis.call('PEXPIRE', k, pt)
  end
  dirty = true
end
local function xmerge()
  local ks = xkeys()
  local fv = {}
  for q = 2, #ks do
    local all = redis.call('HGETALL', ks[q])
    for i = 1, #all, 2 do
      if all[i] ~= '' then
        fv[#fv + 1] = all[i]
        fv[#fv + 1] = all[i + 1]
      end
    end
  end
  redis.call('DEL', unpack(ks))
  XK = 0
  if #fv > 0 then
    redis.call('HSET', X, unpack(fv))
    redis.call('PEXPIRE', X, math.max(1, math.ceil(dm - now)))
  end
  dirty = true
end

-- a pool's keys expired before its header (see the TTLs above): the swarm's peers are taken as
-- gone, dated deadline - lifetime for the retention, and the index goes with them
local function lost()
  for _, p in ipairs({ P4, P6 }) do
    if p.n > 0 then
      local b = math.min(now, p.dl - life)
      if b > last then last = b end
      local ks = chunkKeys(p, p.n)
      if #ks > 0 then redis.call('DEL', unpack(ks)) end
    end
    p.n, p.s, p.min, p.cur, p.A, p.fresh = 0, 0, 0, 0, nil, true
  end
  redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[7], unpack(xkeys()))
  XK = 0
  wiped = true
  dirty = true
end

-- the time bound of block b of pool p; 0 (due: its records are read) where none is kept
local function getb(p, b)
  local v = gr(KEYS[7], b * 16 + p.bo, b * 16 + p.bo + 8)
  if #v < 8 then return 0 end
  return struct.unpack('>d', v)
end
local function setb(p, b, t)
  redis.call('SETRANGE', KEYS[7], b * 16 + p.bo, struct.pack('>d', t))
  bw = true
end
-- slot i of a big pool took a peer announced at t: its block's bound comes down to t
local function lower(p, i, t)
  if p.n <= SMALL then return end
  local b = math.floor(i / BLK)
  if t < getb(p, b) then setb(p, b, t) end
end

-- the peer in slot 'from' of pool p goes to slot 'to' (address, record and index entry)
local function move(p, from, to)
  wa(p, to, ad(p, from, from + 1))
  local r = rc(p, from, from + 1)
  wr(p, to, 0, r)
  lower(p, to, struct.unpack('>d', r, 10))
  local f = string.sub(r, 19, 38) .. p.tag
  redis.call('HSET', xkey(f), f, to)
  p.A = nil
end

local function uncount(ak)
  local k = xkey(ak)
  if redis.call('HINCRBY', k, ak, -1) <= 0 then redis.call('HDEL', k, ak) end
end

-- appends f (and its value v) to the arguments for index key k in t
local function xadd(t, k, f, v)
  local a = t[k]
  if not a then
    a = {}
    t[k] = a
  end
  a[#a + 1] = f
  if v then a[#a + 1] = v end
end

-- removes the peer in slot i (index field idf, address key ak): the last seeder and the last
-- leecher fill the holes
local function remove(p, i, idf, ak)
  if i < p.s then
    if i ~= p.s - 1 then move(p, p.s - 1, i) end
    i = p.s - 1
    p.s = p.s - 1
  end
  if i ~= p.n - 1 then move(p, p.n - 1, i) end
  p.n = p.n - 1
  -- half a chunk below a chunk: that chunk goes
  if p.n >= CH / 2 and p.n % CH == CH / 2 then
    local c = math.floor(p.n / CH) + 1
    redis.call('DEL', p.pk .. '.' .. c, p.rk .. '.' .. c)
  end
  redis.call('HDEL', xkey(idf), idf)
  uncount(ak)
  dirty = true
end

-- the announce times of k slots, from their records (one unpack each: a format of k records
-- costs three times as much to build and parse)
local function times(R, k)
  local t = {}
  for j = 1, k do t[j] = struct.unpack('>d', R, j * RS - 28) end
  return t
end

-- a small pool, exactly: drops the peers whose time + lifetime is due (order kept), folding their
-- times into last, and sets the earliest time of the rest
local function purgeAll(p)
  local n, size = p.n, p.size
  local R = gr(p.rk, 0, n * RS)
  if #R < n * RS then return lost() end
  local t = times(R, n)
  local keep, gone, mn, sl = {}, {}, 0, 0
  for j = 1, n do
    local tj = t[j]
    if tj + life > now then
      keep[#keep + 1] = j
      if j <= p.s then sl = sl + 1 end
      if #keep == 1 or tj < mn then mn = tj end
    else
      gone[#gone + 1] = j
      if tj > last then last = tj end
    end
  end
  dirty = true
  p.min = mn
  if #gone == 0 then return end
  p.n, p.s, p.cur, p.A = #keep, sl, 0, nil
  local Ad = gr(p.pk, p.off, p.off + n * size)
  local del, dec = {}, {}
  for _, j in ipairs(gone) do
    local f = string.sub(R, j * RS - 19, j * RS) .. p.tag
    xadd(del, xkey(f), f)
    local ak = string.sub(Ad, (j - 1) * size + 1, (j - 1) * size + p.ak)
    dec[ak] = (dec[ak] or 0) + 1
  end
  for k, fs in pairs(del) do redis.call('HDEL', k, unpack(fs)) end
  for ak, d in pairs(dec) do
    local k = xkey(ak)
    if redis.call('HINCRBY', k, ak, -d) <= 0 then redis.call('HDEL', k, ak) end
  end
  if #keep == 0 then return end
  local a, r, hs = {}, {}, {}
  for k, j in ipairs(keep) do
    a[k] = string.sub(Ad, (j - 1) * size + 1, j * size)
    r[k] = string.sub(R, (j - 1) * RS + 1, j * RS)
    if j ~= k then
      local f = string.sub(r[k], 19, 38) .. p.tag
      xadd(hs, xkey(f), f, k - 1)
    end
  end
  redis.call('SET', p.pk, string.rep('\\0', p.off) .. table.concat(a), 'KEEPTTL')
  redis.call('SET', p.rk, table.concat(r), 'KEEPTTL')
  for k, fv in pairs(hs) do redis.call('HSET', k, unpack(fv)) end
end

-- a big pool, a step: the SWEEP slots from its cursor, at most DROPS of the due ones removed
-- (from the highest slot down, so the slots still to look at do not move)
local function sweep(p)
  local c = p.cur
  if c >= p.n then c = 0 end
  local e = math.min(c + SWEEP, p.n)
  -- the whole blocks around the step are read, to make their bounds exact
  local bs = c - c % BLK
  local be = math.min(math.ceil(e / BLK) * BLK, p.n)
  local R = rc(p, bs, be)
  if #R < (be - bs) * RS then return lost() end
  local t = times(R, be - bs)
  local drops = 0
  p.cur = e
  for j = e - bs, c - bs + 1, -1 do
    local tj = t[j]
    if tj + life <= now then
      if drops == DROPS then
        p.cur = c
        break
      end
      if tj > last then last = tj end
      local i = bs + j - 1
      remove(p, i, string.sub(R, j * RS - 19, j * RS) .. p.tag, string.sub(ad(p, i, i + 1), 1, p.ak))
      drops = drops + 1
    end
  end
  -- (a removal's moves have lowered the bounds they touched; the times read are then stale)
  if drops == 0 then
    for b = bs, be - 1, BLK do
      local mn = t[b - bs + 1]
      for j = b - bs + 2, math.min(b + BLK, be) - bs do
        if t[j] < mn then mn = t[j] end
      end
      setb(p, b / BLK, mn)
    end
  end
  dirty = true
end

for _, p in ipairs({ P4, P6 }) do
  if p.n > SMALL then
    sweep(p)
  elseif p.n > 0 and p.min + life <= now then
    purgeAll(p)
  end
end
-- a swarm without live peers is forgotten once the retention has passed since its last announce
if P4.n + P6.n == 0 and now - last >= retention then completed = 0 end
`;

/**
 * The end of both scripts: the header written back when something changed, the keys of an emptied
 * pool (or swarm) deleted, the TTLs of new keys set. refreshM / refresh6: the deadlines moved.
 */
const FINISH = `
local live = P4.n + P6.n
if live == 0 then
  if mainExists then redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[7], unpack(xkeys())) end
  if completed > 0 then
    if mainExists or completed ~= completed0 or not cExists or dirty then
      redis.call('SET', KEYS[6], struct.pack('>I4d', completed, last), 'PX', math.max(1, math.ceil(last + retention - now)))
    end
  elseif cExists then
    redis.call('DEL', KEYS[6])
  end
else
  if XK > 0 and live <= XMERGE then xmerge() end
  if dirty then
    local hdr = struct.pack(HF, completed, last, life, dm, P4.n, P4.s, P4.min, P4.cur, P6.n, P6.s, P6.min, P6.cur, d6, XK)
    if P4.n == 0 and (P4.n0 > 0 or wiped) then
      -- the IPv4 pool emptied: the main key keeps the header only
      redis.call('DEL', KEYS[2])
      redis.call('SET', KEYS[1], hdr, 'KEEPTTL')
    else
      redis.call('SETRANGE', KEYS[1], 0, hdr)
    end
    if not mainExists then redis.call('PEXPIRE', KEYS[1], math.ceil(dm - now)) end
    if P6.n == 0 and P6.n0 > 0 then redis.call('DEL', KEYS[3], KEYS[4]) end
    if refreshM then
      redis.call('PEXPIRE', KEYS[1], ttl)
      for _, k in ipairs(xkeys()) do redis.call('PEXPIRE', k, ttl) end
      if P4.n > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
      for _, k in ipairs(chunkKeys(P4, P4.n)) do redis.call('PEXPIRE', k, ttl) end
    end
    if refresh6 and P6.n > 0 then
      redis.call('PEXPIRE', KEYS[3], ttl)
      redis.call('PEXPIRE', KEYS[4], ttl)
      for _, k in ipairs(chunkKeys(P6, P6.n)) do redis.call('PEXPIRE', k, ttl) end
    end
    -- keys made by this call (SETRANGE, HSET) get their pool's deadline
    if P4.fresh and P4.n > 0 and not refreshM then redis.call('PEXPIRE', KEYS[2], math.ceil(dm - now)) end
    if P6.fresh and P6.n > 0 and not refresh6 then
      redis.call('PEXPIRE', KEYS[3], math.ceil(d6 - now))
      redis.call('PEXPIRE', KEYS[4], math.ceil(d6 - now))
    end
    if (live0 == 0 or wiped) and not refreshM then redis.call('PEXPIRE', X, math.ceil(dm - now)) end
  end
  -- the bounds key lives as long as the longer-lived pool
  if refreshM or refresh6 then
    redis.call('PEXPIRE', KEYS[7], ttl)
  elseif bw and redis.call('PTTL', KEYS[7]) < 0 then
    redis.call('PEXPIRE', KEYS[7], math.max(1, math.ceil(math.max(dm, d6) - now)))
  end
  -- the count key, while there are peers: the count and the latest time a peer can have
  -- announced without a header write (the main key's deadline - lifetime)
  if completed > 0 then
    if completed ~= completed0 or refreshM or not cExists then
      local cl = dm - life
      redis.call('SET', KEYS[6], struct.pack('>I4d', completed, cl), 'PX', math.ceil(math.max(cl + retention, dm) - now))
    end
  elseif cExists then
    redis.call('DEL', KEYS[6])
  end
end
`;

/** Event codes of the announce's packed argument. */
export const EVENT_CODES = { none: 0, started: 1, stopped: 2, completed: 3, paused: 4 } as const;
/** Bytes of the announce's packed argument before the compact address. */
export const ANNOUNCE_ARG_BYTES = 89;
/** The announce reply's first byte: why a new peer was not stored (0: it was, or was known). */
export const REFUSAL_CODES = ['', 'swarm-full', 'address-full'] as const;

/**
 * A call with a deadline (ARGV[i]: ms, in this master's clock; RedisStoreOptions.deadlineMs) that
 * comes later is refused before it reads or writes anything: an announce is applied by its
 * deadline or never.
 */
const LATE_CHECK = (i: number) => `if ARGV[${i}] then
  local t = redis.call('TIME')
  if t[1] * 1000 + t[2] / 1000 > tonumber(ARGV[${i}]) then return redis.status_reply('LATE') end
end`;

/**
 * ARGV[1], packed (big-endian): the key record (1 | 8-byte fingerprint, or 9 zero bytes for none:
 * writeKeyRecord), then doubles now, retention, lifetime, random [0,1), numWant; bytes family (4|6),
 * seeder (1|0), event (EVENT_CODES), withPeerIds (1|0); doubles maxPeersPerSwarm,
 * maxPeersPerAddress (Infinity: none); the 20-byte peer id; the compact address. ARGV[2], when
 * given: the deadline (LATE_CHECK). Its first 17
 * bytes are the start of the peer's record as stored (key record, time). Returns one string: the refusal
 * code (REFUSAL_CODES, one byte), complete, incomplete, downloaded (u32 each, big-endian), the
 * selected peers' compact addresses, then their ids when asked (one bulk reply: cheaper to write
 * and to parse than an array).
 */
export const ANNOUNCE_LUA = `
${LAYOUT}
${LATE_CHECK(2)}
local A = ARGV[1]
local now, retention, life, random, want, fam, seederb, ev, withIdsb, maxSwarm, maxAddr = struct.unpack('>dddddBBBBdd', A, 10)
local rec = string.sub(A, 1, 17)
local id = string.sub(A, 70, 89)
local addr = string.sub(A, 90)
local six = fam == 6
-- the header, and for an IPv4 announce the first SMALL IPv4 addresses with it (a small swarm's
-- whole pool)
local M
if six then
  M = redis.call('GETRANGE', KEYS[1], 0, H - 1)
else
  M = redis.call('GETRANGE', KEYS[1], 0, H + SMALL * 6 - 1)
end
local idf = id
if six then idf = id .. '\\6' end

-- up to want peers for the announcer in slot (-1: none) among the candidates [lo, n): a window
-- from a random start minus the announcer's slot; L physical slots (wrapping once) covering k
-- candidates, one cut out (the announcer's when inside the window, else the extra last one):
-- at most three runs {a, b, a, b, a, b}, or nil for none
local function window(n, lo, slot, from)
  local R = n - lo
  local skip = -1
  if slot >= lo and slot < n then skip = slot end
  local m = R
  if skip >= 0 then m = m - 1 end
  local k = math.min(want, m)
  if k <= 0 then return nil end
  local L = k
  if skip >= 0 and k < R then L = k + 1 end
  if k == m then L = R end
  local start = lo + math.min(R - 1, math.floor(random * R))
  if from then start = lo + (from - lo) % R end
  local first = math.min(L, n - start)
  local runs = { start, start + first, lo, lo + L - first, 0, 0 }
  if L > k then
    local at = L - 1
    if skip >= 0 then
      at = skip - start
      if at < 0 then at = at + R end
      if at >= L then at = L - 1 end
    end
    if at < first then
      local c = start + at
      runs = { start, c, c + 1, start + first, lo, lo + L - first }
    else
      local c = lo + at - first
      runs[4], runs[5], runs[6] = c, c + 1, lo + L - first
    end
  end
  return runs, lo + (start - lo + L) % R
end

-- a big pool's window checked by its blocks' bounds (a block whose bound is due has its records
-- read, and its bound made exact): false when a peer of the window is due; then the offset of
-- the announcer's bound in KEYS[7] when it must come down to now
local function fresh(n, runs, slot, rk, six)
  local bo = 0
  if six then bo = 8 end
  local iv = {}
  for q = 1, 5, 2 do
    local a, b = runs[q], runs[q + 1]
    if b > a then
      local x, y = math.floor(a / BLK), math.floor((b - 1) / BLK)
      local l = iv[#iv]
      if l and x <= l[2] + 1 and y >= l[1] - 1 then
        l[1], l[2] = math.min(l[1], x), math.max(l[2], y)
      else
        iv[#iv + 1] = { x, y }
      end
    end
  end
  local bv = {}
  for _, v in ipairs(iv) do
    local x, y = v[1], v[2]
    local V = redis.call('GETRANGE', KEYS[7], x * 16, y * 16 + 15)
    for b = x, y do
      local at = (b - x) * 16 + bo
      local t = 0
      local have = #V >= at + 8
      if have then t = struct.unpack('>d', V, at + 1) end
      if t + life <= now then
        local e = math.min(b * BLK + BLK, n)
        local Rd = rs(rk, 0, RS, b * BLK, e)
        if #Rd < (e - b * BLK) * RS then return false end
        local mn
        for j = 1, e - b * BLK do
          local tj = struct.unpack('>d', Rd, j * RS - 28)
          if tj + life <= now then
            local i = b * BLK + j - 1
            for q = 1, 5, 2 do
              if i >= runs[q] and i < runs[q + 1] then return false end
            end
          end
          if not mn or tj < mn then mn = tj end
        end
        if have then redis.call('SETRANGE', KEYS[7], b * 16 + bo, struct.pack('>d', mn)) end
        t = mn
      end
      bv[b] = t
    end
  end
  local sb = math.floor(slot / BLK)
  local t = bv[sb]
  if t == nil then
    local V = redis.call('GETRANGE', KEYS[7], sb * 16 + bo, sb * 16 + bo + 7)
    t = 0
    if #V == 8 then t = struct.unpack('>d', V) end
  end
  if now < t then return true, sb * 16 + bo end
  return true
end

-- the normal announce, first and alone: a known peer re-announcing from the same address in the
-- same role, nothing due for a TTL refresh, its own pool not due for a purge when small. It
-- writes its record's key record and time and nothing else, as the general path below would (the
-- model test runs both), in fewer steps. In a big pool a leecher's window starts at the pool's
-- cursor and moves it on: the window is the purge's step (the general path takes over when it
-- holds a due peer, or the announcer is due itself); a seeder's window is random among the
-- leechers.
if #M >= H and ev ~= 2 then
  local completed, last, hlife, dm, n4, s4, min4, cur4, n6, s6, min6, cur6, d6, xk = struct.unpack(HF, M)
  XK = xk
  local n, s, mn, cur, pk, rk, off, size, co = n4, s4, min4, cur4, KEYS[1], KEYS[2], H, 6, 44
  if six then n, s, mn, cur, pk, rk, off, size, co = n6, s6, min6, cur6, KEYS[3], KEYS[4], 0, 18, 64 end
  local big = n > SMALL
  if n > 0 and now >= mn and (n4 == 0 or n4 > SMALL or min4 + life > now) and (n6 == 0 or n6 > SMALL or min6 + life > now)
    and dm - now >= life and (not six or d6 - now >= life) then
    -- (a shard is undeclared: in a migration it may be on the other node, as chunks may)
    local v = redis.pcall('HGET', xkey(idf), idf)
    if type(v) == 'table' then moving() end
    local slot = -1
    if v then slot = tonumber(v) end
    if slot >= 0 and slot < n and (seederb == 1) == (slot < s) then
      local P, old = M, nil
      if big then
        old = rs(pk, off, size, slot, slot + 1)
      else
        if six then P = redis.call('GETRANGE', pk, 0, n * 18 - 1) end
        if #P >= off + n * size then old = string.sub(P, off + slot * size + 1, off + slot * size + size) end
      end
      local ok = old == addr
      if ok and big then
        local t = rb(rk, 0, RS, slot, 9, 8)
        ok = #t == 8 and struct.unpack('>d', t) + life > now
      end
      local runs, next
      local pl, il = {}, {}
      if ok then
        local lo = 0
        if seederb == 1 then lo = s end
        if big and seederb == 0 then runs, next = window(n, lo, slot, cur) else runs = window(n, lo, slot) end
      end
      if runs then
        for q = 1, 5, 2 do
          local a, b = runs[q], runs[q + 1]
          if b > a then
            local S
            if big then
              S = rs(pk, off, size, a, b)
            else
              S = string.sub(P, off + a * size + 1, off + b * size)
            end
            pl[#pl + 1] = S
            -- (a chunk missing, expired or not yet here in a migration: the general path decides)
            if #S < (b - a) * size then ok = false end
            if withIdsb == 1 then
              local Rd = rs(rk, 0, RS, a, b)
              if #Rd < (b - a) * RS then ok = false end
              for j = 1, b - a do il[#il + 1] = string.sub(Rd, j * RS - 19, j * RS) end
            end
          end
        end
      end
      local lowerTo
      if ok and big then ok, lowerTo = fresh(n, runs or { 0, 0, 0, 0, 0, 0 }, slot, rk, six) end
      if ok then
        ws(rk, 0, RS, slot, 0, rec)
        if lowerTo then redis.call('SETRANGE', KEYS[7], lowerTo, struct.pack('>d', now)) end
        if next then redis.call('SETRANGE', KEYS[1], co, struct.pack('>I4', next)) end
        return struct.pack('>BI4I4I4', 0, s4 + s6, n4 + n6 - s4 - s6, completed) .. table.concat(pl) .. table.concat(il)
      end
    end
  end
end
${COMMON}
local seeder = seederb == 1
local stopped = ev == 2
local p = P4
if six then
  p = P6
  if p.n > 0 and p.n <= SMALL then
    p.A = gr(p.pk, 0, p.n * 18)
    p.na = math.floor(#p.A / 18)
  end
end
local size, off = p.size, p.off
local ak = string.sub(addr, 1, p.ak)

-- the announcer's slot among the live peers, or -1; its stored address and time record
local slot = -1
local old, trec
if p.n > 0 then
  local v = redis.call('HGET', xkey(idf), idf)
  if v then
    slot = tonumber(v)
    if slot >= p.n then slot = -1 end
  end
end
if slot >= 0 then
  if p.A and slot < p.na then
    old = string.sub(p.A, off + slot * size + 1, off + slot * size + size)
  else
    old = ad(p, slot, slot + 1)
  end
  if p.n > SMALL then
    -- a big pool is purged a step at a time: its announcer may be due already (then it is new)
    trec = rpart(p, slot, 0, 17)
    local t = struct.unpack('>d', trec, 10)
    if t + life <= now then
      if t > last then last = t end
      remove(p, slot, idf, string.sub(old, 1, p.ak))
      slot = -1
    end
  end
end

-- an entry is changed only from its own IP (any port), or with the key it was stored with
local accepted = true
if slot >= 0 and old ~= addr and string.sub(old, 1, size - 2) ~= string.sub(addr, 1, size - 2) then
  if not trec then trec = rpart(p, slot, 0, 9) end
  accepted = string.byte(A, 1) == 1 and string.sub(trec, 1, 9) == string.sub(A, 1, 9)
end

-- a new peer beyond a limit is answered but not stored; the address count is taken now
local refused = 0
if slot < 0 and not stopped then
  if redis.call('HINCRBY', xkey(ak), ak, 1) > maxAddr then
    refused = 2
  elseif P4.n + P6.n >= maxSwarm then
    refused = 1
  end
  if refused > 0 then uncount(ak) end
end

local wrote = accepted and not stopped and refused == 0
local ttl = math.ceil(life * 1.25)
local refreshM, refresh6 = false, false
if wrote then
  -- the TTLs of the main key and of the announcer's pool, refreshed once their deadline is less
  -- than a lifetime away
  if dm - now < life then
    dm = now + ttl
    refreshM = true
    dirty = true
  end
  if six and d6 - now < life then
    d6 = now + ttl
    refresh6 = true
    dirty = true
  end
end

-- the announcer's address moved to another IP (with its key): its address count moves too
local function recount()
  local ok = string.sub(old, 1, p.ak)
  if ok ~= ak then
    uncount(ok)
    redis.call('HINCRBY', xkey(ak), ak, 1)
  end
end
-- swaps the peers of slots a and b (a seeder flip)
local function swap(a, b)
  if a == b then return end
  local xa = ad(p, a, a + 1)
  local xr = rc(p, a, a + 1)
  move(p, b, a)
  wa(p, b, xa)
  wr(p, b, 0, xr)
  lower(p, b, struct.unpack('>d', xr, 10))
  redis.call('HSET', xkey(idf), idf, b)
end

local nb = p.n
local plain = wrote and slot >= 0 and seeder == (slot < p.s)
if plain then
  -- a plain re-announce: its key record and time and, when it moved, its address
  wr(p, slot, 0, rec)
  lower(p, slot, now)
  if old ~= addr then
    wa(p, slot, addr)
    recount()
  end
else
  -- any other announce dates the swarm's last announce (the retention runs from it)
  dirty = true
end
if stopped then
  if slot >= 0 and accepted then remove(p, slot, idf, string.sub(old, 1, p.ak)) end
elseif wrote and not plain then
  if slot < 0 then
    -- a block entered at its first slot starts its bound afresh
    if p.n > SMALL and p.n % BLK == 0 then setb(p, p.n / BLK, now) end
    -- slot n opens a chunk
    if p.n >= CH and p.n % CH == 0 then grow(p, p.n / CH) end
    if seeder then
      if p.n > p.s then move(p, p.s, p.n) end
      slot = p.s
      p.s = p.s + 1
    else
      slot = p.n
    end
    p.n = p.n + 1
    local done = '\\0'
    if seeder and ev == 3 then
      completed = completed + 1
      done = '\\1'
    end
    -- (p.A stays valid: the slot written is the announcer's, never part of its reply)
    wa(p, slot, addr)
    wr(p, slot, 0, rec .. done .. id)
    redis.call('HSET', xkey(idf), idf, slot)
    lower(p, slot, now)
    if p.n == SMALL + 1 then
      -- the pool turns big: its blocks start at the pool's bound
      local b0 = math.min(p.min, now)
      for b = 0, math.floor(SMALL / BLK) do setb(p, b, b0) end
    end
  else
    -- a seeder flip (a plain re-announce took the branch above)
    if seeder then
      swap(slot, p.s)
      slot = p.s
      p.s = p.s + 1
      -- a leecher completing, once per stay in the swarm
      if ev == 3 and rpart(p, slot, 17, 1) ~= '\\1' then
        completed = completed + 1
        wr(p, slot, 17, '\\1')
      end
    else
      p.s = p.s - 1
      swap(slot, p.s)
      slot = p.s
    end
    if addr ~= old then
      wa(p, slot, addr)
      recount()
    end
    wr(p, slot, 0, rec)
    lower(p, slot, now)
  end
end
if p.n == 0 then
  p.s, p.min, p.cur = 0, 0, 0
elseif wrote and (nb == 0 or now < p.min) then
  p.min = now
  dirty = true
end
if dirty and now > last then last = now end
-- (the probe above ran: the swarm had XSPLIT - 1 peers or more)
if XK == 0 and P4.n + P6.n >= XSPLIT then xsplit(XMIX + 1 + math.floor(random * (XP - 1))) end
${FINISH}

local peers, ids = '', ''
if not stopped and want > 0 and p.n > 0 then
  local n = p.n
  local lo = 0
  if seeder then lo = p.s end
  local runs = window(n, lo, slot)
  if runs then
    -- a big pool's peers are checked before they are returned (its purge runs behind)
    local check = n > SMALL
    local pl, il = {}, {}
    for q = 1, 5, 2 do
      local a, b = runs[q], runs[q + 1]
      if b > a then
        local S
        if p.A and b <= p.na then
          S = string.sub(p.A, off + a * size + 1, off + b * size)
        else
          S = ad(p, a, b)
        end
        local Rd
        if withIdsb == 1 or check then Rd = rc(p, a, b) end
        -- due: the run's peers to leave out (a big pool's purge runs behind), or nil for none
        local due
        if check then
          for j = 1, b - a do
            if struct.unpack('>d', Rd, j * RS - 28) + life <= now then
              due = due or {}
              due[j] = true
            end
          end
        end
        if due then
          for j = 1, b - a do
            if not due[j] then pl[#pl + 1] = string.sub(S, (j - 1) * size + 1, j * size) end
          end
        else
          pl[#pl + 1] = S
        end
        if withIdsb == 1 then
          for j = 1, b - a do
            if not (due and due[j]) then il[#il + 1] = string.sub(Rd, j * RS - 19, j * RS) end
          end
        end
      end
    end
    peers, ids = table.concat(pl), table.concat(il)
  end
end
return struct.pack('>BI4I4I4', refused, P4.s + P6.s, live - P4.s - P6.s, completed) .. peers .. ids
`;

/**
 * ARGV: now, retention. Returns { complete, incomplete, downloaded }. Drops expired peers and a
 * forgotten swarm as an announce would (the same bounded step for a big pool), but does not extend
 * the retention.
 */
export const SCRAPE_LUA = `
${LAYOUT}
local now, retention = tonumber(ARGV[1]), tonumber(ARGV[2])
local life = nil
local M = redis.call('GETRANGE', KEYS[1], 0, H - 1)
${COMMON}
local refreshM, refresh6, ttl = false, false, 0
${FINISH}
return { P4.s + P6.s, live - P4.s - P6.s, completed }
`;

/** Bytes of one item of a batch before its announce argument: the info hash in hex, its length. */
export const BATCH_ITEM_HEAD = 41;

/**
 * Many announces in one call to the master that serves their swarms (issue 11): the call's own
 * cost (the client's command, RESP, one write and read, EVALSHA's ≈ 4–5 µs) is paid once per
 * batch. No key is declared (numkeys 0) and the flag lets the script touch keys of any slot this
 * node serves. ARGV[1]: the key prefix; ARGV[2]: the items, each the info hash's 40 hex digits,
 * one byte n, and the announce's n-byte argument (ANNOUNCE_LUA's ARGV[1]); ARGV[3], when given:
 * the deadline of the whole batch (its earliest item's; LATE_CHECK). Returns one string per
 * item: the announce's reply, or '' when this node does not serve the item's slot right now (the
 * slot is another node's, or being migrated: a key that never exists, read without ASKING,
 * fails on both sides of a migration: ASK on the source, MOVED on the target; probe() needs two
 * keys, as its call may come with ASKING). Such an item has written nothing, and the caller
 * sends it alone through the cluster client, which follows MOVED, ASK and TRYAGAIN. A slot
 * cannot start to move while a script runs, so an item that passed its probe completes here.
 */
export const ANNOUNCE_BATCH_LUA = `#!lua flags=allow-cross-slot-keys
local function announce(KEYS, ARGV)
${ANNOUNCE_LUA}
end
-- an item's keys, made when the script first reads them: the normal announce reads three of the
-- seven, and each string made costs (≈ 0.17 µs; bench/redis-script-profile.mjs)
local NAMES = { 'm', 'r4', 'p6', 'r6', 'x', 'c', 'b' }
local LAZY = { __index = function(t, i)
  local k = t[0] .. NAMES[i]
  t[i] = k
  return k
end }
${LATE_CHECK(3)}
local prefix, P = ARGV[1], ARGV[2]
local out = {}
local o = 1
while o <= #P do
  local keys = setmetatable({ [0] = prefix .. '{' .. string.sub(P, o, o + 39) .. '}:' }, LAZY)
  local n = string.byte(P, o + 40)
  local arg = string.sub(P, o + 41, o + 40 + n)
  o = o + 41 + n
  -- (one key that never exists: a call without ASKING fails on both sides of a migration)
  if type(redis.pcall('EXISTS', keys[1] .. '.p')) == 'table' then
    out[#out + 1] = ''
  else
    out[#out + 1] = announce(keys, { arg })
  end
end
return out
`;
