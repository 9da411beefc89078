/*
 * Announce events to Kafka without ever making an announce wait (DESIGN.md, invariant 6). An
 * answered announce adds its event to the record being filled for its partition (no object, no
 * promise: a few hundred nanoseconds); a timer seals the records every flushMs and sends each
 * partition's apart, one send at a time per partition. Memory is bounded by maxBufferedEvents (for
 * all partitions together: a partition whose sends hang holds its records until that bound, then
 * every partition drops); beyond it, and while Kafka cannot be reached, events are dropped and
 * counted. A send that fails is counted as
 * dropped and never sent again (no duplicates from this side); after a few failures in a row the
 * producer is made anew, so publishing resumes by itself when Kafka is back.
 */
import type { AnnounceRequest } from '@peertracker/protocol';
import type { SpanContext } from '@peertracker/telemetry';
import { EVENT_CODES, RecordWriter, decodeClient, partitionOf, type ClientSoftware } from '@peertracker/events';
import type { Logger } from '../log';
import type { Tally } from '../metrics';
import { sipHash24, sipKey, sipOut } from '../siphash24';
import type { RecordProducer } from './kafka-producer';

/** The peer key of an event: SipHash-2-4 of the peer id under this fixed key (packages/events/README.md). */
export const PEER_KEY = sipKey(Buffer.from('PeerTracker:peer', 'latin1'));

export interface EventMetrics {
  eventsPublished: Tally;
  eventsDroppedBufferFull: Tally;
  eventsDroppedKafka: Tally;
  eventsDroppedUnavailable: Tally;
}

export interface EventPublisherOptions {
  gatewayId: string;
  connect: () => Promise<RecordProducer>;
  flushMs: number;
  maxBufferedEvents: number;
  /** events per record at most */
  recordEvents: number;
  metrics: EventMetrics;
  log: Logger;
  now?: () => number;
}

/** Sends after which the producer is made anew. */
const FAILURES_BEFORE_RECONNECT = 3;
const RECONNECT_MAX_MS = 10_000;
/** Client prefixes remembered (a flood of random ids clears it, costing only decodes). */
const CLIENT_CACHE = 4096;
/** Traced announces a record's send links to at most (OpenTelemetry span links). */
const MAX_LINKS = 16;

interface Sealed {
  partition: number;
  value: Buffer;
  events: number;
  /** the spans of the traced announces among the events */
  links: SpanContext[] | undefined;
}

export class EventPublisher {
  private producer: RecordProducer | undefined;
  private writers: RecordWriter[] = [];
  /** per partition, the spans of the traced announces in the record being filled */
  private links: (SpanContext[] | undefined)[] = [];
  private sealed: Sealed[] = [];
  private buffered = 0;
  /** the send under way per partition (one at a time each: the records of a partition stay in order) */
  private readonly sending = new Map<number, Promise<void>>();
  private failures = 0;
  private reconnectMs = 100;
  private timer: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly key = Buffer.alloc(8);
  /** first 6 bytes of a peer id (as a number) -> bytes 6-9 (as a number) -> its client */
  private readonly clients = new Map<number, Map<number, ClientSoftware>>();
  private cached = 0;
  private readonly now: () => number;

  constructor(private readonly o: EventPublisherOptions) {
    this.now = o.now ?? Date.now;
  }

  /** Connects in the background (announces do not wait for it) and starts the flush timer. */
  start(): void {
    this.timer = setInterval(() => this.flush(), this.o.flushMs);
    this.timer.unref();
    void this.connect();
  }

  /** Events waiting to be sent or being sent. */
  get pending(): number {
    return this.buffered;
  }

  get connected(): boolean {
    return this.producer !== undefined;
  }

  /** The event of an answered announce (traced: its span, when the announce is traced). */
  announced(req: AnnounceRequest, family: 4 | 6, protocol: number, seeders: number, leechers: number, traced?: SpanContext): void {
    const m = this.o.metrics;
    const producer = this.producer;
    if (producer === undefined || this.closed) return m.eventsDroppedUnavailable.inc();
    if (this.buffered >= this.o.maxBufferedEvents) return m.eventsDroppedBufferFull.inc();
    const p = partitionOf(req.infoHash, producer.partitions);
    let w = this.writers[p];
    if (w.full) this.seal(p);
    sipHash24(PEER_KEY, req.peerId);
    this.key.writeUInt32LE(sipOut[0], 0);
    this.key.writeUInt32LE(sipOut[1], 4);
    const time = this.now();
    const client = this.client(req.peerId);
    const ev = EVENT_CODES[req.event];
    if (!w.add(time, req.infoHash, this.key, 0, ev, req.left, req.uploaded, req.downloaded, protocol, family, client, seeders, leechers)) {
      // (the clock went back, or more than 2^32 ms passed: a new record)
      this.seal(p);
      w = this.writers[p];
      w.add(time, req.infoHash, this.key, 0, ev, req.left, req.uploaded, req.downloaded, protocol, family, client, seeders, leechers);
    }
    this.buffered++;
    if (traced !== undefined) {
      const links = (this.links[p] ??= []);
      if (links.length < MAX_LINKS) links.push(traced);
    }
  }

  /**
   * Seals every record and sends what is pending, each partition's records apart: a partition
   * whose leader is gone (its sends wait for a new one, or time out) does not hold up the others.
   * A partition with a send under way keeps its records until that send is done.
   */
  flush(): void {
    for (let p = 0; p < this.writers.length; p++) if (this.writers[p].size > 0) this.seal(p);
    if (this.sealed.length === 0 || this.producer === undefined) return;
    const producer = this.producer;
    const ready = new Map<number, Sealed[]>();
    const held: Sealed[] = [];
    for (const s of this.sealed) {
      if (this.sending.has(s.partition)) held.push(s);
      else {
        const list = ready.get(s.partition);
        if (list === undefined) ready.set(s.partition, [s]);
        else list.push(s);
      }
    }
    this.sealed = held;
    for (const [p, batch] of ready) {
      const events = batch.reduce((n, s) => n + s.events, 0);
      const links = batch.flatMap((s) => s.links ?? []);
      const send = producer
        .send(
          batch.map((s) => ({ partition: s.partition, value: s.value })),
          links.length > 0 ? links : undefined,
        )
        .then(
          () => {
            this.o.metrics.eventsPublished.value += events;
            if (this.failures > 0) this.o.log.info('Kafka: publishing announce events again');
            this.failures = 0;
          },
          (err: unknown) => {
            this.o.metrics.eventsDroppedKafka.value += events;
            // (a send of a producer already replaced says nothing of the new one)
            if (this.producer !== producer) return;
            this.failures++;
            if (this.failures === 1) this.o.log.warn('Kafka: announce events could not be sent; dropping them until it answers', { err: String(err) });
            // (consecutive failures with no success on any partition: the producer is made anew)
            if (this.failures >= FAILURES_BEFORE_RECONNECT) this.reconnect();
          },
        )
        .finally(() => {
          this.buffered -= events;
          this.sending.delete(p);
        });
      this.sending.set(p, send);
    }
  }

  /**
   * Sends what is pending (waiting at most timeoutMs) and disconnects; events after this are
   * dropped and counted. For a graceful stop.
   */
  async close(timeoutMs = 5000): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && this.producer !== undefined && (this.sending.size > 0 || this.buffered > 0)) {
      this.flush();
      await Promise.race([...this.sending.values(), new Promise((r) => setTimeout(r, 50))]);
    }
    this.closed = true;
    const producer = this.producer;
    this.producer = undefined;
    await producer?.close().catch(() => {});
  }

  private seal(p: number): void {
    const w = this.writers[p];
    const events = w.size;
    const value = w.finish();
    const links = this.links[p];
    this.links[p] = undefined;
    if (value !== undefined) this.sealed.push({ partition: p, value, events, links });
  }

  /**
   * The client of a peer id, by its first 10 bytes (the longest prefix decodeClient reads:
   * 'A2-1-37-0-'), kept in numbers: a string key per announce showed in the gateway's profile.
   */
  private client(peerId: Buffer): ClientSoftware {
    const head = peerId.readUIntBE(0, 6);
    const tail = peerId.readUInt32BE(6);
    let byTail = this.clients.get(head);
    let c = byTail?.get(tail);
    if (c === undefined) {
      c = decodeClient(peerId);
      if (this.cached >= CLIENT_CACHE) {
        this.clients.clear();
        this.cached = 0;
        byTail = undefined;
      }
      if (byTail === undefined) {
        byTail = new Map();
        this.clients.set(head, byTail);
      }
      byTail.set(tail, c);
      this.cached++;
    }
    return c;
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    try {
      const producer = await this.o.connect();
      if (this.closed) return void (await producer.close().catch(() => {}));
      // (a new partition count: records being filled for the old one are sealed first)
      for (let p = 0; p < this.writers.length; p++) if (this.writers[p].size > 0) this.seal(p);
      this.writers = Array.from({ length: producer.partitions }, () => new RecordWriter(this.o.gatewayId, this.o.recordEvents));
      this.links = [];
      // (records of partitions the topic no longer has: dropped and counted)
      for (const s of this.sealed) {
        if (s.partition < producer.partitions) continue;
        this.o.metrics.eventsDroppedKafka.value += s.events;
        this.buffered -= s.events;
      }
      this.sealed = this.sealed.filter((s) => s.partition < producer.partitions);
      this.producer = producer;
      this.reconnectMs = 100;
      this.o.log.info('Kafka: publishing announce events', { partitions: producer.partitions });
    } catch (err) {
      this.o.log.warn('Kafka: cannot connect; announce events are dropped until it answers', { err: String(err), retryMs: this.reconnectMs });
      this.scheduleConnect();
    }
  }

  private scheduleConnect(): void {
    this.reconnectTimer = setTimeout(() => void this.connect(), this.reconnectMs);
    this.reconnectTimer.unref();
    this.reconnectMs = Math.min(this.reconnectMs * 2, RECONNECT_MAX_MS);
  }

  private reconnect(): void {
    const old = this.producer;
    this.producer = undefined;
    this.failures = 0;
    void old?.close().catch(() => {});
    this.scheduleConnect();
  }
}
