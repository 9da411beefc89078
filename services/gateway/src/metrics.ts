import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { MemoryStore, type RefusalReason, type SwarmStore } from '@peertracker/tracker';
import { StoreTimeoutError, StoreUnavailableError } from './store-errors';

/** A hot-path counter: a plain increment; prom-client reads it only when /metrics is scraped. */
export class Tally {
  value = 0;
  inc(): void {
    this.value++;
  }
}

/**
 * Announce latency as a Prometheus histogram, kept in plain arrays and written out at scrape time
 * (a prom-client Histogram's observe() hashes its labels on every call, as its counters do).
 * Seconds from the request's arrival to its reply, for one answered announce in SAMPLE_EVERY:
 * timing every one (two performance.now() calls) cost 9 % of the UDP gateway's throughput in
 * `npm run bench` (ratio 0.511 against 0.560 without), a sample of one in 16 leaves the
 * percentiles as they are and the cost a sixteenth.
 */
export class LatencyHistogram {
  static readonly SAMPLE_EVERY = 16;
  private tick = 0;

  /** performance.now() for an announce to be timed, -1 for one not timed */
  start(): number {
    return (this.tick = (this.tick + 1) & (LatencyHistogram.SAMPLE_EVERY - 1)) === 0 ? performance.now() : -1;
  }

  /** after the answer of an announce that start() was called for */
  end(started: number): void {
    if (started >= 0) this.observe((performance.now() - started) / 1000);
  }

  static readonly BOUNDS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
  /** per bound, the observations at or below it (and above the previous one); the last: above all */
  readonly counts = new Float64Array(LatencyHistogram.BOUNDS.length + 1);
  sum = 0;

  observe(seconds: number): void {
    const b = LatencyHistogram.BOUNDS;
    let i = 0;
    while (i < b.length && seconds > b[i]) i++;
    this.counts[i]++;
    this.sum += seconds;
  }
}

/**
 * The Redis store's batches (TRACKER_REDIS_BATCH_MAX): how many announces each call carried, as a
 * histogram, and how many were sent again alone (their slot had moved, or the call failed).
 */
export class BatchTally {
  static readonly BOUNDS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];
  readonly counts = new Float64Array(BatchTally.BOUNDS.length + 1);
  sum = 0;
  resent = 0;

  observe(size: number, resent: number): void {
    const b = BatchTally.BOUNDS;
    let i = 0;
    while (i < b.length && size > b[i]) i++;
    this.counts[i]++;
    this.sum += size;
    this.resent += resent;
  }
}

/**
 * Prometheus metrics of one gateway. Each gateway has its own registry so several can run in one
 * process (tests). Request counters are Tallies copied into prom-client at scrape time: even a
 * label-bound prom-client `inc()` hashes its labels, 2% of the UDP gateway's CPU in a profile.
 */
export class GatewayMetrics {
  readonly registry = new Registry();

  readonly latencyHttp = new LatencyHistogram();
  readonly latencyUdp = new LatencyHistogram();
  readonly announceHttp4 = new Tally();
  readonly announceHttp6 = new Tally();
  readonly announceUdp4 = new Tally();
  readonly announceUdp6 = new Tally();
  readonly scrapeHttp = new Tally();
  readonly scrapeUdp = new Tally();
  readonly clientErrorHttp = new Tally();
  readonly clientErrorUdp = new Tally();
  readonly serverErrorHttp = new Tally();
  readonly serverErrorUdp = new Tally();
  readonly udpDroppedMalformed = new Tally();
  readonly udpDroppedBadConnectionId = new Tally();
  /** source port 0: no reply can be sent there (and sending throws) */
  readonly udpDroppedBadSourcePort = new Tally();
  /** the reply could not be sent (the socket refused it) */
  readonly udpDroppedSendError = new Tally();
  readonly refusedSwarmFull = new Tally();
  readonly refusedAddressFull = new Tally();
  readonly refusedStoreFull = new Tally();
  /** HTTP connections refused because TRACKER_HTTP_MAX_CONNECTIONS were open */
  readonly httpDroppedMaxConnections = new Tally();
  /** HTTP connections destroyed at accept: their source held TRACKER_HTTP_MAX_CONNECTIONS_PER_IP */
  readonly httpDroppedPerIp = new Tally();
  /** HTTP connections closed with a 408: headers or request not received in time (slowloris) */
  readonly httpDroppedTimeout = new Tally();
  /** HTTP connections closed with a 400/431: unparsable HTTP */
  readonly httpDroppedMalformed = new Tally();
  /** HTTP connections closed for inactivity (idle keep-alive, stalled reader) */
  readonly httpDroppedIdle = new Tally();
  /** HTTP connections open now */
  httpConnections = 0;
  readonly udpConnects = new Tally();
  readonly storeTimeouts = new Tally();
  readonly storeFailures = new Tally();
  /** announce events acknowledged by Kafka (KAFKA_BROKERS) */
  readonly eventsPublished = new Tally();
  /** announce events dropped: the buffer was full (Kafka slower than the announces) */
  readonly eventsDroppedBufferFull = new Tally();
  /** announce events dropped: their send to Kafka failed */
  readonly eventsDroppedKafka = new Tally();
  /** announce events dropped: no connection to Kafka */
  readonly eventsDroppedUnavailable = new Tally();
  /** announce events waiting to be sent (set by the publisher's owner) */
  eventsPending: () => number = () => 0;
  /** 1 while the publisher has a Kafka producer, 0 while not, NaN without KAFKA_BROKERS */
  eventsConnected: () => number = () => NaN;

  /** Counts a failed announce or scrape by why its store call failed (store-errors.ts). */
  storeFailure(err: unknown): void {
    if (err instanceof StoreTimeoutError) this.storeTimeouts.inc();
    else if (err instanceof StoreUnavailableError) this.storeFailures.inc();
  }

  /** Counts a new peer that a limit kept out of its swarm (AnnounceReply.refused). */
  refusal(reason: RefusalReason): void {
    if (reason === 'address-full') this.refusedAddressFull.inc();
    else if (reason === 'swarm-full') this.refusedSwarmFull.inc();
    else this.refusedStoreFull.inc();
  }

  constructor(store: SwarmStore & { batches?: BatchTally }) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    counter('tracker_announces_total', 'Announces answered with a peer list', ['transport', 'family'], [
      [{ transport: 'http', family: '4' }, this.announceHttp4],
      [{ transport: 'http', family: '6' }, this.announceHttp6],
      [{ transport: 'udp', family: '4' }, this.announceUdp4],
      [{ transport: 'udp', family: '6' }, this.announceUdp6],
    ]);
    counter('tracker_scrapes_total', 'Scrapes answered', ['transport'], [
      [{ transport: 'http' }, this.scrapeHttp],
      [{ transport: 'udp' }, this.scrapeUdp],
    ]);
    counter(
      'tracker_client_errors_total',
      'Requests refused with a failure reason / BEP 15 error because of bad client input',
      ['transport'],
      [
        [{ transport: 'http' }, this.clientErrorHttp],
        [{ transport: 'udp' }, this.clientErrorUdp],
      ],
    );
    counter('tracker_server_errors_total', 'Requests that failed inside the tracker (store unavailable, bug)', ['transport'], [
      [{ transport: 'http' }, this.serverErrorHttp],
      [{ transport: 'udp' }, this.serverErrorUdp],
    ]);
    counter('tracker_udp_dropped_total', 'UDP packets dropped without reply', ['reason'], [
      [{ reason: 'malformed' }, this.udpDroppedMalformed],
      [{ reason: 'bad_connection_id' }, this.udpDroppedBadConnectionId],
      [{ reason: 'bad_source_port' }, this.udpDroppedBadSourcePort],
      [{ reason: 'send_error' }, this.udpDroppedSendError],
    ]);
    counter(
      'tracker_peers_refused_total',
      'Announces of new peers answered but not stored because a limit was reached',
      ['reason'],
      [
        [{ reason: 'swarm-full' }, this.refusedSwarmFull],
        [{ reason: 'address-full' }, this.refusedAddressFull],
        [{ reason: 'store-full' }, this.refusedStoreFull],
      ],
    );
    counter('tracker_http_connections_dropped_total', 'HTTP connections refused or closed by the gateway', ['reason'], [
      [{ reason: 'max_connections' }, this.httpDroppedMaxConnections],
      [{ reason: 'per_ip' }, this.httpDroppedPerIp],
      [{ reason: 'timeout' }, this.httpDroppedTimeout],
      [{ reason: 'malformed' }, this.httpDroppedMalformed],
      [{ reason: 'idle' }, this.httpDroppedIdle],
    ]);
    const open = () => this.httpConnections;
    new Gauge({
      name: 'tracker_http_connections',
      help: 'HTTP connections open',
      registers,
      collect() {
        this.set(open());
      },
    });
    counter('tracker_udp_connects_total', 'BEP 15 connect requests answered', [], [[{}, this.udpConnects]]);
    counter(
      'tracker_store_failures_total',
      'Announces and scrapes whose swarm-store call failed (error) or outlasted TRACKER_REDIS_TIMEOUT_MS (timeout)',
      ['kind'],
      [
        [{ kind: 'timeout' }, this.storeTimeouts],
        [{ kind: 'error' }, this.storeFailures],
      ],
    );
    counter('tracker_events_published_total', 'Announce events acknowledged by Kafka', [], [[{}, this.eventsPublished]]);
    counter('tracker_events_dropped_total', 'Announce events not published (the announces were answered all the same)', ['reason'], [
      [{ reason: 'buffer_full' }, this.eventsDroppedBufferFull],
      [{ reason: 'kafka_error' }, this.eventsDroppedKafka],
      [{ reason: 'kafka_unavailable' }, this.eventsDroppedUnavailable],
    ]);
    const pending = () => this.eventsPending();
    const connected = () => this.eventsConnected();
    new Gauge({
      name: 'tracker_events_connected',
      help: '1 while announce events can be published (connected to Kafka), 0 while not; NaN without KAFKA_BROKERS',
      registers,
      collect() {
        this.set(connected());
      },
    });
    new Gauge({
      name: 'tracker_events_pending',
      help: 'Announce events waiting to be sent to Kafka, or being sent',
      registers,
      collect() {
        this.set(pending());
      },
    });
    // The store's counts, NaN while it cannot say (Redis down): /metrics must keep answering
    // then, when the error counters matter most.
    let stats: Promise<{ peers: number; swarms: number } | undefined> | undefined;
    const statsOnce = () => {
      if (stats === undefined) {
        // one store.stats() serves both gauges of a scrape; the next scrape asks again
        stats = store.stats().then(
          (s) => s,
          () => undefined,
        );
        void stats.then(() => setImmediate(() => (stats = undefined)));
      }
      return stats;
    };
    new Gauge({
      name: 'tracker_peers',
      help: 'Live peers in the swarm store (an estimate for Redis; NaN while the store is unavailable)',
      registers,
      async collect() {
        this.set((await statsOnce())?.peers ?? NaN);
      },
    });
    new Gauge({
      name: 'tracker_swarms',
      help: 'Swarms in the swarm store (an estimate for Redis; NaN while the store is unavailable)',
      registers,
      async collect() {
        this.set((await statsOnce())?.swarms ?? NaN);
      },
    });

    if (store instanceof MemoryStore) {
      // TRACKER_MEMORY_MAX_SWARMS at work: retained swarms dropped, oldest first, for new ones
      new Counter({
        name: 'tracker_swarms_shed_total',
        help: 'Swarms kept only for their completed count that were dropped to make room for new swarms',
        registers,
        collect() {
          this.reset();
          this.inc(store.size().shed);
        },
      });
    }

    const batches = store.batches;
    if (batches !== undefined) {
      histogram('tracker_redis_batch_size', 'Announces per Redis script call (TRACKER_REDIS_BATCH_MAX)', BatchTally.BOUNDS, () => [[{}, batches.counts, batches.sum]]);
      new Counter({
        name: 'tracker_redis_batch_resent_total',
        help: 'Announces a batch did not take (their slot had moved, or the call failed), sent again alone',
        registers,
        collect() {
          this.reset();
          this.inc(batches.resent);
        },
      });
    }

    const latency: Array<[string, LatencyHistogram]> = [
      ['http', this.latencyHttp],
      ['udp', this.latencyUdp],
    ];
    histogram(
      'tracker_announce_duration_seconds',
      'Seconds from an announce request to its answer (the store call included), for one announce in 16',
      LatencyHistogram.BOUNDS,
      () => latency.map(([transport, h]) => [{ transport }, h.counts, h.sum]),
    );

    /** a histogram kept in plain arrays (counts per bound, then above all), written out at scrape time */
    function histogram(name: string, help: string, bounds: number[], series: () => Array<[Record<string, string>, Float64Array, number]>): void {
      const registry = registers[0];
      registry.registerMetric({
        name,
        // (what prom-client asks of a metric: its text is made from get())
        get: async () => ({
          name,
          help,
          type: 'histogram',
          aggregator: 'sum',
          values: series().flatMap(([labels, counts, sum]) => {
            let cumulative = 0;
            const buckets = bounds.map((le, i) => {
              cumulative += counts[i];
              return { metricName: `${name}_bucket`, labels: { ...labels, le: String(le) }, value: cumulative };
            });
            const count = cumulative + counts[bounds.length];
            return [
              ...buckets,
              { metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: count },
              { metricName: `${name}_sum`, labels, value: sum },
              { metricName: `${name}_count`, labels, value: count },
            ];
          }),
        }),
      } as unknown as Parameters<Registry['registerMetric']>[0]);
    }

    function counter<L extends string>(
      name: string,
      help: string,
      labelNames: L[],
      series: Array<[Partial<Record<L, string>>, Tally]>,
    ): void {
      new Counter<L>({
        name,
        help,
        labelNames,
        registers,
        collect() {
          this.reset();
          for (const [labels, tally] of series) this.inc(labels, tally.value);
        },
      });
    }
  }
}
