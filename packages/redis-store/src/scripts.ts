/*
 * The Lua scripts of the Redis store, loaded with ioredis defineCommand (sent by EVALSHA).
 * Both take the seven keys of one swarm, all with the hash tag {<info_hash hex>} (one slot):
 *   KEYS[1] s   the swarm record: ten big-endian doubles (80 bytes, one struct.unpack)
 *               completed, last announce (ms, the caller's clock), then per pool (IPv4, IPv6)
 *               peers, seeders, a lower bound of the earliest expiry, TTL deadline (below);
 *   KEYS[2..4]  the IPv4 pool: a4 i4 h4;  KEYS[5..7] the IPv6 pool: a6 i6 h6
 * A pool keeps its peers in dense slots 0..n-1, seeders first ([0, s)), leechers after, in three
 * strings of fixed-width records (no hash, no sorted set: their listpacks are scanned linearly,
 * and every field would move through Lua as a separate value):
 *   a  the compact addresses packed, slot i at i*size (6 or 18 bytes), so a selection is one
 *      contiguous window read with one (at most two) GETRANGE: the cheap reply shape (DESIGN.md);
 *   i  the 20-byte peer ids packed the same way; a peer is found with one GETRANGE of the live
 *      part and a plain string.find in Lua (a C memory search; aligned hits only);
 *   h  18-byte records: the key record (1 if the peer announced a BEP 3 key | its fingerprint, 8
 *      bytes, or zeros) | expiry (big-endian double, ms, the caller's clock) | 1 once counted
 *      completed. A re-announce rewrites the first 17 bytes with one SETRANGE, so the counted
 *      byte is not read; the key record is read only when an announce comes from another IP.
 * The record s is the only value read on every announce (one GET) and written on every announce
 * (one SET, which also sets its TTL). A pool is purged (one pass over h, the strings rebuilt in
 * order) only when its earliest-expiry bound is due, so a normal announce never walks the pool.
 * The announce takes its scalars packed in one binary argument (every argument costs Redis
 * parsing and a Lua string: with 24 arguments an empty script cost ~3x a one-argument one).
 * Removing a peer moves the last seeder / last leecher into the hole (O(1) commands); the strings
 * are not truncated (their tail past n records is unused) and go with the pool when it empties.
 * Expiry is judged against the caller's `now`; the key TTLs only make idle swarms vanish from
 * memory: s gets max(retention, lifetime) on every announce; the pool keys get lifetime * 1.25
 * (PEXPIRE) when the pool's TTL deadline kept in s (caller's clock, the time of that PEXPIRE plus
 * its TTL) is less than a lifetime away, so once per quarter lifetime, with no PTTL call. (A
 * caller clock behind the refresher's by more than a quarter lifetime could see the pool keys
 * expire first; an announce that finds them gone treats the pool as empty.)
 * A normal announce (small pool) is 5 commands: GET s, GETRANGE i, GETRANGE a, SETRANGE h, SET s.
 * Measured with bench/redis-cluster.mjs (3-master cluster on one core, numWant 50, 200,000 peers
 * in 4,000 torrents, 3 s runs alternated; a do-nothing EVALSHA cost 3.3-3.7 µs in the same runs):
 * the HASH + ZSET layout before the packed strings ≈ 120-140 µs of masters' CPU per announce;
 * the eleven-key packed layout (text s and n, a separate key-record string, MGET + PTTL on every
 * announce, 7 commands) ≈ 49-53 µs and 95 bytes per peer; this one ≈ 37-38 µs and 89 bytes per
 * peer (54-65 µs in runs where the do-nothing EVALSHA cost 4.6-5.0 µs; bench/redis-script-profile
 * on one server, numWant 50: ≈ 29-34 µs against 42-53 for the eleven-key layout). What is left is mostly fixed cost: in isolation (one redis-server, 7 keys + this argument)
 * an empty script costs ≈ 3.3 µs, GET +0.6, GETRANGE of 1,000 bytes +2.5, of 300 bytes +1.5,
 * SETRANGE +1.2, SET PX +2.1, the 5-element reply +1.9 (and more per command on a cluster
 * master with replicas). The strings grow by SETRANGE, whose allocation is greedy (up to 2x the
 * length), which is most of the bytes per peer above the 44 of the records.
 */

const COMMON = `
local REC = 18
local sv = redis.call('GET', KEYS[1])
local P4 = { a = KEYS[2], i = KEYS[3], h = KEYS[4], size = 6, n = 0, s = 0, min = 0, d = 0 }
local P6 = { a = KEYS[5], i = KEYS[6], h = KEYS[7], size = 18, n = 0, s = 0, min = 0, d = 0 }
local completed, last = 0, nil
if sv then
  if #sv == 80 then
    completed, last, P4.n, P4.s, P4.min, P4.d, P6.n, P6.s, P6.min, P6.d = struct.unpack('>dddddddddd', sv)
  else
    -- the text record of the eleven-key layout ("<completed>:<last>"); its pools are not read
    local at = string.find(sv, ':', 1, true)
    if at then
      completed = tonumber(string.sub(sv, 1, at - 1)) or 0
      last = tonumber(string.sub(sv, at + 1))
    end
  end
end
local completed0 = completed
P4.n0, P4.s0, P4.min0, P6.n0, P6.s0, P6.min0 = P4.n, P4.s, P4.min, P6.n, P6.s, P6.min

-- drops the peers whose expiry is due, when the pool's earliest expiry is (order kept)
local function purge(p)
  if p.n == 0 or p.min > now then return end
  local size = p.size
  local h = redis.call('GETRANGE', p.h, 0, p.n * REC - 1)
  local hl = #h
  local live = {}
  local n, s, min = 0, 0, nil
  for slot = 0, p.n - 1 do
    local o = slot * REC
    -- a record past the end of h: the pool keys expired (see the TTLs above)
    if o + REC <= hl then
      local exp = struct.unpack('>d', h, o + 10)
      if exp > now then
        n = n + 1
        live[n] = slot
        if slot < p.s then s = s + 1 end
        if min == nil or exp < min then min = exp end
      end
    end
  end
  if n < p.n and n > 0 then
    local a = redis.call('GETRANGE', p.a, 0, p.n * size - 1)
    local ids = redis.call('GETRANGE', p.i, 0, p.n * 20 - 1)
    local na, ni, nh = {}, {}, {}
    for j = 1, n do
      local slot = live[j]
      na[j] = string.sub(a, slot * size + 1, slot * size + size)
      ni[j] = string.sub(ids, slot * 20 + 1, slot * 20 + 20)
      nh[j] = string.sub(h, slot * REC + 1, slot * REC + REC)
    end
    redis.call('SET', p.a, table.concat(na), 'KEEPTTL')
    redis.call('SET', p.i, table.concat(ni), 'KEEPTTL')
    redis.call('SET', p.h, table.concat(nh), 'KEEPTTL')
  end
  p.n, p.s, p.min = n, s, min or 0
end

-- deletes the keys of a pool that has emptied
local function save(p)
  if p.n == 0 then
    p.s, p.min, p.d = 0, 0, 0
    if p.n0 ~= 0 then redis.call('DEL', p.a, p.i, p.h) end
  end
end

local function record(last)
  return struct.pack('>dddddddddd', completed, last, P4.n, P4.s, P4.min, P4.d, P6.n, P6.s, P6.min, P6.d)
end

purge(P4)
purge(P6)
-- a swarm without live peers is forgotten once the retention has passed since its last announce
if P4.n + P6.n == 0 and (last == nil or now - last >= retention) then completed = 0 end
`;

/** Event codes of the announce's packed argument. */
export const EVENT_CODES = { none: 0, started: 1, stopped: 2, completed: 3, paused: 4 } as const;
/** Bytes of the announce's packed argument before the key record, peer id and address. */
export const ANNOUNCE_HEADER_BYTES = 52;

/**
 * ARGV[1], packed (big-endian): doubles now, retention, expiry (now + lifetime), lifetime,
 * random [0,1), numWant; bytes family (4|6), seeder (1|0), event (EVENT_CODES), withPeerIds (1|0);
 * then the key record (1 | 8-byte fingerprint, or 9 zero bytes for none), the 20-byte peer id, the
 * compact address. Returns { complete, incomplete, downloaded, peers (compact, packed), peer ids }.
 */
export const ANNOUNCE_LUA = `
local now, retention, expiry, lifetime, random, want, family, seederb, ev, withIdsb =
  struct.unpack('>ddddddBBBB', ARGV[1])
local frec = string.sub(ARGV[1], 53, 61)
local id = string.sub(ARGV[1], 62, 81)
local addr = string.sub(ARGV[1], 82)
${COMMON}
local seeder = seederb == 1
local withIds = withIdsb == 1
local p = P4
if family == 6 then p = P6 end
local size = p.size
local stopped = ev == 2

local function move(from, to)
  redis.call('SETRANGE', p.a, to * size, redis.call('GETRANGE', p.a, from * size, from * size + size - 1))
  redis.call('SETRANGE', p.i, to * 20, redis.call('GETRANGE', p.i, from * 20, from * 20 + 19))
  redis.call('SETRANGE', p.h, to * REC, redis.call('GETRANGE', p.h, from * REC, from * REC + REC - 1))
end

local function swap(x, y)
  if x == y then return end
  local ax = redis.call('GETRANGE', p.a, x * size, x * size + size - 1)
  local ix = redis.call('GETRANGE', p.i, x * 20, x * 20 + 19)
  local hx = redis.call('GETRANGE', p.h, x * REC, x * REC + REC - 1)
  move(y, x)
  redis.call('SETRANGE', p.a, y * size, ax)
  redis.call('SETRANGE', p.i, y * 20, ix)
  redis.call('SETRANGE', p.h, y * REC, hx)
end

-- the live parts of a and i, read whole for small pools (then the acceptance check and the reply
-- are cut from them in Lua instead of more GETRANGEs); dropped when the pool's layout changes
local A, I
-- the slot of peer id among the live ones, or -1
local slot = -1
if p.n > 0 then
  local ids = redis.call('GETRANGE', p.i, 0, p.n * 20 - 1)
  if #ids < p.n * 20 then
    -- the pool keys expired before the peers (see the TTLs above): the pool is empty
    if #ids > 0 then redis.call('DEL', p.a, p.i, p.h) end
    p.n, p.s, p.min, p.d = 0, 0, 0, 0
  else
    I = ids
    if p.n * size <= 2048 then A = redis.call('GETRANGE', p.a, 0, p.n * size - 1) end
    local from = 1
    while true do
      local at = string.find(ids, id, from, true)
      if not at then break end
      if (at - 1) % 20 == 0 then
        slot = (at - 1) / 20
        break
      end
      from = at + 1
    end
  end
end

-- an entry is changed only from its own IP (any port), or with the key it was stored with
local accepted = true
local old
if slot >= 0 then
  if A then old = string.sub(A, slot * size + 1, slot * size + size)
  else old = redis.call('GETRANGE', p.a, slot * size, slot * size + size - 1) end
  if string.sub(old, 1, size - 2) ~= string.sub(addr, 1, size - 2) then
    accepted = string.byte(frec, 1) == 1 and redis.call('GETRANGE', p.h, slot * REC, slot * REC + 8) == frec
  end
end

if accepted and (stopped or slot < 0 or seeder ~= (slot < p.s) or addr ~= old) then A, I = nil, nil end
-- p.min is a bound only while the pool has peers
local wasEmpty = p.n == 0
if stopped then
  if slot >= 0 and accepted then
    local hole = slot
    if slot < p.s then
      hole = p.s - 1
      if slot ~= hole then move(hole, slot) end
      p.s = p.s - 1
    end
    if hole ~= p.n - 1 then move(p.n - 1, hole) end
    p.n = p.n - 1
  end
elseif accepted then
  local counting = seeder and ev == 3
  local rec = frec .. struct.pack('>d', expiry)
  if slot < 0 then
    if seeder then
      if p.n > p.s then move(p.s, p.n) end
      slot = p.s
      p.s = p.s + 1
    else
      slot = p.n
    end
    p.n = p.n + 1
    if counting then
      completed = completed + 1
      rec = rec .. '\\1'
    else
      rec = rec .. '\\0'
    end
    redis.call('SETRANGE', p.i, slot * 20, id)
    redis.call('SETRANGE', p.a, slot * size, addr)
  else
    if seeder ~= (slot < p.s) then
      if seeder then
        swap(slot, p.s)
        slot = p.s
        p.s = p.s + 1
        -- a leecher completing, once per stay in the swarm
        if counting and redis.call('GETRANGE', p.h, slot * REC + 17, slot * REC + 17) ~= '\\1' then
          completed = completed + 1
          rec = rec .. '\\1'
        end
      else
        p.s = p.s - 1
        swap(slot, p.s)
        slot = p.s
      end
    end
    if addr ~= old then redis.call('SETRANGE', p.a, slot * size, addr) end
  end
  redis.call('SETRANGE', p.h, slot * REC, rec)
  if wasEmpty or expiry < p.min then p.min = expiry end
  -- the pool keys' TTLs, refreshed once their deadline is less than a lifetime away
  if p.d - now < lifetime then
    local t = math.ceil(lifetime * 1.25)
    redis.call('PEXPIRE', p.a, t)
    redis.call('PEXPIRE', p.i, t)
    redis.call('PEXPIRE', p.h, t)
    p.d = now + t
  end
end
save(P4)
save(P6)

local live = P4.n + P6.n
if live == 0 and completed == 0 then
  if sv then redis.call('DEL', KEYS[1]) end
else
  redis.call('SET', KEYS[1], record(now), 'PX', math.ceil(math.max(retention, lifetime)))
end

local peers, ids = '', ''
if not stopped and want > 0 and p.n > 0 then
  -- candidates: a seeder's the leechers [s, n), a leecher's the whole pool, minus the entry
  local lo = 0
  if seeder then lo = p.s end
  local hi = p.n
  local skip = -1
  if slot >= lo and slot < hi then skip = slot end
  local m = hi - lo
  if skip >= 0 then m = m - 1 end
  local k = math.min(want, m)
  if k > 0 then
    -- L physical slots from a random start (wrapping once), covering k candidates
    local L = k
    if skip >= 0 and k < hi - lo then L = k + 1 end
    if k == m then L = hi - lo end
    local start = lo + math.min(hi - lo - 1, math.floor(random * (hi - lo)))
    local first = math.min(L, hi - start)
    local function read(key, w, whole)
      local r
      if whole then
        r = string.sub(whole, start * w + 1, (start + first) * w)
        if first < L then r = r .. string.sub(whole, lo * w + 1, (lo + L - first) * w) end
      elseif first < L and L == hi - lo then
        r = redis.call('GETRANGE', key, lo * w, hi * w - 1)
        r = string.sub(r, (start - lo) * w + 1) .. string.sub(r, 1, (start - lo) * w)
      else
        r = redis.call('GETRANGE', key, start * w, (start + first) * w - 1)
        if first < L then r = r .. redis.call('GETRANGE', key, lo * w, (lo + L - first) * w - 1) end
      end
      -- the entry (when read) is cut out, else the extra record at the end
      local cut = L - 1
      if skip >= 0 then
        local at = skip - start
        if at < 0 then at = at + hi - lo end
        if at < L then cut = at end
      end
      if L > k then r = string.sub(r, 1, cut * w) .. string.sub(r, cut * w + w + 1) end
      return r
    end
    peers = read(p.a, size, A)
    if withIds then ids = read(p.i, 20, I) end
  end
end
return { P4.s + P6.s, live - P4.s - P6.s, completed, peers, ids }
`;

/**
 * ARGV: now, retention. Returns { complete, incomplete, downloaded }. Drops expired peers and a
 * forgotten swarm as an announce would, but does not extend the retention.
 */
export const SCRAPE_LUA = `
local now, retention = tonumber(ARGV[1]), tonumber(ARGV[2])
${COMMON}
save(P4)
save(P6)
local live = P4.n + P6.n
if live == 0 and completed == 0 then
  if sv then redis.call('DEL', KEYS[1]) end
elseif completed ~= completed0 or #sv ~= 80 or P4.n ~= P4.n0 or P4.s ~= P4.s0 or P4.min ~= P4.min0
  or P6.n ~= P6.n0 or P6.s ~= P6.s0 or P6.min ~= P6.min0 then
  redis.call('SET', KEYS[1], record(last), 'KEEPTTL')
end
return { P4.s + P6.s, live - P4.s - P6.s, completed }
`;
