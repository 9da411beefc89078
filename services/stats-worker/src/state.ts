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
 *   t:<hash>     per torrent (hash): a announces, c completions, s / l seeders and leechers of
 *                its latest event, ls that event's time, ps / pl their peaks, f first seen (ms);
 *   u:<hash>:<day>  HyperLogLog of the peer keys seen that UTC day (unique peers, an estimate);
 *   m:<minute>   per UTC minute (ms): announces, and by protocol:, event: and family:;
 *   ma:<minute>  the set of torrents announced that minute (active torrents: its size);
 *   c:<day>      per UTC day: client name -> announces.
 * Minute keys expire after MINUTE_TTL_S, day keys after DAY_TTL_S (the roll-ups keep longer
 * series); torrents and partitions' epoch and offset do not expire.
 * A script is refused up front when Redis is out of memory (Redis 7 checks before running a
 * script without the allow-oom flag), and answers TRYAGAIN before writing anything while the
 * partition's slot is being migrated (the keys it derives may be on the other node), so a batch
 * is written whole or not at all.
 */
import { Cluster, Redis } from 'ioredis';
import type { Delta } from './aggregate';

export const MINUTE_TTL_S = 2 * 86400;
export const DAY_TTL_S = 400 * 86400;

export type RedisTarget = { url: string } | { clusterNodes: { host: string; port: number }[] };

const CLAIM = `#!lua
local e = redis.call('INCR', KEYS[1])
return { e, redis.call('GET', KEYS[2]) or '' }
`;

const APPLY = `#!lua
local P = ARGV[1]
if type(redis.pcall('EXISTS', P .. 'probe.p', P .. 'probe.q')) == 'table' then
  return redis.error_reply('TRYAGAIN the partition state is being migrated')
end
local e = redis.call('GET', KEYS[1])
if e ~= ARGV[2] then return { 'fenced', e or '' } end
local o = redis.call('GET', KEYS[2])
if o and o ~= ARGV[3] then return { 'stale', o } end
local d = cjson.decode(ARGV[5])
local MT, DT = ${MINUTE_TTL_S}, ${DAY_TTL_S}
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
end
-- (unpack takes a few thousand values at most: long lists go in pieces)
local function each(list, n, f)
  for i = 1, #list, n do f({ unpack(list, i, math.min(i + n - 1, #list)) }) end
end
-- members added to a key (PFADD, SADD), or counts added to a hash's fields; then its TTL
local function members(k, cmd, list, ttl)
  each(list, 1000, function(part) redis.call(cmd, k, unpack(part)) end)
  redis.call('EXPIRE', k, ttl)
end
local function counts(k, list, ttl)
  for _, f in ipairs(list) do redis.call('HINCRBY', k, f[1], f[2]) end
  redis.call('EXPIRE', k, ttl)
end
for _, u in ipairs(d.u) do members(P .. 'u:' .. u[1] .. ':' .. u[2], 'PFADD', u[3], DT) end
for _, a in ipairs(d.a) do members(P .. 'ma:' .. a[1], 'SADD', a[2], MT) end
for _, m in ipairs(d.m) do counts(P .. 'm:' .. m[1], m[2], MT) end
for _, c in ipairs(d.c) do counts(P .. 'c:' .. c[1], c[2], DT) end
redis.call('SET', KEYS[2], ARGV[4])
return { 'ok', ARGV[4] }
`;

export type ApplyResult = { status: 'ok' } | { status: 'fenced'; epoch: string } | { status: 'stale'; offset: string };

interface Scripted {
  statsClaim(epochKey: string, offsetKey: string): Promise<[number, string]>;
  statsApply(epochKey: string, offsetKey: string, stem: string, epoch: string, from: string, to: string, delta: string): Promise<[string, string]>;
}

/** The delta as the script reads it (times as strings: Lua would print big numbers in e-notation). */
export function serializeDelta(d: Delta): string {
  const t: unknown[] = [];
  const u: unknown[] = [];
  for (const [hex, x] of d.torrents) {
    t.push([hex, x.announces, x.completed, x.seeders, x.leechers, String(x.lastTime), x.peakSeeders, x.peakLeechers, String(x.firstTime)]);
    for (const [day, keys] of x.peers) u.push([hex, day, [...keys]]);
  }
  const m = [...d.minutes].map(([minute, f]) => [String(minute), [...f]]);
  const a = [...d.active].map(([minute, set]) => [String(minute), [...set]]);
  const c = [...d.clients].map(([day, f]) => [day, [...f]]);
  // (cjson decodes [] as an empty table either way)
  return JSON.stringify({ t, u, m, a, c });
}

export class StatsState {
  readonly client: Redis | Cluster;

  constructor(
    target: RedisTarget,
    readonly prefix = 'st:',
  ) {
    const options = { lazyConnect: true, enableAutoPipelining: true, maxRetriesPerRequest: 3 };
    this.client =
      'url' in target
        ? new Redis(target.url, options)
        : new Cluster(target.clusterNodes, { lazyConnect: true, enableAutoPipelining: true, redisOptions: { maxRetriesPerRequest: 3 }, scaleReads: 'master' });
    this.client.defineCommand('statsClaim', { numberOfKeys: 2, lua: CLAIM });
    this.client.defineCommand('statsApply', { numberOfKeys: 2, lua: APPLY });
  }

  async connect(): Promise<void> {
    await this.client.connect();
  }

  /** `<prefix>{p<n>}:`: every key of partition n starts so. */
  stem(partition: number): string {
    return `${this.prefix}{p${partition}}:`;
  }

  /** Takes the partition: a new epoch, and the next offset to consume ('' when none is stored). */
  async claim(partition: number): Promise<{ epoch: string; offset: string }> {
    const s = this.stem(partition);
    const [epoch, offset] = await (this.client as unknown as Scripted).statsClaim(`${s}epoch`, `${s}offset`);
    return { epoch: String(epoch), offset };
  }

  /** Writes the delta of offsets [from, to) of the partition, if the epoch is still current and the partition's offset is `from`. */
  async apply(partition: number, epoch: string, from: string, to: string, delta: Delta): Promise<ApplyResult> {
    const s = this.stem(partition);
    const [status, value] = await (this.client as unknown as Scripted).statsApply(`${s}epoch`, `${s}offset`, s, epoch, from, to, serializeDelta(delta));
    if (status === 'ok') return { status };
    if (status === 'fenced') return { status, epoch: value };
    return { status: 'stale', offset: value };
  }

  async close(): Promise<void> {
    await this.client.quit().catch(() => this.client.disconnect());
  }
}
