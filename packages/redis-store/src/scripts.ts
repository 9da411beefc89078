/*
 * The Lua scripts of the Redis store, loaded with ioredis defineCommand (sent by EVALSHA).
 * Both take the eleven keys of one swarm, all with the hash tag {<info_hash hex>} (one slot):
 *   KEYS[1] s   string "<times completed>:<last announce (ms, the caller's clock)>"
 *   KEYS[2..6]  the IPv4 pool: a4 i4 h4 e4 n4;  KEYS[7..11] the IPv6 pool: a6 i6 h6 e6 n6
 * A pool keeps its peers in dense slots 0..n-1, seeders first ([0, s)), leechers after, in four
 * strings of fixed-width records (no hash, no sorted set: their listpacks are scanned linearly,
 * and every field would move through Lua as a separate value):
 *   a  the compact addresses packed, slot i at i*size (6 or 18 bytes), so a selection is one
 *      contiguous window read with one (at most two) GETRANGE: the cheap reply shape (DESIGN.md);
 *   i  the 20-byte peer ids packed the same way; a peer is found with one GETRANGE of the live
 *      part and a plain string.find in Lua (a C memory search; aligned hits only);
 *   h  9-byte records: expiry (big-endian double, ms, the caller's clock) | 1 once counted
 *      completed. A re-announce rewrites the expiry only, so the counted byte is not read;
 *   e  9-byte records: 1 if the peer announced a BEP 3 key | its fingerprint (8 bytes, or zeros);
 *      read only when an announce comes from another IP;
 *   n  "<peers>:<seeders>:<a lower bound of the earliest expiry>": the only value of a pool read
 *      on every announce. The pool is purged (one pass over h, the strings rebuilt in order) only
 *      when that bound is due, so a normal announce never walks the pool.
 * The announce takes its scalars packed in one binary argument (every argument costs Redis
 * parsing and a Lua string: with 24 arguments an empty script cost ~3x a one-argument one).
 * Removing a peer moves the last seeder / last leecher into the hole (O(1) commands); the strings
 * are not truncated (their tail past n records is unused) and go with the pool when it empties.
 * Expiry is judged against the caller's `now`; the key TTLs only make idle swarms vanish from
 * memory: the pool keys get lifetime * 1.25 whenever their TTL has fallen below the lifetime (so
 * once per quarter lifetime, not on every announce), s gets max(retention, lifetime).
 * Measured with bench/redis-cluster.mjs (3-master cluster on one core, numWant 50; noisy machine,
 * a do-nothing EVALSHA cost 3.6-5.7 µs in the same runs): the HASH + ZSET layout before this one
 * ≈ 120-140 µs of masters' CPU per announce and 133-151 bytes per peer; this one ≈ 51-65 µs and
 * 77-96 bytes per peer (1,000,000 / 200,000 peers). bench/redis-script-profile.mjs shows where
 * the rest goes: ≈ 10 µs for an empty script with this argument shape, ≈ 2.5 µs per redis.call.
 */

const COMMON = `
local REC, FREC = 9, 9
local v = redis.call('MGET', KEYS[1], KEYS[6], KEYS[11])

local function pool(base, size, nv)
  local p = { a = KEYS[base], i = KEYS[base + 1], h = KEYS[base + 2], e = KEYS[base + 3], c = KEYS[base + 4],
    size = size, n = 0, s = 0 }
  if nv then
    local x = string.find(nv, ':', 1, true)
    local y = string.find(nv, ':', x + 1, true)
    p.n = tonumber(string.sub(nv, 1, x - 1))
    p.s = tonumber(string.sub(nv, x + 1, y - 1))
    p.min = tonumber(string.sub(nv, y + 1))
  end
  p.n0, p.s0, p.min0 = p.n, p.s, p.min
  return p
end

-- drops the peers whose expiry is due, when the pool's earliest expiry is (order kept)
local function purge(p)
  if p.n == 0 or (p.min and p.min > now) then return end
  local size = p.size
  local a = redis.call('GETRANGE', p.a, 0, p.n * size - 1)
  local ids = redis.call('GETRANGE', p.i, 0, p.n * 20 - 1)
  local h = redis.call('GETRANGE', p.h, 0, p.n * REC - 1)
  local na, ni, nh, live = {}, {}, {}, {}
  local n, s, min = 0, 0, nil
  for slot = 0, p.n - 1 do
    local r = string.sub(h, slot * REC + 1, slot * REC + REC)
    local exp = struct.unpack('>d', r)
    if exp > now then
      n = n + 1
      if slot < p.s then s = s + 1 end
      na[n] = string.sub(a, slot * size + 1, slot * size + size)
      ni[n] = string.sub(ids, slot * 20 + 1, slot * 20 + 20)
      nh[n] = r
      live[n] = slot
      if min == nil or exp < min then min = exp end
    end
  end
  if n < p.n and n > 0 then
    local f = redis.call('GETRANGE', p.e, 0, p.n * FREC - 1)
    local nf = {}
    for j = 1, n do nf[j] = string.sub(f, live[j] * FREC + 1, live[j] * FREC + FREC) end
    redis.call('SET', p.a, table.concat(na), 'KEEPTTL')
    redis.call('SET', p.i, table.concat(ni), 'KEEPTTL')
    redis.call('SET', p.h, table.concat(nh), 'KEEPTTL')
    redis.call('SET', p.e, table.concat(nf), 'KEEPTTL')
  end
  p.n, p.s, p.min = n, s, min
end

local function save(p)
  if p.n == 0 then
    if p.n0 ~= 0 then redis.call('DEL', p.a, p.i, p.h, p.e, p.c) end
  elseif p.n ~= p.n0 or p.s ~= p.s0 or p.min ~= p.min0 then
    redis.call('SET', p.c, p.n .. ':' .. p.s .. ':' .. string.format('%.17g', p.min), 'KEEPTTL')
  end
end

local P4 = pool(2, 6, v[2])
local P6 = pool(7, 18, v[3])
purge(P4)
purge(P6)
local completed, last = 0, nil
if v[1] then
  local at = string.find(v[1], ':', 1, true)
  completed = tonumber(string.sub(v[1], 1, at - 1))
  last = tonumber(string.sub(v[1], at + 1))
end
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
  redis.call('SETRANGE', p.e, to * FREC, redis.call('GETRANGE', p.e, from * FREC, from * FREC + FREC - 1))
end

local function swap(x, y)
  if x == y then return end
  local ax = redis.call('GETRANGE', p.a, x * size, x * size + size - 1)
  local ix = redis.call('GETRANGE', p.i, x * 20, x * 20 + 19)
  local hx = redis.call('GETRANGE', p.h, x * REC, x * REC + REC - 1)
  local fx = redis.call('GETRANGE', p.e, x * FREC, x * FREC + FREC - 1)
  move(y, x)
  redis.call('SETRANGE', p.a, y * size, ax)
  redis.call('SETRANGE', p.i, y * 20, ix)
  redis.call('SETRANGE', p.h, y * REC, hx)
  redis.call('SETRANGE', p.e, y * FREC, fx)
end

-- the live parts of a and i, read whole for small pools (then the acceptance check and the reply
-- are cut from them in Lua instead of more GETRANGEs); dropped when the pool's layout changes
local A, I
-- the slot of peer id among the live ones, or -1
local slot = -1
if p.n > 0 then
  local ids = redis.call('GETRANGE', p.i, 0, p.n * 20 - 1)
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

-- an entry is changed only from its own IP (any port), or with the key it was stored with
local accepted = true
local old
if slot >= 0 then
  if A then old = string.sub(A, slot * size + 1, slot * size + size)
  else old = redis.call('GETRANGE', p.a, slot * size, slot * size + size - 1) end
  if string.sub(old, 1, size - 2) ~= string.sub(addr, 1, size - 2) then
    accepted = string.byte(frec, 1) == 1 and redis.call('GETRANGE', p.e, slot * FREC, slot * FREC + FREC - 1) == frec
  end
end

if accepted and (stopped or slot < 0 or seeder ~= (slot < p.s) or addr ~= old) then A, I = nil, nil end
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
  local exp = struct.pack('>d', expiry)
  if slot < 0 then
    if seeder then
      if p.n > p.s then move(p.s, p.n) end
      slot = p.s
      p.s = p.s + 1
    else
      slot = p.n
    end
    p.n = p.n + 1
    local counted = '\\0'
    if counting then
      completed = completed + 1
      counted = '\\1'
    end
    redis.call('SETRANGE', p.i, slot * 20, id)
    redis.call('SETRANGE', p.a, slot * size, addr)
    redis.call('SETRANGE', p.h, slot * REC, exp .. counted)
    redis.call('SETRANGE', p.e, slot * FREC, frec)
  else
    if seeder ~= (slot < p.s) then
      if seeder then
        swap(slot, p.s)
        slot = p.s
        p.s = p.s + 1
        -- a leecher completing, once per stay in the swarm
        if counting and redis.call('GETRANGE', p.h, slot * REC + 8, slot * REC + 8) ~= '\\1' then
          completed = completed + 1
          redis.call('SETRANGE', p.h, slot * REC + 8, '\\1')
        end
      else
        p.s = p.s - 1
        swap(slot, p.s)
        slot = p.s
      end
    end
    if addr ~= old then redis.call('SETRANGE', p.a, slot * size, addr) end
    redis.call('SETRANGE', p.h, slot * REC, exp)
    redis.call('SETRANGE', p.e, slot * FREC, frec)
  end
  if p.min == nil or expiry < p.min then p.min = expiry end
end
save(P4)
save(P6)
if accepted and not stopped then
  local ttl = redis.call('PTTL', p.c)
  if ttl < lifetime then
    local t = math.ceil(lifetime * 1.25)
    for _, k in ipairs({ p.a, p.i, p.h, p.e, p.c }) do redis.call('PEXPIRE', k, t) end
  end
end

local live = P4.n + P6.n
if live == 0 and completed == 0 then
  if v[1] then redis.call('DEL', KEYS[1]) end
else
  redis.call('SET', KEYS[1], completed .. ':' .. string.format('%.17g', now), 'PX', math.ceil(math.max(retention, lifetime)))
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
if live == 0 and completed == 0 and v[1] then redis.call('DEL', KEYS[1]) end
return { P4.s + P6.s, live - P4.s - P6.s, completed }
`;
