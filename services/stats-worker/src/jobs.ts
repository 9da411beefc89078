/*
 * The stats worker's scheduled jobs, run with BullMQ job schedulers (so with many worker replicas
 * each run happens once, on whichever replica takes it). The queue's prefix carries the hash tag
 * `{stats}`: BullMQ's scripts touch several keys of the queue, and on a Redis Cluster they must
 * share a slot.
 *   rollup  (STATS_ROLLUP_EVERY_MS, default 30 s): every partition's changed hours and days are
 *           rolled up from their minutes (state.ts, roll); the hour and day series lag the
 *           minutes by this much at most;
 *   top     (STATS_TOP_EVERY_MS, default 60 s): the top-N torrents of each day not sealed yet, by
 *           announces and by completions, merged from every partition's rankings;
 *   seal    (STATS_SEAL_EVERY_MS, default 5 min): periods that ended STATS_SEAL_HORIZON_S (default
 *           1 h) before the events' time are sealed (their roll-up final, their torrent sets
 *           freed), and the top lists of days sealed in every partition are made final. This
 *           is the retention job: with it the working sets stay bounded by the horizon; the
 *           series themselves expire per resolution (Retention, state.ts).
 * Every job is idempotent: a job run twice, or two runs at once, leave the same numbers.
 */
import { Queue, Worker, type Job } from 'bullmq';
import type { Cluster, Redis } from 'ioredis';
import { utcDay } from './aggregate';
import type { StatsState } from './state';
import { traced } from './tracing';
import type { WorkerLog } from './worker';

export interface TopEntry {
  infoHash: string;
  announces: number;
  completions: number;
}

export interface TopList {
  day: string;
  by: 'announces' | 'completions';
  /** when it was made (ms) */
  updatedAt: number;
  /** made after every partition sealed the day: it changes no more */
  final: boolean;
  torrents: TopEntry[];
}

export interface JobsOptions {
  state: StatsState;
  /** for BullMQ alone (it blocks on it): made with maxRetriesPerRequest null */
  connection: Redis | Cluster;
  /** each partition's next offset to be written to the topic (its high watermark) */
  highWatermarks(): Promise<Map<number, bigint>>;
  rollupEveryMs: number;
  topEveryMs: number;
  sealEveryMs: number;
  horizonMs: number;
  topN: number;
  log: WorkerLog;
  /** after each job: its name, whether it failed, its duration (s) */
  observe?(job: string, ok: boolean, seconds: number): void;
}

export type JobName = 'rollup' | 'top' | 'seal';

/** Keeps a top list unless a final one is there already. */
const PUT_TOP = `#!lua
local cur = redis.call('GET', KEYS[1])
if cur and string.find(cur, '"final":true', 1, true) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
`;

export function topKey(prefix: string, by: TopList['by'], day: string): string {
  return `${prefix}{top}:${by}:${day}`;
}

export class StatsJobs {
  private queue?: Queue;
  private worker?: Worker;

  constructor(private readonly o: JobsOptions) {
    o.state.client.defineCommand('statsPutTop', { numberOfKeys: 1, lua: PUT_TOP });
  }

  /** The queue's key prefix (with the hash tag). */
  get queuePrefix(): string {
    return `${this.o.state.prefix}{stats}`;
  }

  /** Creates (or updates) the job schedulers and starts taking jobs. */
  async start(): Promise<void> {
    const connection = this.o.connection;
    this.queue = new Queue('stats', { connection, prefix: this.queuePrefix });
    const keep = { removeOnComplete: 50, removeOnFail: 200 };
    for (const [name, every] of [
      ['rollup', this.o.rollupEveryMs],
      ['top', this.o.topEveryMs],
      ['seal', this.o.sealEveryMs],
    ] as const) {
      await this.queue.upsertJobScheduler(name, { every }, { name, opts: keep });
    }
    this.worker = new Worker('stats', (job: Job) => this.run(job.name as JobName), { connection, prefix: this.queuePrefix, concurrency: 1 });
    this.worker.on('failed', (job, err) => this.o.log.warn('scheduled job failed', { job: job?.name, err: String(err) }));
    this.worker.on('error', (err) => this.o.log.warn('job queue error', { err: String(err) }));
  }

  async stop(): Promise<void> {
    await this.worker?.close();
    await this.queue?.close();
  }

  /** Runs one job now (what the schedulers run). */
  async run(name: JobName): Promise<void> {
    const started = performance.now();
    let ok = false;
    try {
      await traced(`stats.job ${name}`, { 'peertracker.job': name }, () => {
        if (name === 'rollup') return this.rollup();
        if (name === 'top') return this.top();
        if (name === 'seal') return this.seal();
        throw new Error(`unknown job ${String(name)}`);
      });
      ok = true;
    } finally {
      this.o.observe?.(name, ok, (performance.now() - started) / 1000);
    }
  }

  private async rollup(): Promise<void> {
    for (const p of await this.o.state.partitions()) await this.o.state.roll(p);
  }

  /** The days any partition has not sealed (UTC, YYYY-MM-DD). */
  private async openDays(): Promise<Set<string>> {
    const days = new Set<string>();
    for (const p of await this.o.state.partitions()) {
      for (const m of await this.o.state.client.zrange(`${this.o.state.stem(p)}open`, '0', '-1')) {
        if (m.startsWith('d:')) days.add(utcDay(Number(m.slice(2))));
      }
    }
    return days;
  }

  private async top(): Promise<void> {
    for (const day of await this.openDays()) await this.makeTop(day, false);
  }

  private async seal(): Promise<void> {
    const state = this.o.state;
    const partitions = await state.partitions();
    // How far the events have come: a partition with nothing left to consume may be sealed by
    // the others' progress, one with a backlog only by its own (its late events are coming).
    let high: Map<number, bigint> | undefined;
    try {
      high = await this.o.highWatermarks();
    } catch (err) {
      this.o.log.warn('cannot read the topic offsets; sealing goes by each partition’s own events', { err: String(err) });
    }
    const progress = new Map<number, number>();
    for (const p of partitions) progress.set(p, await state.progress(p));
    const latest = Math.max(0, ...progress.values());
    const sealed = new Set<string>();
    for (const p of partitions) {
      let caughtUp = false;
      if (high !== undefined) {
        const stored = await state.client.get(`${state.stem(p)}offset`);
        const h = high.get(p);
        caughtUp = h !== undefined && (h === 0n || (stored !== null && BigInt(stored) >= h));
      }
      for (const day of await state.roll(p, this.o.horizonMs, caughtUp ? latest : undefined)) sealed.add(utcDay(day));
    }
    // (a day sealed here waits in a set until every partition has sealed it, then gets its
    // final lists: a run that fails before that leaves it there for the next run)
    const pending = `${state.prefix}{top}:pending`;
    if (sealed.size > 0) await state.client.sadd(pending, ...sealed);
    const open = await this.openDays();
    for (const day of await state.client.smembers(pending)) {
      if (open.has(day)) continue;
      await this.makeTop(day, true);
      await state.client.srem(pending, day);
    }
  }

  /**
   * The day's top-N by announces and by completions, merged from every partition's rankings.
   * Nothing is written when no partition has rankings of the day (they expired): a list made
   * before stays as it was.
   */
  async makeTop(day: string, final: boolean): Promise<void> {
    const { state, topN } = this.o;
    const partitions = await state.partitions();
    for (const by of ['announces', 'completions'] as const) {
      const [own, other] = by === 'announces' ? ['za', 'zc'] : ['zc', 'za'];
      const keys = partitions.map((p) => `${state.stem(p)}${own}:${day}`);
      const exists = await Promise.all(keys.map((k) => state.client.exists(k)));
      if (by === 'announces' && !exists.some(Boolean)) return;
      // (a torrent is in one partition unless partitions were added to the topic: its parts
      // are summed, and the top N of all are among each partition's top N)
      const values = new Map<string, { own: number; other: number }>();
      for (const [i, p] of partitions.entries()) {
        if (!exists[i]) continue;
        const r = await state.client.zrevrange(keys[i], 0, topN - 1, 'WITHSCORES');
        const hashes = r.filter((_, j) => j % 2 === 0);
        if (hashes.length === 0) continue;
        const others = await state.client.zmscore(`${state.stem(p)}${other}:${day}`, ...hashes);
        hashes.forEach((h, j) => {
          const v = values.get(h) ?? { own: 0, other: 0 };
          v.own += Number(r[2 * j + 1]);
          v.other += Number(others[j] ?? 0);
          values.set(h, v);
        });
      }
      const torrents: TopEntry[] = [...values]
        .sort(([ha, a], [hb, b]) => b.own - a.own || (ha < hb ? -1 : 1))
        .slice(0, topN)
        .map(([infoHash, v]) => ({ infoHash, announces: by === 'announces' ? v.own : v.other, completions: by === 'announces' ? v.other : v.own }));
      const list: TopList = { day, by, updatedAt: Date.now(), final, torrents };
      await (state.client as unknown as { statsPutTop(k: string, v: string, ttl: number): Promise<number> }).statsPutTop(topKey(state.prefix, by, day), JSON.stringify(list), state.retention.days);
    }
  }
}
