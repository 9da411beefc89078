/*
 * The one place that knows kafkajs (the design's client; it is unmaintained, so nothing else
 * imports it): sends records to chosen partitions of one topic with an idempotent producer.
 */
// (first: it gives kafkajs a native CRC-32C before kafkajs loads)
import './crc32c';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { SAMPLING_PRIORITY, SpanKind, SpanStatusCode, telemetry, type SpanContext } from '@peertracker/telemetry';
import type { KafkaSecurity } from '@peertracker/events';
import type { Logger } from '../log';
import { tracer } from '../tracing';

/** What the event publisher needs of Kafka. */
export interface RecordProducer {
  /** The topic's partition count (read once at connect). */
  readonly partitions: number;
  /**
   * Sends the records (one message each) with acks from all in-sync replicas; rejects on failure.
   * links: the spans of traced announces whose events are in the records (the send is traced then).
   */
  send(records: { partition: number; value: Buffer }[], links?: SpanContext[]): Promise<void>;
  close(): Promise<void>;
}

export interface KafkaProducerOptions {
  brokers: string[];
  /** TLS and SASL (KAFKA_TLS*, KAFKA_SASL_*) */
  security?: KafkaSecurity;
  topic: string;
  clientId: string;
  /** ms a send may take, kafkajs's retries included, before it fails */
  sendTimeoutMs: number;
  log: Logger;
}

/**
 * Connects and reads the topic's partitions (creating the topic with the broker's defaults when
 * it is missing and the broker allows it). Fails when Kafka cannot be reached: the caller starts
 * without events then, and tries again later.
 */
export async function connectKafkaProducer(o: KafkaProducerOptions): Promise<RecordProducer> {
  const kafka = new Kafka({
    clientId: o.clientId,
    brokers: o.brokers,
    ...o.security,
    connectionTimeout: 3000,
    requestTimeout: o.sendTimeoutMs,
    // (kafkajs logs every failed connection at ERROR: a down broker would flood the log; the
    // publisher logs what matters, once per outage)
    logLevel: logLevel.NOTHING,
    retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1000 },
  });
  // idempotent: a batch that kafkajs retries after a lost ack is written once; it needs one
  // request in flight per broker (ordering)
  const producer: Producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: true });
  await producer.connect();
  const admin = kafka.admin();
  let partitions: number;
  try {
    await admin.connect();
    const topics = await admin.listTopics();
    if (!topics.includes(o.topic)) await admin.createTopics({ topics: [{ topic: o.topic }], waitForLeaders: true });
    const meta = await admin.fetchTopicMetadata({ topics: [o.topic] });
    partitions = meta.topics[0]?.partitions.length ?? 0;
  } finally {
    await admin.disconnect().catch(() => {});
  }
  if (partitions < 1) {
    await producer.disconnect().catch(() => {});
    throw new Error(`Kafka topic ${o.topic} has no partitions`);
  }
  const send = async (records: { partition: number; value: Buffer }[]) => {
    await producer.send({ topic: o.topic, acks: -1, timeout: o.sendTimeoutMs, messages: records });
  };
  return {
    partitions,
    send: telemetry().tracing ? (records, links) => tracedSend(o.topic, records, links, send) : send,
    async close() {
      await producer.disconnect();
    },
  };
}

/**
 * A send in a `publish <topic>` span (kafkajs's instrumentation adds a span per record under it).
 * A send that carries a traced announce's event is traced and links to that announce; others are
 * traced at the root ratio.
 */
function tracedSend(
  topic: string,
  records: { partition: number; value: Buffer }[],
  links: SpanContext[] | undefined,
  send: (records: { partition: number; value: Buffer }[]) => Promise<void>,
): Promise<void> {
  const attributes = {
    'messaging.system': 'kafka',
    'messaging.operation.type': 'send',
    'messaging.destination.name': topic,
    'messaging.batch.message_count': records.length,
    'messaging.destination.partition.id': records.map((r) => r.partition).join(','),
    ...(links !== undefined ? { [SAMPLING_PRIORITY]: 1 } : {}),
  };
  const options = { kind: SpanKind.PRODUCER, attributes, links: links?.map((context) => ({ context })) };
  return tracer.startActiveSpan(`publish ${topic}`, options, async (span) => {
    try {
      await send(records);
    } catch (err) {
      span.recordException(err instanceof Error ? err : String(err));
      span.setStatus({ code: SpanStatusCode.ERROR, message: String(err) });
      throw err;
    } finally {
      span.end();
    }
  });
}
