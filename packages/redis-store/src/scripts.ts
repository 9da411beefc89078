/*
 * The Lua scripts of the Redis store, loaded with ioredis defineCommand (sent by EVALSHA).
 * Both take the five keys of one swarm, all with the hash tag {<info_hash hex>} (one slot):
 *   KEYS[1] m   the swarm header (HEADER_BYTES, big-endian, one struct.unpack: completed, last
 *               announce, peer lifetime, the TTL deadline of m and r4; per pool n (peers),
 *               s (seeders), cap (slots), the earliest announce time of its peers; the TTL
 *               deadline of p6 and r6), followed by the IPv4 pool: cap compact addresses (6 bytes
 *               each), then cap peer ids (20 bytes each);
 *   KEYS[2] r4  the IPv4 peers' records, 18 bytes a slot: the key record (1 if the peer announced
 *               a BEP 3 key | its 8-byte fingerprint (writeKeyRecord), or 9 zeros) | announce time (double, ms, the
 *               caller's clock) | 1 once counted completed;
 *   KEYS[3] p6  the IPv6 pool: cap addresses (18 bytes each), then cap peer ids;
 *   KEYS[4] r6  the IPv6 peers' records;
 *   KEYS[5] c   the completed count and the latest announce time it covers (u32, double); exists
 *               only while the count is > 0, and outlives the peers by the retention.
 * A pool keeps its peers in dense slots 0..n-1, seeders first ([0, s)), leechers after, as
 * fixed-width records in strings (no hash, no sorted set: their listpacks are scanned linearly,
 * and every field would move through Lua as a separate value). So a selection is one contiguous
 * window of compact addresses (cut in at most three runs), the cheap reply shape (DESIGN.md),
 * and a peer is found by a plain string.find of its id in the id region (a C memory search;
 * aligned hits only).
 * The normal announce, an IPv4 peer re-announcing, is two commands: GET m (the header and the
 * whole pool, which the search and the reply need anyway) and SETRANGE of its 17-byte record in
 * r4 (key record and time; the completed byte is not touched). The header is written back only
 * when a count, a bound or a deadline changed.
 * Capacity grows by doubling (4, 8, 16, …) when a new peer finds the pool full, and halves
 * (down to 4) when a purge leaves the pool at a quarter of it or less. A pool is purged (one pass
 * over its records, the strings rebuilt in order) only when its earliest announce time plus the
 * lifetime is due, so a normal announce never walks the records. Removing a peer moves the last
 * seeder / last leecher into the hole (O(1) commands).
 * Expiry is judged against the caller's `now` and the lifetime; the key TTLs only make idle
 * swarms vanish from memory: a pool's keys get lifetime × 1.25 (PEXPIRE) when their deadline kept
 * in the header (caller's clock) is less than a lifetime away, so about once per quarter
 * lifetime, without a PTTL call. (A caller clock behind the refresher's by more than a quarter
 * lifetime could see the pool keys expire first; an announce that finds them gone treats the
 * pool as empty, and a purge dates such peers to deadline − lifetime for the retention.)
 * The announce takes its scalars packed in one binary argument (every argument costs Redis
 * parsing and a Lua string: with 24 arguments an empty script cost ~3x a one-argument one).
 * Measured (bench/redis-cluster.mjs: a 3-master cluster on one core, numWant 50, 200,000 peers
 * in 4,000 torrents; the do-nothing EVALSHA of the same run as reference): the HASH + ZSET layout
 * before the packed strings ≈ 120-140 µs of masters' CPU per announce; eleven keys of packed
 * strings, 7 commands ≈ 49-53 µs; seven keys (a separate swarm record, 5 commands) ≈ 37 µs
 * against a 3.3-3.7 µs do-nothing EVALSHA; this layout ≈ 23 µs against 4.1, 87 bytes per peer.
 * Where the time goes, on one redis-server (bench/redis-script-profile.mjs, cutting the script
 * short at points): ≈ 17-18 µs in all; calling the script with its keys and argument and
 * unpacking it ≈ 5-5.5; the two closures +0.6; GET of the 1.7 kB main key +4.5; the header and
 * checks +1.2; SETRANGE +1.4; the selection (three substrings and a concatenation) +2.7; the
 * reply +1-2. The fast path for the normal announce saves ≈ 0.8 µs against the general path
 * (same run, alternated). What is left is the price of each redis.call and of moving strings
 * through Lua, not the logic.
 */

/** Bytes of the swarm header at the start of the main key (layout above). */
export const HEADER_BYTES = 76;

/** Constants of both scripts. */
const LAYOUT = `
local H = 76
local HF = '>I4dddI4I4I4dI4I4I4dd'
local REC = 18
`;

/** The start of both scripts after their arguments: reads the swarm, purges what is due. */
const COMMON = `
-- the main key: whole for an IPv4 announce (header and IPv4 pool; the announce fetched it
-- already), else its header only
if fam ~= 4 then
  M = redis.call('GETRANGE', KEYS[1], 0, H - 1)
  if #M < H then M = false end
end
local whole = fam == 4
local mainExists = M ~= false
local completed, last, hlife, dm, n4, s4, c4, min4, n6, s6, c6, min6, d6 = 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
local cExists = false
if M then
  completed, last, hlife, dm, n4, s4, c4, min4, n6, s6, c6, min6, d6 = struct.unpack(HF, M)
  cExists = completed > 0
else
  -- a new swarm, or one kept only for its completed count
  local cv = redis.call('GET', KEYS[5])
  if cv then
    cExists = true
    completed, last = struct.unpack('>I4d', cv)
  end
end
if life == nil then life = hlife end
local completed0, c40, c60 = completed, c4, c6
local dirty = false
local P6
if fam == 6 and c6 > 0 then P6 = redis.call('GET', KEYS[3]) end

if (n4 > 0 and min4 + life <= now) or (n6 > 0 and min6 + life <= now) then
  -- drops the pool's peers whose time + lifetime is due (order kept), folding their times into
  -- last; returns the pool key's content, n, s, cap and the earliest time of the live peers
  local function purge(P, off, size, pk, rk, n, s, cap, deadline)
    local h = ''
    if P and #P >= off + cap * (size + 20) then h = redis.call('GETRANGE', rk, 0, n * REC - 1) end
    local hl = #h
    local live, nl, sl, mn = {}, 0, 0, 0
    for slot = 0, n - 1 do
      local o = slot * REC
      if o + REC <= hl then
        local t = struct.unpack('>d', h, o + 10)
        if t + life > now then
          nl = nl + 1
          live[nl] = slot
          if slot < s then sl = sl + 1 end
          if nl == 1 or t < mn then mn = t end
        elseif t > last then
          last = t
        end
      else
        -- the pool keys expired (TTL) first: their peers announced by the deadline - lifetime
        local b = math.min(now, deadline - life)
        if b > last then last = b end
      end
    end
    dirty = true
    if nl == 0 then return P, 0, 0, 0, 0 end
    local ncap = cap
    while ncap > 4 and nl * 4 <= ncap do ncap = ncap / 2 end
    if nl == n and ncap == cap then return P, nl, sl, cap, mn end
    local a, i, r = {}, {}, {}
    local ib = off + cap * size
    for j = 1, nl do
      local slot = live[j]
      a[j] = string.sub(P, off + slot * size + 1, off + slot * size + size)
      i[j] = string.sub(P, ib + slot * 20 + 1, ib + slot * 20 + 20)
      r[j] = string.sub(h, slot * REC + 1, slot * REC + REC)
    end
    local pad = ncap - nl
    P = string.sub(P, 1, off) .. table.concat(a) .. string.rep('\\0', pad * size) .. table.concat(i) .. string.rep('\\0', pad * 20)
    redis.call('SET', pk, P, 'KEEPTTL')
    redis.call('SET', rk, table.concat(r) .. string.rep('\\0', pad * REC), 'KEEPTTL')
    return P, nl, sl, ncap, mn
  end
  if n4 > 0 and min4 + life <= now then
    if not whole then
      M = redis.call('GET', KEYS[1])
      whole = true
    end
    M, n4, s4, c4, min4 = purge(M, H, 6, KEYS[1], KEYS[2], n4, s4, c4, dm)
  end
  if n6 > 0 and min6 + life <= now then
    if P6 == nil then P6 = redis.call('GET', KEYS[3]) end
    P6, n6, s6, c6, min6 = purge(P6, 0, 18, KEYS[3], KEYS[4], n6, s6, c6, d6)
  end
end
-- a swarm without live peers is forgotten once the retention has passed since its last announce
if n4 + n6 == 0 and now - last >= retention then completed = 0 end
`;

/** Event codes of the announce's packed argument. */
export const EVENT_CODES = { none: 0, started: 1, stopped: 2, completed: 3, paused: 4 } as const;
/** Bytes of the announce's packed argument before the compact address. */
export const ANNOUNCE_ARG_BYTES = 73;

/**
 * ARGV[1], packed (big-endian): the key record (1 | 8-byte fingerprint, or 9 zero bytes for none:
 * writeKeyRecord), then doubles now, retention, lifetime, random [0,1), numWant; bytes family (4|6), seeder (1|0),
 * event (EVENT_CODES), withPeerIds (1|0); the 20-byte peer id; the compact address. Its first 17
 * bytes are the peer's record as stored (key record, time). Returns one string: complete,
 * incomplete, downloaded (u32 each, big-endian), the selected peers' compact addresses, then their
 * ids when asked (one bulk reply: cheaper to write and to parse than an array).
 */
export const ANNOUNCE_LUA = `
${LAYOUT}
local A = ARGV[1]
local now, retention, life, random, want, fam, seederb, ev, withIdsb = struct.unpack('>dddddBBBB', A, 10)
local rec = string.sub(A, 1, 17)
local id = string.sub(A, 54, 73)
local addr = string.sub(A, 74)

-- up to want peers for the announcer in slot (-1: not in the pool) of pool P (region at off,
-- cap slots of size bytes, n peers): a window of the candidates [lo, n) minus the announcer's
-- slot; returns their compact addresses and (when asked) their ids
local function pick(P, off, size, cap, n, lo, slot)
  local R = n - lo
  local skip = -1
  if slot >= lo and slot < n then skip = slot end
  local m = R
  if skip >= 0 then m = m - 1 end
  local k = math.min(want, m)
  if k <= 0 then return '', '' end
  -- L physical slots from a random start (wrapping once) covering k candidates, one cut out
  -- (the entry when inside the window, else the extra last one): at most three runs
  local L = k
  if skip >= 0 and k < R then L = k + 1 end
  if k == m then L = R end
  local start = lo + math.min(R - 1, math.floor(random * R))
  local first = math.min(L, n - start)
  local xa, xb, ya, yb, za, zb = start, start + first, lo, lo + L - first, 0, 0
  if L > k then
    local at = L - 1
    if skip >= 0 then
      at = skip - start
      if at < 0 then at = at + R end
      if at >= L then at = L - 1 end
    end
    if at < first then
      local c = start + at
      xa, xb, ya, yb, za, zb = start, c, c + 1, start + first, lo, lo + L - first
    else
      local c = lo + at - first
      yb, za, zb = c, c + 1, lo + L - first
    end
  end
  local peers = string.sub(P, off + xa * size + 1, off + xb * size) .. string.sub(P, off + ya * size + 1, off + yb * size)
    .. string.sub(P, off + za * size + 1, off + zb * size)
  local ids = ''
  if withIdsb == 1 then
    local b = off + cap * size
    ids = string.sub(P, b + xa * 20 + 1, b + xb * 20) .. string.sub(P, b + ya * 20 + 1, b + yb * 20)
      .. string.sub(P, b + za * 20 + 1, b + zb * 20)
  end
  return peers, ids
end

-- the slot of the peer id among the n live peers of pool P (ids at ib), or -1
local function find(P, ib, n)
  local from, limit = ib + 1, ib + n * 20
  while true do
    local at = string.find(P, id, from, true)
    if not at or at > limit then return -1 end
    if (at - ib - 1) % 20 == 0 then return (at - ib - 1) / 20 end
    from = at + 1
  end
end

local M = false
if fam == 4 then
  M = redis.call('GET', KEYS[1])
  -- the normal announce, first and alone: a known IPv4 peer re-announcing from the same address
  -- in the same role, nothing due for purging or a TTL refresh. It writes its record and nothing
  -- else, exactly as the general path below would (the model test runs both), in fewer steps.
  if M and ev ~= 2 then
    local completed, last, hlife, dm, n4, s4, c4, min4, n6, s6, c6, min6 = struct.unpack(HF, M)
    local ib = H + c4 * 6
    if n4 > 0 and min4 + life > now and now >= min4 and (n6 == 0 or min6 + life > now) and dm - now >= life
      and #M >= ib + c4 * 20 then
      local slot = find(M, ib, n4)
      if slot >= 0 and (seederb == 1) == (slot < s4) and string.sub(M, H + slot * 6 + 1, H + slot * 6 + 6) == addr then
        redis.call('SETRANGE', KEYS[2], slot * REC, rec)
        local peers, ids = '', ''
        if want > 0 then
          local lo = 0
          if seederb == 1 then lo = s4 end
          peers, ids = pick(M, H, 6, c4, n4, lo, slot)
        end
        return struct.pack('>I4I4I4', s4 + s6, n4 + n6 - s4 - s6, completed) .. peers .. ids
      end
    end
  end
end
${COMMON}
local seeder = seederb == 1
local stopped = ev == 2
local six = fam == 6
-- the announcer's pool: n, s, cap, earliest time, content (P: valid while it matches the key),
-- offset of its region in the pool key, record size, pool key, record key
local n, s, cap, min, P, off, size, pk, rk
if six then
  n, s, cap, min, P, off, size, pk, rk = n6, s6, c6, min6, P6, 0, 18, KEYS[3], KEYS[4]
else
  n, s, cap, min, P, off, size, pk, rk = n4, s4, c4, min4, M, H, 6, KEYS[1], KEYS[2]
end
-- the slot of peer id among the live ones, or -1
local slot = -1
if n > 0 then
  local ib = off + cap * size
  if not P or #P < ib + cap * 20 then
    -- the pool keys expired before the peers (see the TTLs above): the pool is empty
    n, s, cap = 0, 0, 0
    dirty = true
  else
    slot = find(P, ib, n)
  end
end

-- an entry is changed only from its own IP (any port), or with the key it was stored with
local accepted = true
local old
if slot >= 0 then
  old = string.sub(P, off + slot * size + 1, off + slot * size + size)
  if old ~= addr and string.sub(old, 1, size - 2) ~= string.sub(addr, 1, size - 2) then
    accepted = string.byte(A, 1) == 1 and redis.call('GETRANGE', rk, slot * REC, slot * REC + 8) == string.sub(A, 1, 9)
  end
end

local wrote = accepted and not stopped
local n0 = n
local t = math.ceil(life * 1.25)
local refreshM, refresh6 = false, false
if wrote then
  -- the TTLs of the main key and of the announcer's pool, refreshed once their deadline is less
  -- than a lifetime away
  if dm - now < life then
    dm = now + t
    refreshM = true
    dirty = true
  end
  if six and d6 - now < life then
    d6 = now + t
    refresh6 = true
    dirty = true
  end
end
local valid = true
if wrote and slot >= 0 and seeder == (slot < s) then
  -- a plain re-announce: its record (key record, time) and, when it moved, its address
  redis.call('SETRANGE', rk, slot * REC, rec)
  if old ~= addr then redis.call('SETRANGE', pk, off + slot * size, addr) end
else
  dirty = true
  local function move(from, to)
    local ib = off + cap * size
    redis.call('SETRANGE', pk, off + to * size, redis.call('GETRANGE', pk, off + from * size, off + from * size + size - 1))
    redis.call('SETRANGE', pk, ib + to * 20, redis.call('GETRANGE', pk, ib + from * 20, ib + from * 20 + 19))
    redis.call('SETRANGE', rk, to * REC, redis.call('GETRANGE', rk, from * REC, from * REC + REC - 1))
  end
  local function swap(x, y)
    if x == y then return end
    local ib = off + cap * size
    local ax = redis.call('GETRANGE', pk, off + x * size, off + x * size + size - 1)
    local ix = redis.call('GETRANGE', pk, ib + x * 20, ib + x * 20 + 19)
    local hx = redis.call('GETRANGE', rk, x * REC, x * REC + REC - 1)
    move(y, x)
    redis.call('SETRANGE', pk, off + y * size, ax)
    redis.call('SETRANGE', pk, ib + y * 20, ix)
    redis.call('SETRANGE', rk, y * REC, hx)
  end
  if stopped then
    if slot >= 0 and accepted then
      local hole = slot
      if slot < s then
        hole = s - 1
        if slot ~= hole then move(hole, slot) end
        s = s - 1
      end
      if hole ~= n - 1 then move(n - 1, hole) end
      n = n - 1
      valid = false
    end
  elseif accepted then
    local r = rec
    if slot < 0 then
      if n == cap then
        -- full: the pool is rebuilt with twice the capacity (its TTL from the pool's deadline)
        local ncap = 4
        if cap > 0 then ncap = cap * 2 end
        local deadline = dm
        if six then deadline = d6 end
        local px = math.ceil(deadline - now)
        local ib = off + cap * size
        local pre = ''
        if off > 0 then
          if P then pre = string.sub(P, 1, off) else pre = string.rep('\\0', off) end
        end
        local a, i, h = '', '', ''
        if n > 0 then
          a = string.sub(P, off + 1, off + n * size)
          i = string.sub(P, ib + 1, ib + n * 20)
          h = redis.call('GETRANGE', rk, 0, n * REC - 1)
        end
        P = pre .. a .. string.rep('\\0', (ncap - n) * size) .. i .. string.rep('\\0', (ncap - n) * 20)
        redis.call('SET', pk, P, 'PX', px)
        redis.call('SET', rk, h .. string.rep('\\0', (ncap - n) * REC), 'PX', px)
        cap = ncap
        if not six then mainExists = true end
      end
      if seeder then
        if n > s then
          move(s, n)
          valid = false
        end
        slot = s
        s = s + 1
      else
        slot = n
      end
      n = n + 1
      if seeder and ev == 3 then
        completed = completed + 1
        r = rec .. '\\1'
      else
        r = rec .. '\\0'
      end
      -- (P stays valid: the slot written is the announcer's, never part of its reply)
      redis.call('SETRANGE', pk, off + cap * size + slot * 20, id)
      redis.call('SETRANGE', pk, off + slot * size, addr)
    else
      -- a seeder flip (a plain re-announce took the other branch)
      if seeder then
        swap(slot, s)
        slot = s
        s = s + 1
        -- a leecher completing, once per stay in the swarm
        if ev == 3 and redis.call('GETRANGE', rk, slot * REC + 17, slot * REC + 17) ~= '\\1' then
          completed = completed + 1
          r = rec .. '\\1'
        end
      else
        s = s - 1
        swap(slot, s)
        slot = s
      end
      valid = false
      if addr ~= old then redis.call('SETRANGE', pk, off + slot * size, addr) end
    end
    redis.call('SETRANGE', rk, slot * REC, r)
  end
end
if n == 0 then
  s, cap, min = 0, 0, 0
elseif wrote and (n0 == 0 or now < min) then
  min = now
  dirty = true
end
if six then n6, s6, c6, min6 = n, s, cap, min else n4, s4, c4, min4 = n, s, cap, min end
if dirty and now > last then last = now end

local live = n4 + n6
if live == 0 then
  if mainExists then redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4]) end
  if completed > 0 then
    redis.call('SET', KEYS[5], struct.pack('>I4d', completed, last), 'PX', math.max(1, math.ceil(last + retention - now)))
  elseif cExists then
    redis.call('DEL', KEYS[5])
  end
else
  if dirty then
    local hdr = struct.pack(HF, completed, last, life, dm, n4, s4, c4, min4, n6, s6, c6, min6, d6)
    if c4 == 0 and c40 > 0 then
      -- the IPv4 pool emptied: the main key keeps the header only
      redis.call('DEL', KEYS[2])
      redis.call('SET', KEYS[1], hdr, 'KEEPTTL')
    elseif mainExists then
      redis.call('SETRANGE', KEYS[1], 0, hdr)
    else
      redis.call('SET', KEYS[1], hdr, 'PX', math.ceil(dm - now))
    end
    if c6 == 0 and c60 > 0 then redis.call('DEL', KEYS[3], KEYS[4]) end
    if refreshM then
      redis.call('PEXPIRE', KEYS[1], t)
      if c4 > 0 then redis.call('PEXPIRE', KEYS[2], t) end
    end
    if refresh6 and c6 > 0 then
      redis.call('PEXPIRE', KEYS[3], t)
      redis.call('PEXPIRE', KEYS[4], t)
    end
  end
  -- the count key, while there are peers: the count and the latest time a peer can have
  -- announced without a header write (the main key's deadline - lifetime)
  if completed > 0 then
    if completed ~= completed0 or refreshM or not cExists then
      local cl = dm - life
      redis.call('SET', KEYS[5], struct.pack('>I4d', completed, cl), 'PX', math.ceil(math.max(cl + retention, dm) - now))
    end
  elseif cExists then
    redis.call('DEL', KEYS[5])
  end
end

local peers, ids = '', ''
if not stopped and want > 0 and n > 0 then
  local lo = 0
  if seeder then lo = s end
  if not valid then P = redis.call('GET', pk) end
  peers, ids = pick(P, off, size, cap, n, lo, slot)
end
return struct.pack('>I4I4I4', s4 + s6, live - s4 - s6, completed) .. peers .. ids
`;

/**
 * ARGV: now, retention. Returns { complete, incomplete, downloaded }. Drops expired peers and a
 * forgotten swarm as an announce would, but does not extend the retention.
 */
export const SCRAPE_LUA = `
${LAYOUT}
local now, retention = tonumber(ARGV[1]), tonumber(ARGV[2])
local fam, life, M = 0, nil, false
${COMMON}
local live = n4 + n6
if live == 0 then
  if mainExists then
    redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
    if completed > 0 then
      redis.call('SET', KEYS[5], struct.pack('>I4d', completed, last), 'PX', math.max(1, math.ceil(last + retention - now)))
    end
  end
  if completed == 0 and cExists then redis.call('DEL', KEYS[5]) end
elseif dirty then
  local hdr = struct.pack(HF, completed, last, hlife, dm, n4, s4, c4, min4, n6, s6, c6, min6, d6)
  if c4 == 0 and c40 > 0 then
    redis.call('DEL', KEYS[2])
    redis.call('SET', KEYS[1], hdr, 'KEEPTTL')
  else
    redis.call('SETRANGE', KEYS[1], 0, hdr)
  end
  if c6 == 0 and c60 > 0 then redis.call('DEL', KEYS[3], KEYS[4]) end
end
return { s4 + s6, live - s4 - s6, completed }
`;
