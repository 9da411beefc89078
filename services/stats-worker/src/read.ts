/*
 * Reading the statistics for the API: every number is the sum (or the latest, or the peak) over
 * the partitions, since each partition keeps its own (state.ts). A torrent's events all go to one
 * partition, but its numbers are summed over all of them anyway, so that a topic given more
 * partitions later, which moves torrents between partitions, still reads whole.
 */
import { DAY_MS, HOUR_MS, MINUTE_MS, utcDay } from './aggregate';
import { topKey, type TopList } from './jobs';
import type { StatsState } from './state';

export type Resolution = 'minute' | 'hour' | 'day';
export const STEP_MS: Record<Resolution, number> = { minute: MINUTE_MS, hour: HOUR_MS, day: DAY_MS };
const SERIES_KEY: Record<Resolution, string> = { minute: 'm', hour: 'h', day: 'd' };

export interface SeriesPoint {
  time: string;
  announces: number;
  http: number;
  udp: number;
  ws: number;
  started: number;
  completed: number;
  stopped: number;
  paused: number;
  /** regular announces (no event) */
  none: number;
  ipv4: number;
  ipv6: number;
  activeTorrents: number;
  /** announces that came after the period was sealed (counted above, but not in activeTorrents) */
  late: number;
}

/** the fields of SeriesPoint after time, and the counter each comes from */
export const POINT_FIELDS: readonly (readonly [Exclude<keyof SeriesPoint, 'time'>, string])[] = [
  ['announces', 'announces'],
  ['http', 'protocol:http'],
  ['udp', 'protocol:udp'],
  ['ws', 'protocol:ws'],
  ['started', 'event:started'],
  ['completed', 'event:completed'],
  ['stopped', 'event:stopped'],
  ['paused', 'event:paused'],
  ['none', 'event:none'],
  ['ipv4', 'family:4'],
  ['ipv6', 'family:6'],
  ['activeTorrents', 'active'],
  ['late', 'late'],
];

export interface TorrentTotals {
  infoHash: string;
  announces: number;
  completions: number;
  seeders: number;
  leechers: number;
  peakSeeders: number;
  peakLeechers: number;
  firstSeen: string;
  lastSeen: string;
}

export interface TorrentDay {
  day: string;
  announces: number;
  completions: number;
  peakSeeders: number;
  peakLeechers: number;
  /** a HyperLogLog estimate (about 0.8 % standard error) */
  uniquePeers: number;
}

export interface ClientShare {
  client: string;
  announces: number;
  share: number;
}

export class StatsReader {
  constructor(private readonly state: StatsState) {}

  private get redis() {
    return this.state.client;
  }

  private async stems(): Promise<string[]> {
    return (await this.state.partitions()).map((p) => this.state.stem(p));
  }

  /** `count` points from `start` (a multiple of the step), each summed over the partitions. */
  async series(resolution: Resolution, start: number, count: number): Promise<SeriesPoint[]> {
    const stems = await this.stems();
    const step = STEP_MS[resolution];
    const kind = SERIES_KEY[resolution];
    const times = Array.from({ length: count }, (_, i) => start + i * step);
    const hashes = await Promise.all(times.map((t) => Promise.all(stems.map((s) => this.redis.hgetall(`${s}${kind}:${t}`)))));
    return times.map((t, i) => {
      const point = { time: new Date(t).toISOString() } as SeriesPoint;
      for (const [name, field] of POINT_FIELDS) point[name] = hashes[i].reduce((sum, h) => sum + Number(h[field] ?? 0), 0);
      return point;
    });
  }

  /** undefined when no partition knows the torrent */
  async torrent(infoHash: string): Promise<TorrentTotals | undefined> {
    const hashes = (await Promise.all((await this.stems()).map((s) => this.redis.hgetall(`${s}t:${infoHash}`)))).filter((h) => h.a !== undefined);
    if (hashes.length === 0) return undefined;
    const n = (h: Record<string, string>, f: string) => Number(h[f] ?? 0);
    // (the latest counts are those of the partition with the latest event)
    const latest = hashes.reduce((a, b) => (n(b, 'ls') > n(a, 'ls') ? b : a));
    return {
      infoHash,
      announces: hashes.reduce((s, h) => s + n(h, 'a'), 0),
      completions: hashes.reduce((s, h) => s + n(h, 'c'), 0),
      seeders: n(latest, 's'),
      leechers: n(latest, 'l'),
      peakSeeders: Math.max(...hashes.map((h) => n(h, 'ps'))),
      peakLeechers: Math.max(...hashes.map((h) => n(h, 'pl'))),
      firstSeen: new Date(Math.min(...hashes.map((h) => n(h, 'f')))).toISOString(),
      lastSeen: new Date(n(latest, 'ls')).toISOString(),
    };
  }

  /** The torrent's days from `start` (ms, a UTC midnight), `count` of them. */
  async history(infoHash: string, start: number, count: number): Promise<TorrentDay[]> {
    const stems = await this.stems();
    const days = Array.from({ length: count }, (_, i) => utcDay(start + i * DAY_MS));
    // the months' keys of every partition: month -> one hash per partition
    const months = [...new Set(days.map((d) => d.slice(0, 7)))];
    const byMonth = new Map(await Promise.all(months.map(async (m) => [m, await Promise.all(stems.map((s) => this.redis.hgetall(`${s}hd:${infoHash}:${m}`)))] as const)));
    // (per partition, then added: a torrent is in one partition unless the topic's partitions
    // were changed, and the keys of several partitions cannot be merged on a Redis Cluster)
    const unique = await Promise.all(days.map((day) => Promise.all(stems.map((s) => this.redis.pfcount(`${s}u:${infoHash}:${day}`)))));
    return days.map((day, i) => {
      const f = (name: string) => byMonth.get(day.slice(0, 7))!.map((h) => Number(h[`${day.slice(8)}:${name}`] ?? 0));
      return {
        day,
        announces: f('a').reduce((a, b) => a + b, 0),
        completions: f('c').reduce((a, b) => a + b, 0),
        peakSeeders: Math.max(0, ...f('ps')),
        peakLeechers: Math.max(0, ...f('pl')),
        uniquePeers: unique[i].reduce((a, b) => a + b, 0),
      };
    });
  }

  async clients(day: string): Promise<{ total: number; clients: ClientShare[] }> {
    const sum = new Map<string, number>();
    for (const h of await Promise.all((await this.stems()).map((s) => this.redis.hgetall(`${s}c:${day}`)))) {
      for (const [name, v] of Object.entries(h)) sum.set(name, (sum.get(name) ?? 0) + Number(v));
    }
    const total = [...sum.values()].reduce((a, b) => a + b, 0);
    const clients = [...sum]
      .map(([client, announces]) => ({ client, announces, share: total === 0 ? 0 : announces / total }))
      .sort((a, b) => b.announces - a.announces || (a.client < b.client ? -1 : 1));
    return { total, clients };
  }

  async top(by: TopList['by'], day: string): Promise<TopList | undefined> {
    const v = await this.redis.get(topKey(this.state.prefix, by, day));
    return v === null ? undefined : (JSON.parse(v) as TopList);
  }
}
