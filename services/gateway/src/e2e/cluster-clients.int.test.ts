/**
 * End-to-end across replicas: two real BitTorrent clients (aria2c) find each other through two
 * different gateway processes (`node dist/main.js`) sharing one Redis Cluster. The seeder announces
 * to gateway 1 only, the leecher to gateway 2 only (two torrents of the same content with different
 * announce URLs: the announce URL is outside the info dictionary, so both have one info hash, which
 * the helper checks), and the leecher downloads a random file whose SHA-256 is checked.
 *
 * Both gateways publish their announce events to one Kafka broker: after each transfer, the
 * torrent's events on the topic must show the real client (aria2, the version `aria2c --version`
 * gives), both peers' started announces, the leecher stopping with nothing left, and the
 * transport used.
 *
 * Needs aria2c, mktorrent, a Redis Cluster (Debian redis-server started here, or
 * REDIS_CLUSTER_NODES) and Kafka (deploy/kafka.sh on Java and Maven, or KAFKA_BROKERS). Without
 * them the suite is skipped, except under CI=true, where it fails.
 */
import { spawnSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  redisSkipReason,
  startedTogether,
  startRedisTestServer,
  type RedisTestServer,
} from '@peertracker/redis-store/dist/testing';
import { HOST, clusterGatewayEnv, startGateways, stopGateway, type GatewayProcess } from '../testing/gateway-process';
import { clientName } from '@peertracker/events';
import { httpGet } from '../testing/clients';
import { kafkaSkipReason, readTopic, startKafkaTestBroker, type KafkaTestBroker } from '../testing/kafka';
import { missingBinaries, transferThroughTracker } from './aria2';

const CI = process.env.CI === 'true';
const missing = missingBinaries();
const missingMessage =
  missing.length > 0 ? `${missing.join(' and ')} not found on PATH (Debian: apt-get install -y aria2 mktorrent)` : '';
const redisSkip = redisSkipReason('cluster');

const TRANSFER_TIMEOUT_MS = 60_000;
const TEST_TIMEOUT_MS = TRANSFER_TIMEOUT_MS + 30_000;

const skip = CI ? false : (redisSkip ?? kafkaSkipReason() ?? (missing.length > 0 ? missingMessage : false));
const TOPIC = 'announces-e2e';

/** 'aria2 1.36.0' from `aria2c --version` (as clientName names it from the peer id). */
function aria2Name(): string {
  const m = /aria2 version (\d+)\.(\d+)\.(\d+)/.exec(spawnSync('aria2c', ['--version'], { encoding: 'utf8' }).stdout ?? '');
  assert.ok(m, 'aria2c --version names no version');
  return `aria2 ${m[1]}.${m[2]}.${m[3]}`;
}

describe('real BitTorrent clients (aria2c) through two gateways over one Redis Cluster', { skip }, () => {
  let redis: RedisTestServer | undefined;
  let kafka: KafkaTestBroker | undefined;
  const gateways: GatewayProcess[] = [];

  before(async () => {
    if (missing.length > 0) return; // under CI each test fails with the message below
    [redis, kafka] = await startedTogether<[RedisTestServer, KafkaTestBroker]>([startRedisTestServer('cluster'), startKafkaTestBroker()]);
    const env = {
      ...clusterGatewayEnv(redis.nodes),
      KAFKA_BROKERS: kafka.brokers.join(','),
      KAFKA_TOPIC: TOPIC,
      TRACKER_ANNOUNCE_INTERVAL: '5',
      TRACKER_MIN_INTERVAL: '1',
      TRACKER_INTERVAL_JITTER: '0',
    };
    gateways.push(...(await startGateways(2, env)));
    // (events are dropped, and counted, until a gateway's producer has connected)
    const deadline = Date.now() + 30_000;
    for (const g of gateways) {
      while (!/^tracker_events_connected 1$/m.test((await httpGet(g.httpPort, '/metrics')).body.toString())) {
        assert.ok(Date.now() < deadline, 'a gateway did not connect to Kafka');
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  });

  after(async () => {
    await Promise.all(gateways.map(stopGateway));
    await Promise.all([redis?.stop(), kafka?.stop()]);
  });

  function two(): [GatewayProcess, GatewayProcess] {
    if (missing.length > 0) assert.fail(missingMessage);
    assert.equal(gateways.length, 2, 'the gateways did not start');
    return [gateways[0], gateways[1]];
  }

  /**
   * The torrent's events on the topic: the real client, over `protocol`; the two peers' started
   * announces, and the leecher's last (stopped) with nothing left, after announces with bytes left.
   * (aria2 sends no completed event when it stops right after the download.)
   */
  async function assertEvents(infoHash: string, protocol: 'http' | 'udp'): Promise<void> {
    const want = aria2Name();
    const deadline = Date.now() + 30_000;
    for (;;) {
      const events = (await readTopic(kafka!.brokers, TOPIC, 1, 3000)).flatMap((r) => r.events).filter((e) => e.infoHash.toString('hex') === infoHash);
      const byPeer = new Map<string, typeof events>();
      for (const e of events) byPeer.set(e.peerKey.toString('hex'), [...(byPeer.get(e.peerKey.toString('hex')) ?? []), e]);
      const leecher = [...byPeer.values()].find((es) => es.some((e) => e.left > 0));
      if (byPeer.size === 2 && leecher?.at(-1)?.event === 'stopped') {
        assert.deepEqual([...new Set(events.map((e) => clientName(e.client)))], [want]);
        assert.deepEqual([...new Set(events.map((e) => e.protocol))], [protocol]);
        for (const es of byPeer.values()) assert.equal(es[0].event, 'started');
        assert.equal(leecher.at(-1)!.left, 0, 'the leecher stopped with bytes left');
        return;
      }
      assert.ok(Date.now() < deadline, `events of ${infoHash}: ${events.map((e) => `${e.event}/${e.left}`).join(', ') || 'none'}`);
    }
  }

  it('HTTP: seeder on gateway 1, leecher on gateway 2', { timeout: TEST_TIMEOUT_MS }, async () => {
    const [g1, g2] = two();
    const infoHash = await transferThroughTracker({
      announceUrl: `http://${HOST}:${g1.httpPort}/announce`,
      leecherAnnounceUrl: `http://${HOST}:${g2.httpPort}/announce`,
      timeoutMs: TRANSFER_TIMEOUT_MS,
    });
    await assertEvents(infoHash, 'http');
  });

  it('UDP: seeder on gateway 1, leecher on gateway 2', { timeout: TEST_TIMEOUT_MS }, async () => {
    const [g1, g2] = two();
    const infoHash = await transferThroughTracker({
      announceUrl: `udp://${HOST}:${g1.udpPort}/announce`,
      leecherAnnounceUrl: `udp://${HOST}:${g2.udpPort}/announce`,
      timeoutMs: TRANSFER_TIMEOUT_MS,
    });
    await assertEvents(infoHash, 'udp');
  });
});
