/*
 * The one place that knows kafkajs (the design's client; it is unmaintained, so nothing else
 * imports it): sends records to chosen partitions of one topic with an idempotent producer.
 */
// (first: it gives kafkajs a native CRC-32C before kafkajs loads)
import './crc32c';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import type { Logger } from '../log';

/** What the event publisher needs of Kafka. */
export interface RecordProducer {
  /** The topic's partition count (read once at connect). */
  readonly partitions: number;
  /** Sends the records (one message each) with acks from all in-sync replicas; rejects on failure. */
  send(records: { partition: number; value: Buffer }[]): Promise<void>;
  close(): Promise<void>;
}

export interface KafkaProducerOptions {
  brokers: string[];
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
  return {
    partitions,
    async send(records) {
      await producer.send({ topic: o.topic, acks: -1, timeout: o.sendTimeoutMs, messages: records });
    },
    async close() {
      await producer.disconnect();
    },
  };
}
