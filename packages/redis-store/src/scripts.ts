/*
 * The Lua scripts of the Redis store, loaded with ioredis defineCommand (sent by EVALSHA).
 * Both take the eleven keys of one swarm, all with the hash tag {<info_hash hex>} (one slot):
 *   KEYS[1] s   hash: c = times completed, l = last announce (ms, the caller's clock)
 *   KEYS[2..6]  the IPv4 pool: a4 i4 h4 e4 n4;  KEYS[7..11] the IPv6 pool: a6 i6 h6 e6 n6
 * A pool keeps its peers in dense slots 0..n-1, seeders first ([0, s)), leechers after:
 *   a  string: the compact addresses packed, slot i at i*size (6 or 18 bytes), so a selection is
 *      one contiguous window read with one or two GETRANGEs (the cheap reply shape, DESIGN.md);
 *   i  string: the 20-byte peer ids packed the same way;
 *   h  hash: peer id -> "<slot>:<counted 0|1><key fingerprint>";
 *   e  sorted set: peer id scored by its expiry (ms, the caller's clock);
 *   n  string "<peers>:<seeders>". Not fields of h: h and e are listpacks up to 128 peers, where
 *      every lookup is a linear scan (one HMGET on a 50-peer h measured ≈ 6 µs, a GET ≈ 1 µs).
 * Measured here (single server, 1,000 swarms × 50 peers, numWant 50, INFO commandstats):
 * ≈ 50–70 µs per announce (commandstats time, with the load generator on the same two cores),
 * against ≈ 2 µs for a trivial EVALSHA and ≈ 1–1.5 µs per simple redis.call; numWant 0 or 50
 * made no clear difference, so the reply shape is not where this script spends.
 * Removing a peer moves the last seeder / last leecher into the hole (O(1) commands); the strings
 * are not truncated (their tail past n*size is unused) and go with the pool when it empties.
 * Expiry is judged against the caller's `now`; the key TTLs (peer lifetime for the pool keys,
 * max(retention, lifetime) for s) only make idle swarms vanish from memory.
 */

const COMMON = `
local now = tonumber(ARGV[1])
local retention = tonumber(ARGV[2])

local function pool(base, size)
  local p = { a = KEYS[base], i = KEYS[base + 1], h = KEYS[base + 2], e = KEYS[base + 3], c = KEYS[base + 4],
    size = size, n = 0, s = 0 }
  local v = redis.call('GET', p.c)
  if v then
    local at = string.find(v, ':', 1, true)
    p.n = tonumber(string.sub(v, 1, at - 1))
    p.s = tonumber(string.sub(v, at + 1))
  end
  p.n0, p.s0 = p.n, p.s
  return p
end

local function parse(r)
  local c = string.find(r, ':', 1, true)
  return tonumber(string.sub(r, 1, c - 1)), string.sub(r, c + 1, c + 1), string.sub(r, c + 2)
end

local function getaddr(p, slot)
  return redis.call('GETRANGE', p.a, slot * p.size, slot * p.size + p.size - 1)
end

local function getid(p, slot)
  return redis.call('GETRANGE', p.i, slot * 20, slot * 20 + 19)
end

local function setslot(p, id, slot)
  local r = redis.call('HGET', p.h, id)
  redis.call('HSET', p.h, id, slot .. string.sub(r, string.find(r, ':', 1, true)))
end

local function move(p, from, to)
  local addr, id = getaddr(p, from), getid(p, from)
  redis.call('SETRANGE', p.a, to * p.size, addr)
  redis.call('SETRANGE', p.i, to * 20, id)
  setslot(p, id, to)
end

local function swap(p, x, y)
  if x == y then return end
  local ax, ix, ay, iy = getaddr(p, x), getid(p, x), getaddr(p, y), getid(p, y)
  redis.call('SETRANGE', p.a, x * p.size, ay)
  redis.call('SETRANGE', p.i, x * 20, iy)
  redis.call('SETRANGE', p.a, y * p.size, ax)
  redis.call('SETRANGE', p.i, y * 20, ix)
  setslot(p, ix, y)
  setslot(p, iy, x)
end

-- drops peer id at slot from h and the slots (the caller removes it from e)
local function remove(p, id, slot)
  redis.call('HDEL', p.h, id)
  local hole = slot
  if slot < p.s then
    hole = p.s - 1
    if slot ~= hole then move(p, hole, slot) end
    p.s = p.s - 1
  end
  local last = p.n - 1
  if hole ~= last then move(p, last, hole) end
  p.n = last
end

local function purge(p)
  local gone = redis.call('ZRANGEBYSCORE', p.e, '-inf', ARGV[1])
  if #gone == 0 then return end
  for _, id in ipairs(gone) do
    local r = redis.call('HGET', p.h, id)
    if r then remove(p, id, (parse(r))) end
  end
  redis.call('ZREMRANGEBYSCORE', p.e, '-inf', ARGV[1])
end

local function save(p)
  if p.n == 0 then
    if p.n0 ~= 0 then redis.call('DEL', p.a, p.i, p.h, p.e, p.c) end
  elseif p.n ~= p.n0 or p.s ~= p.s0 then
    redis.call('SET', p.c, p.n .. ':' .. p.s, 'KEEPTTL')
  end
end

local P4 = pool(2, 6)
local P6 = pool(7, 18)
purge(P4)
purge(P6)
local sw = redis.call('HMGET', KEYS[1], 'c', 'l')
local completed = tonumber(sw[1]) or 0
local last = tonumber(sw[2])
-- a swarm without live peers is forgotten once the retention has passed since its last announce
if P4.n + P6.n == 0 and (last == nil or now - last >= retention) then completed = 0 end
`;

/**
 * ARGV: now, retention, peer id, family (4|6), compact addr, key fingerprint ('' = none),
 * seeder (1|0), event, numWant, withPeerIds (1|0), expiry (now + lifetime), lifetime, random [0,1).
 * Returns { complete, incomplete, downloaded, peers (compact, packed), peer ids (packed or '') }.
 */
export const ANNOUNCE_LUA = `${COMMON}
local id, addr, fp = ARGV[3], ARGV[5], ARGV[6]
local seeder = ARGV[7] == '1'
local event = ARGV[8]
local want = tonumber(ARGV[9])
local withIds = ARGV[10] == '1'
local lifetime = tonumber(ARGV[12])
local p = P4
if ARGV[4] == '6' then p = P6 end
local stopped = event == 'stopped'

local slot, counted, efp = -1, '0', ''
local r = redis.call('HGET', p.h, id)
if r then slot, counted, efp = parse(r) end
-- an entry is changed only from its own IP (any port), or with the key it was stored with
local accepted = true
if slot >= 0 then
  accepted = string.sub(getaddr(p, slot), 1, p.size - 2) == string.sub(addr, 1, p.size - 2)
    or (fp ~= '' and efp == fp)
end

if stopped then
  if slot >= 0 and accepted then
    remove(p, id, slot)
    redis.call('ZREM', p.e, id)
  end
elseif accepted then
  local counting = seeder and event == 'completed'
  if slot < 0 then
    if seeder then
      if p.n > p.s then move(p, p.s, p.n) end
      slot = p.s
      p.s = p.s + 1
    else
      slot = p.n
    end
    p.n = p.n + 1
    redis.call('SETRANGE', p.i, slot * 20, id)
    counted = '0'
    if counting then
      completed = completed + 1
      counted = '1'
    end
  elseif seeder ~= (slot < p.s) then
    if seeder then
      swap(p, slot, p.s)
      slot = p.s
      p.s = p.s + 1
      -- a leecher completing, once per stay in the swarm
      if counting and counted == '0' then
        completed = completed + 1
        counted = '1'
      end
    else
      p.s = p.s - 1
      swap(p, slot, p.s)
      slot = p.s
    end
  end
  redis.call('SETRANGE', p.a, slot * p.size, addr)
  redis.call('HSET', p.h, id, slot .. ':' .. counted .. fp)
  redis.call('ZADD', p.e, ARGV[11], id)
end
save(P4)
save(P6)
if accepted and not stopped then
  local ttl = redis.call('PTTL', p.c)
  if ttl < lifetime then
    for _, k in ipairs({ p.a, p.i, p.h, p.e, p.c }) do redis.call('PEXPIRE', k, lifetime) end
  end
end

local live = P4.n + P6.n
if live == 0 and completed == 0 then
  redis.call('DEL', KEYS[1])
else
  redis.call('HSET', KEYS[1], 'c', completed, 'l', ARGV[1])
  redis.call('PEXPIRE', KEYS[1], math.ceil(math.max(retention, lifetime)))
end

local peers, ids = {}, {}
if not stopped and want > 0 and p.n > 0 then
  -- candidates: a seeder's the leechers [s, n), a leecher's the whole pool, minus the entry
  local lo = 0
  if seeder then lo = p.s end
  local hi = p.n
  local skip = hi
  if slot >= lo and slot < hi then skip = slot end
  local m = hi - lo
  if skip < hi then m = m - 1 end
  local k = math.min(want, m)
  if k > 0 then
    local start = lo + math.min(m - 1, math.floor(tonumber(ARGV[13]) * m))
    local stop = math.min(start + k, lo + m)
    local function take(x, y)
      if y <= x then return end
      peers[#peers + 1] = redis.call('GETRANGE', p.a, x * p.size, y * p.size - 1)
      if withIds then ids[#ids + 1] = redis.call('GETRANGE', p.i, x * 20, y * 20 - 1) end
    end
    -- virtual index v is slot v below skip, slot v + 1 from skip on
    local function window(x, y)
      if y <= skip then take(x, y)
      elseif x >= skip then take(x + 1, y + 1)
      else
        take(x, skip)
        take(skip + 1, y + 1)
      end
    end
    window(start, stop)
    if stop - start < k then window(lo, lo + k - (stop - start)) end
  end
end
return { P4.s + P6.s, live - P4.s - P6.s, completed, table.concat(peers), table.concat(ids) }
`;

/**
 * ARGV: now, retention. Returns { complete, incomplete, downloaded }. Drops expired peers and a
 * forgotten swarm as an announce would, but does not extend the retention.
 */
export const SCRAPE_LUA = `${COMMON}
save(P4)
save(P6)
local live = P4.n + P6.n
if live == 0 and completed == 0 then redis.call('DEL', KEYS[1]) end
return { P4.s + P6.s, live - P4.s - P6.s, completed }
`;
