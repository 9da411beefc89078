import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { SwarmStore } from '@peertracker/tracker';

export type Transport = 'http' | 'udp';

/**
 * Prometheus metrics of one gateway. Each gateway has its own registry so several can run in one
 * process (tests). Hot-path counters are pre-bound to their labels: `labels()` per request costs.
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly announces: Counter<'transport' | 'family'>;
  private readonly scrapes: Counter<'transport'>;
  private readonly clientErrors: Counter<'transport'>;
  private readonly serverErrors: Counter<'transport'>;
  private readonly udpDropped: Counter<'reason'>;

  readonly announceHttp4;
  readonly announceHttp6;
  readonly announceUdp4;
  readonly announceUdp6;
  readonly scrapeHttp;
  readonly scrapeUdp;
  readonly clientErrorHttp;
  readonly clientErrorUdp;
  readonly serverErrorHttp;
  readonly serverErrorUdp;
  readonly udpDroppedMalformed;
  readonly udpDroppedBadConnectionId;
  readonly udpConnects;

  constructor(store: SwarmStore) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.announces = new Counter({
      name: 'tracker_announces_total',
      help: 'Announces answered with a peer list',
      labelNames: ['transport', 'family'],
      registers,
    });
    this.scrapes = new Counter({
      name: 'tracker_scrapes_total',
      help: 'Scrapes answered',
      labelNames: ['transport'],
      registers,
    });
    this.clientErrors = new Counter({
      name: 'tracker_client_errors_total',
      help: 'Requests refused with a failure reason / BEP 15 error because of bad client input',
      labelNames: ['transport'],
      registers,
    });
    this.serverErrors = new Counter({
      name: 'tracker_server_errors_total',
      help: 'Requests that failed inside the tracker (store unavailable, bug)',
      labelNames: ['transport'],
      registers,
    });
    this.udpDropped = new Counter({
      name: 'tracker_udp_dropped_total',
      help: 'UDP packets dropped without reply',
      labelNames: ['reason'],
      registers,
    });
    const connects = new Counter({
      name: 'tracker_udp_connects_total',
      help: 'BEP 15 connect requests answered',
      registers,
    });
    new Gauge({
      name: 'tracker_peers',
      help: 'Live peers in the swarm store',
      registers,
      async collect() {
        this.set((await store.stats()).peers);
      },
    });
    new Gauge({
      name: 'tracker_swarms',
      help: 'Swarms in the swarm store',
      registers,
      async collect() {
        this.set((await store.stats()).swarms);
      },
    });
    this.announceHttp4 = this.announces.labels('http', '4');
    this.announceHttp6 = this.announces.labels('http', '6');
    this.announceUdp4 = this.announces.labels('udp', '4');
    this.announceUdp6 = this.announces.labels('udp', '6');
    this.scrapeHttp = this.scrapes.labels('http');
    this.scrapeUdp = this.scrapes.labels('udp');
    this.clientErrorHttp = this.clientErrors.labels('http');
    this.clientErrorUdp = this.clientErrors.labels('udp');
    this.serverErrorHttp = this.serverErrors.labels('http');
    this.serverErrorUdp = this.serverErrors.labels('udp');
    this.udpDroppedMalformed = this.udpDropped.labels('malformed');
    this.udpDroppedBadConnectionId = this.udpDropped.labels('bad_connection_id');
    this.udpConnects = connects;
  }
}
