/*
 * The stats worker's consumer: a kafkajs consumer group (any number of replicas), whose source of
 * truth for offsets is Redis, not Kafka. For each partition it is given it claims a new fencing
 * epoch and reads the partition's stored offset; every batch is folded into one delta and
 * written with the batch's offsets in one atomic script (state.ts). A batch that starts before
 * the stored offset (a redelivery after a crash or a rebalance) has its counted part cut off; one
 * that starts after it makes the consumer seek back; a write refused as fenced means another
 * worker has the partition now, and this one leaves it alone until it is given it again.
 * Offsets are also committed to Kafka after each write, for lag monitoring only.
 */
import { Kafka, logLevel, type Admin, type Consumer, type EachBatchPayload } from 'kafkajs';
import { EventDecodeError, decodeRecord, type AnnounceEvent, type DecodedRecord, type KafkaSecurity } from '@peertracker/events';
import { addEvents, emptyDelta } from './aggregate';
import type { StatsState } from './state';
import { traced } from './tracing';

export interface WorkerLog {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
}

export interface WorkerOptions {
  brokers: string[];
  /** TLS and SASL for the brokers (KAFKA_TLS*, KAFKA_SASL_*); default none */
  security?: KafkaSecurity;
  topic: string;
  groupId: string;
  clientId: string;
  state: StatsState;
  log: WorkerLog;
  /** told of each write, refused record and fenced write (for metrics) */
  observer?: WorkerObserver;
  /**
   * events timed more than this ahead of the worker's clock are skipped and counted (default
   * 10 minutes): one gateway clock far ahead would otherwise move the partition's progress on
   * and seal periods before their events came
   */
  maxClockSkewMs?: number;
  now?: () => number;
}

/** (Date cannot hold a later time: a day of it could not be named) */
const MAX_DATE_MS = 8.64e15;

export interface WorkerObserver {
  written(partition: number, events: number, latestEventTime: number): void;
  badRecord(reason: string): void;
  /** events skipped for their time (ahead of the clock by more than maxClockSkewMs) */
  futureEvents(count: number): void;
  fenced(): void;
}

export interface WorkerCounts {
  /** events written to Redis */
  events: number;
  /** records refused by decodeRecord, by reason */
  badRecords: Map<string, number>;
  /** writes refused because another worker had the partition */
  fenced: number;
  /** events skipped for a time ahead of the clock */
  futureEvents: number;
}

interface Owned {
  epoch: string;
  /** the next offset to write ('' before the first write of a new partition) */
  next: string;
}

export class StatsWorker {
  readonly counts: WorkerCounts = { events: 0, badRecords: new Map(), fenced: 0, futureEvents: 0 };
  private readonly consumer: Consumer;
  private readonly kafka: Kafka;
  private owned = new Map<number, Owned>();

  constructor(private readonly o: WorkerOptions) {
    const kafka = new Kafka({ clientId: o.clientId, brokers: o.brokers, ...o.security, logLevel: logLevel.NOTHING });
    this.kafka = kafka;
    this.consumer = kafka.consumer({ groupId: o.groupId, sessionTimeout: 6000, heartbeatInterval: 1000, maxWaitTimeInMs: 250 });
    // a rebalance: every partition is claimed anew (a new epoch) at its next batch
    this.consumer.on(this.consumer.events.GROUP_JOIN, () => {
      this.owned = new Map();
    });
  }

  /**
   * Joins the group. The topic is created (with the broker's default partitions) when it does not
   * exist yet: a worker may start before any gateway has published.
   */
  async start(): Promise<void> {
    const admin = this.kafka.admin();
    try {
      await admin.connect();
      if (!(await admin.listTopics()).includes(this.o.topic)) {
        await admin.createTopics({ topics: [{ topic: this.o.topic }], waitForLeaders: true });
      }
    } finally {
      await admin.disconnect().catch(() => {});
    }
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.o.topic, fromBeginning: true });
    // (Kafka's committed offsets only show the lag: every 5 s is enough, and the counted offsets
    // in Redis decide where a worker resumes)
    await this.consumer.run({ autoCommit: true, autoCommitInterval: 5000, eachBatchAutoResolve: false, eachBatch: (b) => this.batch(b) });
  }

  async stop(): Promise<void> {
    await this.consumer.disconnect();
    const admin = this.admin;
    this.admin = undefined;
    await admin?.then((a) => a.disconnect()).catch(() => {});
  }

  private admin?: Promise<Admin>;

  /** Each partition's high watermark (the offset its next message will get), from Kafka. */
  async highWatermarks(): Promise<Map<number, bigint>> {
    // (one admin connection, made once: the metrics and the seal job may ask at the same time)
    if (this.admin === undefined) {
      const admin = this.kafka.admin();
      this.admin = admin.connect().then(
        () => admin,
        (err: unknown) => {
          this.admin = undefined;
          throw err;
        },
      );
    }
    const admin = await this.admin;
    const offsets = await admin.fetchTopicOffsets(this.o.topic);
    return new Map(offsets.map((o) => [o.partition, BigInt(o.high)]));
  }

  private async batch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    if (!isRunning() || isStale() || batch.messages.length === 0) return;
    const p = batch.partition;
    let owned = this.owned.get(p);
    if (owned === undefined) {
      const c = await this.o.state.claim(p);
      owned = { epoch: c.epoch, next: c.offset };
      this.owned.set(p, owned);
      this.o.log.info('partition claimed', { partition: p, epoch: c.epoch, offset: c.offset || 'none' });
    }
    let messages = batch.messages;
    if (owned.next !== '') {
      const next = BigInt(owned.next);
      if (BigInt(messages[0].offset) > next) {
        // (Kafka went ahead of what is counted: back to the stored offset)
        this.consumer.seek({ topic: batch.topic, partition: p, offset: owned.next });
        return;
      }
      messages = messages.filter((m) => BigInt(m.offset) >= next);
      if (messages.length === 0) return;
    }
    const delta = emptyDelta();
    for (const m of messages) {
      let events: AnnounceEvent[];
      let decoded: DecodedRecord;
      try {
        if (m.value === null) throw new EventDecodeError('short', 'an empty message');
        decoded = decodeRecord(m.value);
        events = decoded.events;
      } catch (err) {
        const reason = err instanceof EventDecodeError ? err.reason : 'other';
        this.counts.badRecords.set(reason, (this.counts.badRecords.get(reason) ?? 0) + 1);
        this.o.observer?.badRecord(reason);
        this.o.log.warn('skipped a record that is not an announce-event record', { partition: p, offset: m.offset, reason, err: String(err) });
        continue;
      }
      const limit = Math.min(MAX_DATE_MS, (this.o.now ?? Date.now)() + (this.o.maxClockSkewMs ?? 600_000));
      const timely = events.filter((e) => e.time <= limit);
      if (timely.length < events.length) {
        this.counts.futureEvents += events.length - timely.length;
        this.o.observer?.futureEvents(events.length - timely.length);
        this.o.log.warn('skipped events timed ahead of this clock', { partition: p, offset: m.offset, gateway: decoded.gatewayId, count: events.length - timely.length });
      }
      addEvents(delta, timely);
    }
    const from = messages[0].offset;
    const to = String(BigInt(messages[messages.length - 1].offset) + 1n);
    const r = await traced(
      'stats.write',
      { 'messaging.destination.partition.id': String(p), 'messaging.batch.message_count': messages.length, 'peertracker.events': delta.events },
      () => this.o.state.apply(p, owned.epoch, owned.next === '' ? from : owned.next, to, delta),
      (span, r) => span.setAttribute('peertracker.write_status', r.status),
    );
    if (r.status === 'fenced') {
      this.counts.fenced++;
      this.o.observer?.fenced();
      this.owned.delete(p);
      this.o.log.warn('partition taken by another worker: its batch not written', { partition: p, epoch: owned.epoch, current: r.epoch });
      return;
    }
    if (r.status === 'stale') {
      // (another write moved the offset: go by the stored one)
      owned.next = r.offset;
      this.consumer.seek({ topic: batch.topic, partition: p, offset: r.offset });
      return;
    }
    owned.next = to;
    this.counts.events += delta.events;
    this.o.observer?.written(p, delta.events, delta.maxTime);
    resolveOffset(messages[messages.length - 1].offset);
    await heartbeat();
  }
}
