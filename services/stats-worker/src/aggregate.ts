/*
 * What one batch of announce events adds to the statistics, folded in memory before the one
 * atomic write to Redis (state.ts). Pure: events in, a delta out.
 *
 * Per torrent: announces, completions (event=completed), the seeders and leechers of its latest
 * event (the counts the gateway answered with) and their peaks, first and last seen; and per UTC
 * day its announces, completions, peaks and the peer keys seen (for a HyperLogLog: unique peers,
 * an estimate).
 * Global, per UTC minute: announces by protocol, by event and by address family; the torrents
 * announced per minute, hour and day (their count is the period's active torrents). Per UTC day:
 * announces by client software (its name and version, clientName()).
 */
import { clientName, type AnnounceEvent } from '@peertracker/events';

export interface TorrentDelta {
  announces: number;
  completed: number;
  /** of the latest event (by time; the later one of equal times) */
  seeders: number;
  leechers: number;
  lastTime: number;
  peakSeeders: number;
  peakLeechers: number;
  firstTime: number;
  /** UTC day (YYYY-MM-DD) -> that day's part */
  days: Map<string, TorrentDay>;
}

export interface TorrentDay {
  announces: number;
  completed: number;
  peakSeeders: number;
  peakLeechers: number;
  /** peer keys (hex) */
  peers: Set<string>;
}

export interface Delta {
  events: number;
  /** the latest event time (ms; -Infinity when empty) */
  maxTime: number;
  /** info hash (hex) -> its delta */
  torrents: Map<string, TorrentDelta>;
  /** UTC minute (ms since the epoch, a multiple of 60,000) -> field -> count */
  minutes: Map<number, Map<string, number>>;
  /** UTC minute, hour and day (ms at its start) -> info hashes (hex) announced in it */
  active: Map<number, Set<string>>;
  activeHours: Map<number, Set<string>>;
  activeDays: Map<number, Set<string>>;
  /** UTC day -> client name -> announces */
  clients: Map<string, Map<string, number>>;
}

export const MINUTE_MS = 60_000;
export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;

export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

export function emptyDelta(): Delta {
  return { events: 0, maxTime: -Infinity, torrents: new Map(), minutes: new Map(), active: new Map(), activeHours: new Map(), activeDays: new Map(), clients: new Map() };
}

function inc<K>(m: Map<K, number>, k: K, by = 1): void {
  m.set(k, (m.get(k) ?? 0) + by);
}

function inner<K, V>(m: Map<K, V>, k: K, make: () => V): V {
  let v = m.get(k);
  if (v === undefined) {
    v = make();
    m.set(k, v);
  }
  return v;
}

/** Adds events to a delta (in the order they were published). */
export function addEvents(d: Delta, events: readonly AnnounceEvent[]): Delta {
  for (const e of events) {
    d.events++;
    if (e.time > d.maxTime) d.maxTime = e.time;
    const hex = e.infoHash.toString('hex');
    let t = d.torrents.get(hex);
    if (t === undefined) {
      t = { announces: 0, completed: 0, seeders: e.seeders, leechers: e.leechers, lastTime: e.time, peakSeeders: 0, peakLeechers: 0, firstTime: e.time, days: new Map() };
      d.torrents.set(hex, t);
    }
    t.announces++;
    if (e.event === 'completed') t.completed++;
    if (e.time >= t.lastTime) {
      t.lastTime = e.time;
      t.seeders = e.seeders;
      t.leechers = e.leechers;
    }
    if (e.time < t.firstTime) t.firstTime = e.time;
    if (e.seeders > t.peakSeeders) t.peakSeeders = e.seeders;
    if (e.leechers > t.peakLeechers) t.peakLeechers = e.leechers;
    const day = utcDay(e.time);
    const td = inner(t.days, day, () => ({ announces: 0, completed: 0, peakSeeders: 0, peakLeechers: 0, peers: new Set<string>() }));
    td.announces++;
    if (e.event === 'completed') td.completed++;
    if (e.seeders > td.peakSeeders) td.peakSeeders = e.seeders;
    if (e.leechers > td.peakLeechers) td.peakLeechers = e.leechers;
    td.peers.add(e.peerKey.toString('hex'));
    const minute = e.time - (e.time % MINUTE_MS);
    const m = inner(d.minutes, minute, () => new Map<string, number>());
    inc(m, 'announces');
    inc(m, `protocol:${e.protocol}`);
    inc(m, `event:${e.event}`);
    inc(m, `family:${e.family}`);
    inner(d.active, minute, () => new Set<string>()).add(hex);
    inner(d.activeHours, e.time - (e.time % HOUR_MS), () => new Set<string>()).add(hex);
    inner(d.activeDays, e.time - (e.time % DAY_MS), () => new Set<string>()).add(hex);
    inc(inner(d.clients, day, () => new Map<string, number>()), clientName(e.client));
  }
  return d;
}
