/*
 * Prometheus metrics of a stats worker (GET /metrics on STATS_WORKER_PORT):
 *   stats_events_written_total            events written to Redis
 *   stats_bad_records_total{reason}       records that are not announce-event records, skipped
 *   stats_fenced_writes_total             batches refused because another worker had the partition
 *   stats_future_events_total             events skipped for a time ahead of the worker's clock by
 *                                         more than STATS_MAX_CLOCK_SKEW_S
 *   stats_latest_event_age_seconds        now minus the newest event time written by this worker
 *                                         (the end-to-end lag while announces flow)
 *   stats_consumer_lag{partition}         messages in the topic not yet written (from Kafka's
 *                                         high watermark and the offset stored in Redis), read at
 *                                         scrape time, for every partition
 *   stats_job_runs_total{job,status}, stats_job_duration_seconds{job}   the scheduled jobs
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { StatsState } from './state';
import type { WorkerObserver } from './worker';

export class WorkerMetrics implements WorkerObserver {
  readonly registry = new Registry();
  private latestEventTime = 0;
  private readonly eventsWritten = new Counter({ name: 'stats_events_written_total', help: 'Announce events written to Redis', registers: [this.registry] });
  private readonly bad = new Counter({ name: 'stats_bad_records_total', help: 'Kafka records that are not announce-event records, skipped', labelNames: ['reason'], registers: [this.registry] });
  private readonly fencedWrites = new Counter({ name: 'stats_fenced_writes_total', help: 'Batches not written because another worker had taken the partition', registers: [this.registry] });
  private readonly future = new Counter({ name: 'stats_future_events_total', help: "Events skipped for a time ahead of the worker's clock (a gateway clock wrong)", registers: [this.registry] });
  private readonly jobRuns = new Counter({ name: 'stats_job_runs_total', help: 'Scheduled job runs', labelNames: ['job', 'status'], registers: [this.registry] });
  private readonly jobSeconds = new Histogram({ name: 'stats_job_duration_seconds', help: 'Scheduled job run time', labelNames: ['job'], buckets: [0.01, 0.05, 0.25, 1, 5, 30], registers: [this.registry] });

  constructor(state: StatsState, highWatermarks: () => Promise<Map<number, bigint>>) {
    collectDefaultMetrics({ register: this.registry });
    const self = this; // eslint-disable-line @typescript-eslint/no-this-alias -- prom-client calls collect() with the gauge as `this`
    new Gauge({
      name: 'stats_latest_event_age_seconds',
      help: 'Seconds between now and the newest announce event this worker has written (0 before any)',
      registers: [this.registry],
      collect() {
        this.set(self.latestEventTime === 0 ? 0 : Math.max(0, (Date.now() - self.latestEventTime) / 1000));
      },
    });
    new Gauge({
      name: 'stats_consumer_lag',
      help: 'Messages of the partition not yet written to the statistics',
      labelNames: ['partition'],
      registers: [this.registry],
      async collect() {
        this.reset();
        const high = await highWatermarks().catch(() => undefined);
        if (high === undefined) return;
        for (const [p, h] of high) {
          const stored = await state.client.get(`${state.stem(p)}offset`).catch(() => null);
          this.set({ partition: String(p) }, Number(h - (stored === null ? 0n : BigInt(stored))));
        }
      },
    });
  }

  written(_partition: number, events: number, latestEventTime: number): void {
    this.eventsWritten.inc(events);
    if (latestEventTime > this.latestEventTime) this.latestEventTime = latestEventTime;
  }

  badRecord(reason: string): void {
    this.bad.inc({ reason });
  }

  fenced(): void {
    this.fencedWrites.inc();
  }

  futureEvents(count: number): void {
    this.future.inc(count);
  }

  job(job: string, ok: boolean, seconds: number): void {
    this.jobRuns.inc({ job, status: ok ? 'ok' : 'failed' });
    this.jobSeconds.observe({ job }, seconds);
  }
}

/** The stats API's metrics (GET /metrics): stats_api_requests_total{route,status}. */
export class ApiMetrics {
  readonly registry = new Registry();
  private readonly requests = new Counter({ name: 'stats_api_requests_total', help: 'Stats API requests answered', labelNames: ['route', 'status'], registers: [this.registry] });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  answered(route: string, status: number): void {
    this.requests.inc({ route, status: String(status) });
  }
}
