/*
 * Announce events on a real Kafka broker (testing/kafka.ts): what the gateway publishes, that an
 * announce never waits for Kafka nor fails because of it, that drops are counted, and that
 * publishing resumes by itself when Kafka is back.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { bdecode } from '@peertracker/protocol';
import { clientName, decodeClient, type AnnounceEvent } from '@peertracker/events';
import { createGateway, type Gateway } from './app';
import { loadConfig } from './config';
import { PEER_KEY } from './events/publisher';
import { sipHash24, sipOut } from './siphash24';
import { httpGet, percentEncode, udpAnnouncePacket, udpConnect, udpExchange } from './testing/clients';
import { kafkaSkipReason, readTopic, startKafkaTestBroker, type KafkaTestBroker } from './testing/kafka';

const skip = kafkaSkipReason();

function config(brokers: string[], topic: string, extra: Record<string, string> = {}) {
  return loadConfig({
    TRACKER_HOST: '127.0.0.1',
    TRACKER_HTTP_PORT: '0',
    TRACKER_UDP_PORT: '0',
    TRACKER_CONNECTION_SECRET: 'test-secret-shared-by-every-replica-0123456789',
    KAFKA_BROKERS: brokers.join(','),
    KAFKA_TOPIC: topic,
    TRACKER_GATEWAY_ID: 'gw-test',
    TRACKER_EVENTS_FLUSH_MS: '20',
    ...extra,
  });
}

function peerKey(peerId: Buffer): string {
  sipHash24(PEER_KEY, peerId);
  const b = Buffer.alloc(8);
  b.writeUInt32LE(sipOut[0], 0);
  b.writeUInt32LE(sipOut[1], 4);
  return b.toString('hex');
}

async function waitFor(what: string, ok: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const PREFIXES = ['-qB4650-', '-TR4060-', 'A2-1-37-0-', '-LT2090-', 'M7-12-1-'];
const peerId = (i: number) => Buffer.concat([Buffer.from(PREFIXES[i % PREFIXES.length]), randomBytes(20 - PREFIXES[i % PREFIXES.length].length)]);

/** Announces over HTTP; the reply's seeders and leechers. */
async function httpAnnounce(gw: Gateway, a: { infoHash: Buffer; peerId: Buffer; left: number; uploaded: number; downloaded: number; event?: string }): Promise<[number, number]> {
  const path =
    `/announce?info_hash=${percentEncode(a.infoHash)}&peer_id=${percentEncode(a.peerId)}&port=6881` +
    `&uploaded=${a.uploaded}&downloaded=${a.downloaded}&left=${a.left}` +
    (a.event ? `&event=${a.event}` : '');
  const r = await httpGet(gw.httpPort, path);
  assert.equal(r.status, 200);
  const body = bdecode(r.body) as Map<string, unknown>;
  assert.equal(body.get('failure reason'), undefined, 'the announce failed');
  return [Number(body.get('complete')), Number(body.get('incomplete'))];
}

function totals(gw: Gateway) {
  const m = gw.metrics;
  return {
    published: m.eventsPublished.value,
    dropped: m.eventsDroppedBufferFull.value + m.eventsDroppedKafka.value + m.eventsDroppedUnavailable.value,
  };
}

describe('announce events on Kafka', { skip }, () => {
  let kafka: KafkaTestBroker;
  before(async () => {
    kafka = await startKafkaTestBroker();
  });
  after(async () => {
    await kafka?.stop();
  });

  it('publishes every answered announce, HTTP and UDP, as events that say what was announced', async () => {
    const topic = `t-${randomBytes(4).toString('hex')}`;
    const gw = await createGateway(config(kafka.brokers, topic));
    try {
      await waitFor('the producer', () => gw.events!.connected);
      const sent: (Omit<AnnounceEvent, 'time' | 'peerKey' | 'client'> & { peerId: Buffer })[] = [];
      const hashes = Array.from({ length: 7 }, () => randomBytes(20));
      const events = ['started', 'none', 'completed', 'stopped', 'paused'] as const;
      for (let i = 0; i < 40; i++) {
        const a = { infoHash: hashes[i % 7], peerId: peerId(i), left: i % 3 === 0 ? 0 : 1000 * i, uploaded: 2 ** 40 + i, downloaded: 7 * i, event: events[i % 5] };
        const [seeders, leechers] = await httpAnnounce(gw, { ...a, event: a.event === 'none' ? undefined : a.event });
        sent.push({ ...a, event: a.event, protocol: 'http', family: 4, seeders, leechers });
      }
      const cid = await udpConnect(gw.udpPort);
      const udpEvents = { none: 0, completed: 1, started: 2, stopped: 3 } as const;
      for (let i = 0; i < 30; i++) {
        const ev = (['none', 'completed', 'started', 'stopped'] as const)[i % 4];
        const a = { infoHash: hashes[i % 7], peerId: peerId(i + 1), left: i % 2 === 0 ? 0 : 5 * i, uploaded: 0, downloaded: 0 };
        const reply = await udpExchange(gw.udpPort, udpAnnouncePacket({ connectionId: cid, transactionId: i, infoHash: a.infoHash, peerId: a.peerId, port: 6881, left: BigInt(a.left), event: udpEvents[ev] }));
        assert.equal(reply?.readUInt32BE(0), 1, 'an announce reply');
        sent.push({ ...a, event: ev, protocol: 'udp', family: 4, seeders: reply!.readUInt32BE(16), leechers: reply!.readUInt32BE(12) });
      }
      const records = await readTopic(kafka.brokers, topic, sent.length);
      const got = records.flatMap((r) => r.events);
      assert.ok(records.every((r) => r.gatewayId === 'gw-test' && r.version === 1));
      assert.equal(got.length, sent.length, 'events in the topic');
      type Said = { infoHash: Buffer; event: string; left: number; uploaded: number; downloaded: number; protocol: string; family: number; seeders: number; leechers: number };
      const key = (e: Said, peer: string, client: string) =>
        [e.infoHash.toString('hex'), peer, e.event, e.left, e.uploaded, e.downloaded, e.protocol, e.family, e.seeders, e.leechers, client].join(' ');
      const want = sent.map((s) => key(s, peerKey(s.peerId), clientName(decodeClient(s.peerId)))).sort();
      assert.deepEqual(got.map((e) => key(e, e.peerKey.toString('hex'), clientName(e.client))).sort(), want);
      // names as analysts read them
      assert.deepEqual([...new Set(got.map((e) => clientName(e.client)))].sort(), [
        'BitTorrent (Mainline) 7.12.1',
        'Transmission 4.0.6',
        'aria2 1.37.0',
        'libtorrent (Rasterbar) 2.0.9',
        'qBittorrent 4.6.5',
      ]);
      // one swarm's events in one partition, in the order they were answered
      const t0 = Date.now() - 60_000;
      assert.ok(got.every((e) => e.time > t0 && e.time <= Date.now()));
      await waitFor('the metrics', () => gw.metrics.eventsPublished.value === sent.length);
      assert.deepEqual(totals(gw), { published: sent.length, dropped: 0 });
      // no client address in any record (127.0.0.1 as 4 bytes)
      assert.ok(records.every((r) => !Buffer.concat(r.events.map((e) => e.infoHash)).includes(Buffer.from([127, 0, 0, 1]))));
    } finally {
      await gw.close();
    }
  });

  it('answers every announce while Kafka is down, counts the dropped events, and publishes again when it is back', async (t) => {
    if (!kafka.outage) return t.skip('needs a broker this test can stop (the local provider; KAFKA_BROKERS or testcontainers cannot)');
    const topic = `t-${randomBytes(4).toString('hex')}`;
    const gw = await createGateway(config(kafka.brokers, topic, { TRACKER_EVENTS_SEND_TIMEOUT_MS: '1000' }));
    const h = randomBytes(20);
    let n = 0;
    const announce = () => httpAnnounce(gw, { infoHash: h, peerId: peerId(n++), left: 1, uploaded: 0, downloaded: 0 });
    try {
      await waitFor('the producer', () => gw.events!.connected);
      for (let i = 0; i < 20; i++) await announce();
      await waitFor('the first events', () => gw.metrics.eventsPublished.value === 20);
      await kafka.outage!.kill();
      for (let i = 0; i < 50; i++) await announce();
      await waitFor('the drops', () => gw.events!.pending === 0 && totals(gw).published + totals(gw).dropped === n);
      assert.ok(totals(gw).dropped > 0, 'nothing was dropped while Kafka was down');
      await kafka.outage!.start();
      const published = gw.metrics.eventsPublished.value;
      // (announces go on; one of them reaches Kafka once the publisher has reconnected)
      await waitFor(
        'publishing to resume',
        async () => {
          await announce();
          return gw.metrics.eventsPublished.value > published;
        },
        60_000,
      );
      await waitFor('the last sends', () => gw.events!.pending === 0);
      const t = totals(gw);
      assert.equal(t.published + t.dropped, n);
      // every event Kafka acknowledged is in the topic, once
      const got = (await readTopic(kafka.brokers, topic, t.published)).flatMap((r) => r.events);
      assert.equal(got.length, t.published);
      assert.equal(new Set(got.map((e) => e.peerKey.toString('hex'))).size, t.published, 'an event twice');
    } finally {
      await gw.close();
    }
  });

  it('holds at most TRACKER_EVENTS_BUFFER events while Kafka hangs, drops the rest, and drains when it answers', async (t) => {
    if (!kafka.outage) return t.skip('needs a broker this test can pause (the local provider; KAFKA_BROKERS or testcontainers cannot)');
    const topic = `t-${randomBytes(4).toString('hex')}`;
    const gw = await createGateway(config(kafka.brokers, topic, { TRACKER_EVENTS_BUFFER: '1000', TRACKER_EVENTS_SEND_TIMEOUT_MS: '3000' }));
    try {
      await waitFor('the producer', () => gw.events!.connected);
      const cid = await udpConnect(gw.udpPort);
      kafka.outage!.pause();
      let most = 0;
      const total = 3000;
      for (let i = 0; i < total; i++) {
        const reply = await udpExchange(gw.udpPort, udpAnnouncePacket({ connectionId: cid, transactionId: i, infoHash: randomBytes(20), peerId: peerId(i), port: 6881 }));
        assert.equal(reply?.readUInt32BE(0), 1, 'an announce reply');
        most = Math.max(most, gw.events!.pending);
      }
      assert.ok(most <= 1000, `${most} events held`);
      assert.ok(gw.metrics.eventsDroppedBufferFull.value >= total - 1000 - 100, `${gw.metrics.eventsDroppedBufferFull.value} dropped for a full buffer`);
      kafka.outage!.resume();
      await waitFor('the buffer to drain', () => gw.events!.pending === 0, 60_000);
      const t = totals(gw);
      assert.equal(t.published + t.dropped, total);
    } finally {
      kafka.outage!.resume();
      await gw.close();
    }
  });
});
