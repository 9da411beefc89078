/*
 * Announce events on a real three-node Kafka cluster (KRaft; topics with three replicas and
 * min.insync.replicas 2) while the node leading a partition is killed: every announce answered,
 * every event Kafka acknowledged is in the topic exactly once, the others counted as dropped, and
 * publishing goes on through the two nodes left.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { decodeRecord } from '@peertracker/events';
import { createGateway } from './app';
import { loadConfig } from './config';
import { connectKafkaProducer } from './events/kafka-producer';
import { silentLogger } from './log';
import { udpAnnouncePacket, udpConnect, udpExchange } from './testing/clients';
import { kafkaSkipReason, readTopic, startKafkaTestCluster, type KafkaTestCluster } from './testing/kafka';

// (local nodes only: a cluster given by KAFKA_BROKERS cannot be killed)
const skip = kafkaSkipReason({ ...process.env, KAFKA_BROKERS: '', KAFKA_TEST_PROVIDER: 'local' });

describe('announce events on a three-node Kafka cluster', { skip, timeout: 300_000 }, () => {
  let kafka: KafkaTestCluster;
  before(async () => {
    kafka = await startKafkaTestCluster(3);
  });
  after(async () => {
    await kafka?.stop();
  });

  it('loses no acknowledged event when the node leading a partition is killed', async () => {
    const topic = `b-${randomBytes(4).toString('hex')}`;
    const admin = new Kafka({ brokers: kafka.brokers, clientId: 'test-admin', logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 3, replicationFactor: 3 }], waitForLeaders: true });
    const leader = (await admin.fetchTopicMetadata({ topics: [topic] })).topics[0].partitions.find((p) => p.partitionId === 0)!.leader;
    await admin.disconnect();
    // the records Kafka acknowledged, as the gateway's own producer sent them
    const acknowledged: Buffer[] = [];
    const config = loadConfig({
        TRACKER_HOST: '127.0.0.1',
        TRACKER_HTTP_PORT: '0',
        TRACKER_UDP_PORT: '0',
        TRACKER_CONNECTION_SECRET: 'test-secret-shared-by-every-replica-0123456789',
        KAFKA_BROKERS: kafka.brokers.join(','),
        KAFKA_TOPIC: topic,
        TRACKER_GATEWAY_ID: 'gw-brokers',
        TRACKER_EVENTS_FLUSH_MS: '20',
        TRACKER_EVENTS_SEND_TIMEOUT_MS: '5000',
    });
    const ev = config.events!;
    const gw = await createGateway(config, {
      connectEvents: async () => {
        const real = await connectKafkaProducer({ brokers: ev.brokers, topic: ev.topic, clientId: ev.gatewayId, sendTimeoutMs: ev.sendTimeoutMs, log: silentLogger });
        return {
          partitions: real.partitions,
          send: async (records) => {
            await real.send(records);
            for (const r of records) acknowledged.push(r.value);
          },
          close: () => real.close(),
        };
      },
    });
    try {
      const deadline = Date.now() + 30_000;
      while (!gw.events!.connected) {
        assert.ok(Date.now() < deadline, 'the producer did not connect');
        await new Promise((r) => setTimeout(r, 50));
      }
      const cid = await udpConnect(gw.udpPort);
      let answered = 0;
      const announce = async (n: number) => {
        for (let i = 0; i < n; i++) {
          const reply = await udpExchange(gw.udpPort, udpAnnouncePacket({ connectionId: cid, transactionId: answered, infoHash: randomBytes(20), peerId: randomBytes(20), port: 6881 }));
          assert.equal(reply?.readUInt32BE(0), 1, 'an announce reply');
          answered++;
        }
      };
      await announce(1000);
      // the node leading partition 0 dies while announces go on
      await kafka.nodes[leader - 1].kill();
      const before = gw.metrics.eventsPublished.value;
      await announce(1000);
      // (the producer finds the new leaders: events are acknowledged again)
      const resumeBy = Date.now() + 60_000;
      while (gw.metrics.eventsPublished.value <= before) {
        assert.ok(Date.now() < resumeBy, 'publishing did not resume on the two nodes left');
        await announce(50);
        await new Promise((r) => setTimeout(r, 100));
      }
      await announce(500);
      const drainBy = Date.now() + 60_000;
      while (gw.events!.pending > 0) {
        assert.ok(Date.now() < drainBy, 'the buffer did not drain');
        await new Promise((r) => setTimeout(r, 50));
      }
      const m = gw.metrics;
      const published = m.eventsPublished.value;
      const dropped = m.eventsDroppedBufferFull.value + m.eventsDroppedKafka.value + m.eventsDroppedUnavailable.value;
      assert.equal(published + dropped, answered, "every event published or counted as dropped");
      // every acknowledged event is in the topic, once (read from the two nodes left); a send
      // that failed may still have been written, so the topic may hold more, never twice
      const alive = kafka.brokers.filter((_, i) => i !== leader - 1);
      const inTopic = (await readTopic(alive, topic, published, 60_000)).flatMap((r) => r.events).map((e) => e.infoHash.toString('hex'));
      const acked = acknowledged.flatMap((v) => decodeRecord(v).events).map((e) => e.infoHash.toString('hex'));
      assert.equal(acked.length, published);
      assert.equal(new Set(inTopic).size, inTopic.length, 'an event twice in the topic');
      const present = new Set(inTopic);
      const lost = acked.filter((h) => !present.has(h));
      assert.deepEqual(lost, [], `${lost.length} acknowledged events are not in the topic`);
      assert.ok(inTopic.length <= answered);
    } finally {
      await gw.close();
    }
  });
});
