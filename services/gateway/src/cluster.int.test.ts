/*
 * Three gateway processes (`node dist/main.js`, as deployed) over one real Redis Cluster: the
 * replicas are stateless, so a peer announced through one is seen through the others, over HTTP
 * and UDP, a UDP connection ID issued by one is accepted by another (shared
 * TRACKER_CONNECTION_SECRET), and scrapes agree.
 *
 * The cluster comes from @peertracker/redis-store's test provider (Debian redis-server started
 * here, or REDIS_CLUSTER_NODES). Without either the suite is skipped, except under CI=true, where
 * it fails. Every wait is bounded.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import { bdecode, type BValue } from '@peertracker/protocol';
import {
  redisSkipReason,
  startRedisTestServer,
  type RedisTestServer,
} from '@peertracker/redis-store/dist/testing';
import {
  announcePath,
  httpGet,
  percentEncode,
  udpAnnouncePacket,
  udpConnect,
  udpExchange,
  udpScrapePacket,
} from './testing/clients';
import { HOST, clusterGatewayEnv, startGateways, stopGateway, type GatewayProcess } from './testing/gateway-process';

const GATEWAYS = 3;
const SUITE_TIMEOUT_MS = 90_000;

const skip = redisSkipReason('cluster') ?? false;

function decode(body: Buffer): Map<string, BValue> {
  const value = bdecode(body);
  assert.ok(value instanceof Map, `not a dictionary: ${body.toString('latin1')}`);
  const failure = value.get('failure reason');
  assert.equal(failure, undefined, `failure reason: ${String(failure)}`);
  return value;
}

/** "7f000001xxxx" for 127.0.0.1:port, as in compact peer lists. */
const compactLoopback = (port: number) => '7f000001' + port.toString(16).padStart(4, '0');

/** Compact peer list (HTTP or UDP) as sorted hex entries of 6 bytes. */
const peerEntries = (peers: Buffer): string[] => [...(peers.toString('hex').match(/.{12}/g) ?? [])].sort();

describe('three gateways over one Redis Cluster', { skip, timeout: SUITE_TIMEOUT_MS }, () => {
  let redis: RedisTestServer | undefined;
  const gateways: GatewayProcess[] = [];

  before(async () => {
    redis = await startRedisTestServer('cluster');
    gateways.push(...(await startGateways(GATEWAYS, clusterGatewayEnv(redis.nodes))));
  });

  after(async () => {
    await Promise.all(gateways.map(stopGateway));
    await redis?.stop();
  });

  it('a peer announced over HTTP through gateway 1 is returned by gateways 2 and 3 over HTTP and UDP', async () => {
    const infoHash = randomBytes(20);
    const seederPort = 40001;
    const first = decode(
      (await httpGet(gateways[0].httpPort, announcePath({ infoHash, peerId: randomBytes(20), port: seederPort, left: 0, event: 'started' }))).body,
    );
    assert.equal((first.get('peers') as Buffer).length, 0);

    // the swarm is new: every count and peer list is exact. Gateway 2 and 3 each add one leecher
    // over HTTP, then one over UDP, all from 127.0.0.1 on their own ports.
    const httpLeechers = [40100, 40101];
    for (const [i, gw] of gateways.slice(1).entries()) {
      const r = decode(
        (await httpGet(gw.httpPort, announcePath({ infoHash, peerId: randomBytes(20), port: httpLeechers[i], compact: 1 }))).body,
      );
      assert.deepEqual(
        peerEntries(r.get('peers') as Buffer),
        [seederPort, ...httpLeechers.slice(0, i)].map(compactLoopback).sort(),
        `gateway on ${gw.httpPort} over HTTP`,
      );
      assert.deepEqual([r.get('complete'), r.get('incomplete')], [1, i + 1], `gateway on ${gw.httpPort}: seeders, leechers`);
    }

    const udpLeechers = [40200, 40201];
    for (const [i, gw] of gateways.slice(1).entries()) {
      const connectionId = await udpConnect(gw.udpPort);
      const reply = await udpExchange(
        gw.udpPort,
        udpAnnouncePacket({ connectionId, transactionId: 7, infoHash, peerId: randomBytes(20), port: udpLeechers[i] }),
        HOST,
        3000,
      );
      assert.ok(reply !== null, `no UDP announce reply from ${gw.udpPort}`);
      assert.equal(reply.readUInt32BE(0), 1, `UDP error: ${reply.subarray(8).toString()}`);
      assert.equal(reply.readUInt32BE(4), 7);
      assert.deepEqual(
        [reply.readUInt32BE(16), reply.readUInt32BE(12)],
        [1, httpLeechers.length + i + 1],
        `gateway on ${gw.udpPort} over UDP: seeders, leechers`,
      );
      assert.deepEqual(
        peerEntries(reply.subarray(20)),
        [seederPort, ...httpLeechers, ...udpLeechers.slice(0, i)].map(compactLoopback).sort(),
        `gateway on ${gw.udpPort} over UDP`,
      );
    }
  });

  it('a peer announced over UDP through gateway 1 is returned by gateways 2 and 3', async () => {
    const infoHash = randomBytes(20);
    const connectionId = await udpConnect(gateways[0].udpPort);
    const first = await udpExchange(
      gateways[0].udpPort,
      udpAnnouncePacket({ connectionId, transactionId: 9, infoHash, peerId: randomBytes(20), port: 41001, left: 0n, event: 2 }),
      HOST,
      3000,
    );
    assert.ok(first !== null && first.readUInt32BE(0) === 1, `UDP announce failed: ${first?.toString('hex')}`);
    const leechers = [41002, 41003];
    for (const [i, gw] of gateways.slice(1).entries()) {
      const r = decode((await httpGet(gw.httpPort, announcePath({ infoHash, peerId: randomBytes(20), port: leechers[i] }))).body);
      assert.deepEqual(
        peerEntries(r.get('peers') as Buffer),
        [41001, ...leechers.slice(0, i)].map(compactLoopback).sort(),
        `gateway on ${gw.httpPort}`,
      );
      assert.deepEqual([r.get('complete'), r.get('incomplete')], [1, i + 1], `gateway on ${gw.httpPort}: seeders, leechers`);
    }
  });

  it('accepts on gateway 2 a UDP connection ID issued by gateway 1', async () => {
    const connectionId = await udpConnect(gateways[0].udpPort);
    const infoHash = randomBytes(20);
    for (const gw of gateways.slice(1)) {
      const reply = await udpExchange(
        gw.udpPort,
        udpAnnouncePacket({ connectionId, transactionId: 11, infoHash, peerId: randomBytes(20), port: 42000 }),
        HOST,
        3000,
      );
      assert.ok(reply !== null, `no reply from ${gw.udpPort}`);
      assert.equal(reply.readUInt32BE(0), 1, `rejected: ${reply.subarray(8).toString()}`);
      assert.equal(reply.readUInt32BE(4), 11);
      const scrape = await udpExchange(gw.udpPort, udpScrapePacket(connectionId, 12, [infoHash]), HOST, 3000);
      assert.ok(scrape !== null && scrape.readUInt32BE(0) === 2, `scrape rejected: ${scrape?.subarray(8).toString()}`);
    }
  });

  it('batches a burst of UDP announces per Redis master, answers each, and counts the batches in /metrics', async () => {
    const gw = gateways[0];
    const metric = async (name: string) => {
      const text = (await httpGet(gw.httpPort, '/metrics')).body.toString();
      const m = text.match(new RegExp(`^${name} (\\S+)$`, 'm'));
      return m === null ? NaN : Number(m[1]);
    };
    const [count0, sum0] = [await metric('tracker_redis_batch_size_count'), await metric('tracker_redis_batch_size_sum')];
    const connectionId = await udpConnect(gw.udpPort);
    const socket = createSocket('udp4');
    const N = 300;
    const answered = new Set<number>();
    try {
      const done = new Promise<void>((resolve) => {
        socket.on('message', (msg) => {
          if (msg.length >= 20 && msg.readUInt32BE(0) === 1) answered.add(msg.readUInt32BE(4));
          if (answered.size === N) resolve();
        });
        setTimeout(resolve, 10_000);
      });
      await new Promise<void>((r) => socket.bind(0, HOST, () => r()));
      // all at once: they wait in the gateway's socket buffer and are read in one pass or a few
      for (let t = 1; t <= N; t++) {
        socket.send(udpAnnouncePacket({ connectionId, transactionId: t, infoHash: randomBytes(20), peerId: randomBytes(20), port: 44000 + t }), gw.udpPort, HOST);
      }
      await done;
    } finally {
      socket.close();
    }
    assert.equal(answered.size, N, 'every announce answered');
    const [count, sum] = [(await metric('tracker_redis_batch_size_count')) - count0, (await metric('tracker_redis_batch_size_sum')) - sum0];
    assert.equal(sum, N, 'every announce went to Redis in a batch');
    assert.ok(count < N, `${count} batches for ${N} announces: some carried several`);
    assert.equal(await metric('tracker_redis_batch_resent_total'), 0);
  });

  it('scrape counts agree on all three gateways, over HTTP and UDP', async () => {
    const hashes = [randomBytes(20), randomBytes(20)];
    // hash 0: 2 seeders (one completed), 1 leecher; hash 1: 1 leecher; spread over the gateways
    const announces = [
      { gw: 0, hash: 0, left: 0, event: 'completed' },
      { gw: 1, hash: 0, left: 0, event: 'started' },
      { gw: 2, hash: 0, left: 5, event: 'started' },
      { gw: 1, hash: 1, left: 5, event: 'started' },
    ];
    for (const [i, a] of announces.entries()) {
      decode(
        (await httpGet(gateways[a.gw].httpPort, announcePath({ infoHash: hashes[a.hash], peerId: randomBytes(20), port: 43000 + i, left: a.left, event: a.event }))).body,
      );
    }
    const expected = [
      { complete: 2, downloaded: 1, incomplete: 1 },
      { complete: 0, downloaded: 0, incomplete: 1 },
    ];
    for (const gw of gateways) {
      const path = '/scrape?' + hashes.map((h) => `info_hash=${percentEncode(h)}`).join('&');
      const files = decode((await httpGet(gw.httpPort, path)).body).get('files') as Map<string, BValue>;
      const got = hashes.map((h) => {
        const e = files.get(h.toString('latin1')) as Map<string, BValue>;
        return { complete: e.get('complete'), downloaded: e.get('downloaded'), incomplete: e.get('incomplete') };
      });
      assert.deepEqual(got, expected, `HTTP scrape on ${gw.httpPort}`);

      const connectionId = await udpConnect(gw.udpPort);
      const reply = await udpExchange(gw.udpPort, udpScrapePacket(connectionId, 13, hashes), HOST, 3000);
      assert.ok(reply !== null && reply.readUInt32BE(0) === 2, `UDP scrape on ${gw.udpPort}: ${reply?.toString('hex')}`);
      const udpGot = hashes.map((_, i) => ({
        complete: reply.readUInt32BE(8 + 12 * i),
        downloaded: reply.readUInt32BE(12 + 12 * i),
        incomplete: reply.readUInt32BE(16 + 12 * i),
      }));
      assert.deepEqual(udpGot, expected, `UDP scrape on ${gw.udpPort}`);
    }
  });
});
