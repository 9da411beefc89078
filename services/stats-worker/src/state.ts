/*
 * The statistics in Redis, written exactly once per event (DESIGN.md, invariant 7). Everything of
 * one Kafka partition lives under one hash tag, `<prefix>{p<n>}:` (a torrent's events all go to
 * one partition, so its statistics are that partition's), so one Lua script writes a batch's
 * aggregates together with the partition's next offset, atomically, on a Redis Cluster too:
 *   epoch        the fencing epoch: each worker that takes the partition increments it (claim),
 *                and a write carrying another epoch is refused, so a worker that lost the
 *                partition in a rebalance cannot write to it any more;
 *   offset       the next offset to consume; a write must start there (else it is a replay of
 *                events already counted, or a gap), and moves it past the batch;
 *   hw           the latest event time written (ms): how far the partition's events have come;
 *   t:<hash>     per torrent (hash): a announces, c completions, s / l seeders and leechers of
 *                its latest event, ls that event's time, ps / pl their peaks, f first seen (ms);
 *   hd:<hash>:<YYYY-MM>  per torrent per UTC day of that month: <DD>:a, <DD>:c, <DD>:ps, <DD>:pl
 *                (a key per month, so that a torrent active for years holds only the retained
 *                months: Redis 7.0 cannot expire a hash's fields);
 *   u:<hash>:<day>  HyperLogLog of the peer keys seen that UTC day (unique peers, an estimate);
 *                these two kept for Retention.torrentDays;
 *   m:<minute>, h:<hour>, d:<day>  per UTC period (ms at its start): announces, and by
 *                protocol:, event: and family:; active (torrents announced in it); late (announces
 *                that came after the period was sealed, see below). The writes go to minutes;
 *                hours and days are rolled up from them by the scheduled job (jobs.ts);
 *   ma:, ha:, da:<period>  the torrents announced in the period, while it is open: a torrent
 *                added to one for the first time adds 1 to the period's active;
 *   dirty        the hours (h:<ms>) and days (d:<ms>) changed since the last roll-up;
 *   open         the periods not sealed yet (h:<ms>, d:<ms>), scored by their end;
 *   za:, zc:<day>  per UTC day: announces and completions per torrent (the rankings the top
 *                lists are made from, kept for Retention.working);
 *   c:<day>      per UTC day: client name -> announces.
 * Sealing (jobs.ts) closes a period once the partition's events have passed its end by the
 * horizon: its roll-up becomes final, its torrent sets are deleted (the memory they hold is what
 * sealing is for). An event for a closed hour (sealed, or of a sealed day) still counts in every
 * counter: straight into the hour, with the hour's late, and into its day (rolled up again, or,
 * when the day is sealed, straight into it with the day's late); but no longer in the closed
 * periods' active.
 * Retention: keys expire by TTL (Retention), counted from their last write; nothing needs a scan.
 * A script is refused up front when Redis is out of memory (Redis 7 checks before running a
 * script without the allow-oom flag), and answers TRYAGAIN before writing anything while the
 * partition's slot is being migrated (the keys it derives may be on the other node), so a batch
 * is written whole or not at all.
 */
import type { ConnectionOptions } from 'node:tls';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { connectRedis } from '@peertracker/events';
import type { Delta } from './aggregate';

/** How long each kind of key is kept after its last write (seconds). */
export interface Retention {
  /** minute series */
  minutes: number;
  hours: number;
  /** day series, per-torrent totals, clients, top lists */
  days: number;
  /** a torrent's days (history and unique peers): a key per torrent and day or month */
  torrentDays: number;
  /**
   * working data: the per-day torrent rankings the top lists are made from, and the torrent sets
   * of periods never sealed (sealing deletes them)
   */
  working: number;
}

export const DEFAULT_RETENTION: Retention = { minutes: 2 * 86400, hours: 90 * 86400, days: 400 * 86400, torrentDays: 30 * 86400, working: 3 * 86400 };

/** One server (its URL carries credentials), or a cluster's seed nodes and credentials; TLS options for either. */
export type RedisTarget =
  | { url: string; tls?: ConnectionOptions }
  | { clusterNodes: { host: string; port: number }[]; username?: string; password?: string; tls?: ConnectionOptions };

/**
 * A client of the target with these options for each connection, the target's credentials and
 * TLS added; for a cluster, lazyConnect and enableAutoPipelining are the Cluster's own, and reads
 * go to masters.
 */
export function redisClient(target: RedisTarget, options: RedisOptions): Redis | Cluster {
  if ('url' in target) return new Redis(target.url, target.tls !== undefined ? { ...options, tls: target.tls } : options);
  const { lazyConnect, enableAutoPipelining, ...node } = options;
  return new Cluster(target.clusterNodes, {
    lazyConnect,
    enableAutoPipelining,
    scaleReads: 'master',
    redisOptions: { ...node, username: target.username, password: target.password, ...(target.tls !== undefined ? { tls: target.tls } : {}) },
  });
}

/** (the migration probe: both keys are absent, so a table answer means one is on another node) */
const PROBE = `
if type(redis.pcall('EXISTS', P .. 'probe.p', P .. 'probe.q')) == 'table' then
  return redis.error_reply('TRYAGAIN the partition state is being migrated')
end
`;

const CLAIM = `#!lua
local e = redis.call('INCR', KEYS[1])
return { e, redis.call('GET', KEYS[2]) or '' }
`;

const APPLY = `#!lua
local P = ARGV[1]
${PROBE}
local e = redis.call('GET', KEYS[1])
if e ~= ARGV[2] then return { 'fenced', e or '' } end
local o = redis.call('GET', KEYS[2])
if o and o ~= ARGV[3] then return { 'stale', o } end
local d = cjson.decode(ARGV[5])
local MT, HT, DT, WT, TT = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
local H, D = 3600000, 86400000
local function ms(x) return string.format('%d', x) end
-- (unpack takes a few thousand values at most: long lists go in pieces)
local function each(list, n, f)
  for i = 1, #list, n do f({ unpack(list, i, math.min(i + n - 1, #list)) }) end
end
local function add(k, cmd, list, ttl)
  local added = 0
  each(list, 1000, function(part) added = added + redis.call(cmd, k, unpack(part)) end)
  redis.call('EXPIRE', k, ttl)
  return added
end
-- the higher of a hash's number field and v
local function peak(k, f, v)
  local cur = redis.call('HGET', k, f)
  if not cur or tonumber(cur) < v then redis.call('HSET', k, f, v) end
end
for _, t in ipairs(d.t) do
  local k = P .. 't:' .. t[1]
  local cur = redis.call('HMGET', k, 'ls', 'ps', 'pl', 'f')
  redis.call('HINCRBY', k, 'a', t[2])
  if t[3] > 0 then redis.call('HINCRBY', k, 'c', t[3]) end
  local hs = {}
  if not cur[1] or tonumber(cur[1]) <= tonumber(t[6]) then
    hs[#hs + 1] = 's'; hs[#hs + 1] = t[4]; hs[#hs + 1] = 'l'; hs[#hs + 1] = t[5]; hs[#hs + 1] = 'ls'; hs[#hs + 1] = t[6]
  end
  if not cur[2] or tonumber(cur[2]) < t[7] then hs[#hs + 1] = 'ps'; hs[#hs + 1] = t[7] end
  if not cur[3] or tonumber(cur[3]) < t[8] then hs[#hs + 1] = 'pl'; hs[#hs + 1] = t[8] end
  if not cur[4] or tonumber(cur[4]) > tonumber(t[9]) then hs[#hs + 1] = 'f'; hs[#hs + 1] = t[9] end
  if #hs > 0 then redis.call('HSET', k, unpack(hs)) end
  redis.call('EXPIRE', k, DT)
  for _, x in ipairs(t[10]) do
    local day = x[1]
    -- (day is YYYY-MM-DD: the month's key, the day's fields)
    local hk, dd = P .. 'hd:' .. t[1] .. ':' .. day:sub(1, 7), day:sub(9, 10)
    redis.call('HINCRBY', hk, dd .. ':a', x[2])
    redis.call('ZINCRBY', P .. 'za:' .. day, x[2], t[1])
    if x[3] > 0 then
      redis.call('HINCRBY', hk, dd .. ':c', x[3])
      redis.call('ZINCRBY', P .. 'zc:' .. day, x[3], t[1])
    end
    peak(hk, dd .. ':ps', x[4])
    peak(hk, dd .. ':pl', x[5])
    redis.call('EXPIRE', hk, TT)
    add(P .. 'u:' .. t[1] .. ':' .. day, 'PFADD', x[6], TT)
  end
end
for _, day in ipairs(d.z) do
  redis.call('EXPIRE', P .. 'za:' .. day, WT)
  redis.call('EXPIRE', P .. 'zc:' .. day, WT)
end
-- a period is open (rolled up from minutes, its torrent sets kept) until sealed
local sealed = {}
local function isSealed(kind, start)
  local key = kind .. ':' .. ms(start)
  if sealed[key] == nil then sealed[key] = redis.call('HEXISTS', P .. key, 'sealed') == 1 end
  return sealed[key]
end
local function open(kind, start, length)
  redis.call('ZADD', P .. 'open', 'NX', start + length, kind .. ':' .. ms(start))
end
local function counts(k, list, ttl)
  for _, f in ipairs(list) do redis.call('HINCRBY', k, f[1], f[2]) end
  redis.call('EXPIRE', k, ttl)
end
-- an hour is closed when it is sealed, or its day is (an hour of a sealed day may have no key
-- of its own: no events in it, or its key expired before the day's)
local function hourClosed(hour) return isSealed('h', hour) or isSealed('d', hour - hour % D) end
for _, m in ipairs(d.m) do
  local minute = tonumber(m[1])
  local hour, day = minute - minute % H, minute - minute % D
  counts(P .. 'm:' .. m[1], m[2], MT)
  if not hourClosed(hour) then
    redis.call('SADD', P .. 'dirty', 'h:' .. ms(hour))
    open('h', hour, H)
    open('d', day, D)
  else
    -- late: straight into the closed hour, and into the day (rolled up again unless sealed)
    counts(P .. 'h:' .. ms(hour), m[2], HT)
    redis.call('HINCRBY', P .. 'h:' .. ms(hour), 'late', m[3])
    if not isSealed('d', day) then
      redis.call('SADD', P .. 'dirty', 'd:' .. ms(day))
      open('d', day, D)
    else
      counts(P .. 'd:' .. ms(day), m[2], DT)
      redis.call('HINCRBY', P .. 'd:' .. ms(day), 'late', m[3])
    end
  end
end
-- the torrents announced per period; a new one counts as active (not in a sealed period). The
-- sets are deleted when their period is sealed; their TTL only bounds them if that never happens.
local function active(kind, list, closed)
  for _, a in ipairs(list) do
    local start = tonumber(a[1])
    if not closed(start) then
      local n = add(P .. kind .. 'a:' .. a[1], 'SADD', a[2], WT)
      redis.call('HINCRBY', P .. kind .. ':' .. a[1], 'active', n)
    end
  end
end
active('m', d.a, function(s) return hourClosed(s - s % H) end)
active('h', d.ah, hourClosed)
active('d', d.ad, function(s) return isSealed('d', s) end)
for _, c in ipairs(d.c) do counts(P .. 'c:' .. c[1], c[2], DT) end
local hw = tonumber(redis.call('GET', P .. 'hw') or '0')
if d.x > hw then redis.call('SET', P .. 'hw', ms(d.x)) end
redis.call('SET', KEYS[2], ARGV[4])
return { 'ok', ARGV[4] }
`;

const ROLL = `#!lua
local P = ARGV[1]
${PROBE}
local HT, DT = tonumber(ARGV[2]), tonumber(ARGV[3])
local H, D = 3600000, 86400000
local function ms(x) return string.format('%d', x) end
local SKIP = { active = true, late = true, sealed = true }
-- target := the sum of the sources' counters (its active, late and sealed stay)
local function sum(target, sources, ttl)
  local acc, names = {}, {}
  for _, k in ipairs(sources) do
    local f = redis.call('HGETALL', k)
    for i = 1, #f, 2 do
      local n = f[i]
      if not SKIP[n] then
        if acc[n] == nil then names[#names + 1] = n; acc[n] = 0 end
        acc[n] = acc[n] + tonumber(f[i + 1])
      end
    end
  end
  -- (counters only grow: a lower sum means source keys expired, and the target keeps its value)
  local cur = #names > 0 and redis.call('HMGET', target, unpack(names)) or {}
  local hs = {}
  for i, n in ipairs(names) do
    if not cur[i] or tonumber(cur[i]) < acc[n] then hs[#hs + 1] = n; hs[#hs + 1] = ms(acc[n]) end
  end
  if #hs > 0 then redis.call('HSET', target, unpack(hs)) end
  if #names > 0 then redis.call('EXPIRE', target, ttl) end
end
local function rollHour(hour)
  local src = {}
  for i = 0, 59 do src[i + 1] = P .. 'm:' .. ms(hour + i * 60000) end
  sum(P .. 'h:' .. ms(hour), src, HT)
end
local function rollDay(day)
  local src = {}
  for i = 0, 23 do src[i + 1] = P .. 'h:' .. ms(day + i * H) end
  sum(P .. 'd:' .. ms(day), src, DT)
end
local function isSealed(kind, start) return redis.call('HEXISTS', P .. kind .. ':' .. ms(start), 'sealed') == 1 end
-- 1. the changed hours, then their days
local days, dayList = {}, {}
local function dayChanged(day)
  if not days[day] then days[day] = true; dayList[#dayList + 1] = day end
end
for _, m in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local t = tonumber(m:sub(3))
  if m:sub(1, 1) == 'h' then
    if not isSealed('h', t) then rollHour(t) end
    dayChanged(t - t % D)
  else
    dayChanged(t)
  end
  redis.call('SREM', KEYS[1], m)
end
for _, day in ipairs(dayList) do
  if not isSealed('d', day) then rollDay(day) end
end
-- 2. sealing (ARGV[4]: the horizon in ms; '' seals nothing): hours before days, since a day is
-- rolled up from its hours
if ARGV[4] == '' then return {} end
local HZ = tonumber(ARGV[4])
local hw = tonumber(redis.call('GET', P .. 'hw') or '0')
if ARGV[5] ~= '' and tonumber(ARGV[5]) > hw then hw = tonumber(ARGV[5]) end
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ms(hw - HZ))
table.sort(due, function(a, b)
  if a:sub(1, 1) ~= b:sub(1, 1) then return a:sub(1, 1) == 'h' end
  return tonumber(a:sub(3)) < tonumber(b:sub(3))
end)
local sealedDays = {}
for _, m in ipairs(due) do
  local t = tonumber(m:sub(3))
  if m:sub(1, 1) == 'h' then
    rollHour(t)
    redis.call('HSET', P .. 'h:' .. ms(t), 'sealed', 1)
    redis.call('EXPIRE', P .. 'h:' .. ms(t), HT)
    local sets = { P .. 'ha:' .. ms(t) }
    for i = 0, 59 do sets[#sets + 1] = P .. 'ma:' .. ms(t + i * 60000) end
    redis.call('DEL', unpack(sets))
  else
    rollDay(t)
    redis.call('HSET', P .. 'd:' .. ms(t), 'sealed', 1)
    redis.call('EXPIRE', P .. 'd:' .. ms(t), DT)
    redis.call('DEL', P .. 'da:' .. ms(t))
    sealedDays[#sealedDays + 1] = ms(t)
  end
  redis.call('ZREM', KEYS[2], m)
end
return sealedDays
`;

export type ApplyResult = { status: 'ok' } | { status: 'fenced'; epoch: string } | { status: 'stale'; offset: string };

interface Scripted {
  statsClaim(epochKey: string, offsetKey: string): Promise<[number, string]>;
  statsApply(epochKey: string, offsetKey: string, stem: string, epoch: string, from: string, to: string, delta: string, ...ttls: number[]): Promise<[string, string]>;
  statsRoll(dirtyKey: string, openKey: string, stem: string, hourTtl: number, dayTtl: number, horizonMs: string, progress: string): Promise<string[]>;
}

/** The delta as the script reads it (times as strings: Lua would print big numbers in e-notation). */
export function serializeDelta(d: Delta): string {
  const t: unknown[] = [];
  const z = new Set<string>();
  for (const [hex, x] of d.torrents) {
    const days = [...x.days].map(([day, y]) => {
      z.add(day);
      return [day, y.announces, y.completed, y.peakSeeders, y.peakLeechers, [...y.peers]];
    });
    t.push([hex, x.announces, x.completed, x.seeders, x.leechers, String(x.lastTime), x.peakSeeders, x.peakLeechers, String(x.firstTime), days]);
  }
  const m = [...d.minutes].map(([minute, f]) => [String(minute), [...f], f.get('announces') ?? 0]);
  const sets = (active: Map<number, Set<string>>) => [...active].map(([start, set]) => [String(start), [...set]]);
  const c = [...d.clients].map(([day, f]) => [day, [...f]]);
  // (cjson decodes [] as an empty table either way)
  return JSON.stringify({ t, z: [...z], m, a: sets(d.active), ah: sets(d.activeHours), ad: sets(d.activeDays), c, x: Number.isFinite(d.maxTime) ? d.maxTime : 0 });
}

export class StatsState {
  readonly client: Redis | Cluster;

  constructor(
    private readonly target: RedisTarget,
    readonly prefix = 'st:',
    readonly retention: Retention = DEFAULT_RETENTION,
  ) {
    this.client = redisClient(target, { lazyConnect: true, enableAutoPipelining: true, maxRetriesPerRequest: 3 });
    this.client.defineCommand('statsClaim', { numberOfKeys: 2, lua: CLAIM });
    this.client.defineCommand('statsApply', { numberOfKeys: 2, lua: APPLY });
    this.client.defineCommand('statsRoll', { numberOfKeys: 2, lua: ROLL });
  }

  /** Connects, or fails with the node's own reason (connectRedis). */
  async connect(): Promise<void> {
    await connectRedis(this.client, 'clusterNodes' in this.target ? this.target.clusterNodes[0] : undefined, this.target.tls);
  }

  /** the set of the partitions ever claimed */
  get partitionsKey(): string {
    return `${this.prefix}partitions`;
  }

  async partitions(): Promise<number[]> {
    return (await this.client.smembers(this.partitionsKey)).map(Number).sort((a, b) => a - b);
  }

  /** `<prefix>{p<n>}:`: every key of partition n starts so. */
  stem(partition: number): string {
    return `${this.prefix}{p${partition}}:`;
  }

  /** Takes the partition: a new epoch, and the next offset to consume ('' when none is stored). */
  async claim(partition: number): Promise<{ epoch: string; offset: string }> {
    const s = this.stem(partition);
    const [epoch, offset] = await (this.client as unknown as Scripted).statsClaim(`${s}epoch`, `${s}offset`);
    // (the readers and the scheduled jobs find the partitions here)
    await this.client.sadd(this.partitionsKey, String(partition));
    return { epoch: String(epoch), offset };
  }

  /** Writes the delta of offsets [from, to) of the partition, if the epoch is still current and the partition's offset is `from`. */
  async apply(partition: number, epoch: string, from: string, to: string, delta: Delta): Promise<ApplyResult> {
    const s = this.stem(partition);
    const r = this.retention;
    const [status, value] = await (this.client as unknown as Scripted).statsApply(`${s}epoch`, `${s}offset`, s, epoch, from, to, serializeDelta(delta), r.minutes, r.hours, r.days, r.working, r.torrentDays);
    if (status === 'ok') return { status };
    if (status === 'fenced') return { status, epoch: value };
    return { status: 'stale', offset: value };
  }

  /**
   * Rolls the partition's changed hours up from their minutes, and the changed days from their
   * hours; then, given a horizon, seals the periods that ended `horizonMs` or more before the
   * partition's latest event, or before `progress` (ms; when the partition has nothing left to
   * consume, so its own events cannot show how far time has come). Returns the days sealed (ms
   * at their start).
   */
  async roll(partition: number, horizonMs?: number, progress?: number): Promise<number[]> {
    const s = this.stem(partition);
    const opt = (v: number | undefined) => (v === undefined ? '' : String(v));
    const sealed = await (this.client as unknown as Scripted).statsRoll(`${s}dirty`, `${s}open`, s, this.retention.hours, this.retention.days, opt(horizonMs), opt(progress));
    return sealed.map(Number);
  }

  /** The partition's latest event time (ms; 0 before any). */
  async progress(partition: number): Promise<number> {
    return Number((await this.client.get(`${this.stem(partition)}hw`)) ?? 0);
  }

  async close(): Promise<void> {
    await this.client.quit().catch(() => this.client.disconnect());
  }
}
