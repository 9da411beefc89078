/*
 * In-process tests of the gateway's defences against hostile input (issue 7): a UDP datagram from
 * source port 0, replies completing after shutdown, refusals counted, and HTTP connections that
 * are idle, slow or over the limit. The same attacks against a real gateway process, at volume,
 * are in hostile.int.test.ts.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createSocket, type RemoteInfo } from 'node:dgram';
import { describe, it } from 'node:test';
import { encodeUdpConnectRequest } from '@peertracker/protocol';
import { MemoryStore, TrackerLogic, type StoreAnnounce, type StoreAnnounceResult } from '@peertracker/tracker';
import { createGateway } from './app';
import { loadConfig } from './config';
import { ConnectionIds } from './connection-id';
import { silentLogger } from './log';
import { GatewayMetrics } from './metrics';
import { announcePath, httpGet, openRaw, percentEncode, udpAnnouncePacket, udpConnect, udpConnectPacket, udpScrapePacket, udpExchange } from './testing/clients';
import { UdpFrontend } from './udp-frontend';

const SECRET = 'test-secret-shared-by-every-replica-0123456789';

function config(extra: Record<string, string> = {}) {
  return loadConfig({
    TRACKER_HOST: '127.0.0.1',
    TRACKER_HTTP_PORT: '0',
    TRACKER_UDP_PORT: '0',
    TRACKER_CONNECTION_SECRET: SECRET,
    ...extra,
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function metricsText(port: number): Promise<string> {
  return (await httpGet(port, '/metrics')).body.toString();
}

function metricValue(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  assert.ok(line !== undefined, `${series} missing from /metrics`);
  return Number(line.slice(series.length + 1));
}

/** Waits (bounded) until check() holds; fails with what() otherwise. */
async function eventually(ms: number, check: () => Promise<boolean> | boolean, what: () => Promise<string> | string) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(await what());
    await sleep(50);
  }
}

describe('UDP hardening', () => {
  it('drops a datagram from source port 0 (counted) instead of throwing out of the handler', async () => {
    const socket = createSocket('udp4');
    await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
    try {
      const metrics = new GatewayMetrics(new MemoryStore());
      const frontend = new UdpFrontend(socket, {
        logic: new TrackerLogic(new MemoryStore(), {
          announceIntervalSec: 1800,
          minIntervalSec: 60,
          intervalJitterSec: 0,
          peerLifetimeSec: 3600,
          defaultNumwant: 50,
          maxNumwant: 100,
        }),
        connectionIds: new ConnectionIds(Buffer.from(SECRET)),
        metrics,
        log: silentLogger,
        limits: { maxScrapeHashes: 74 },
      });
      // What a raw socket can deliver (a spoofed source): the kernel passes port 0 through.
      const rinfo: RemoteInfo = { address: '127.0.0.2', family: 'IPv4', port: 0, size: 16 };
      frontend.onMessage(encodeUdpConnectRequest(7), rinfo);
      assert.equal(metrics.udpDroppedBadSourcePort.value, 1);
      assert.equal(metrics.udpConnects.value, 0);
      const text = await metrics.registry.metrics();
      assert.match(text, /tracker_udp_dropped_total\{reason="bad_source_port"\} 1/);
    } finally {
      socket.close();
    }
  });

  it('sends nothing (and does not crash) when an announce completes after shutdown', async () => {
    // A store answering only when told to: the announce is still in flight when the gateway closes.
    const inner = new MemoryStore();
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let called!: () => void;
    const wasCalled = new Promise<void>((r) => (called = r));
    const store = Object.assign(Object.create(inner) as MemoryStore, {
      announce: async (req: StoreAnnounce): Promise<StoreAnnounceResult> => {
        called();
        await released;
        return inner.announce(req) as StoreAnnounceResult;
      },
    });
    const gw = await createGateway(config(), { store });
    const errors: unknown[] = [];
    const onError = (err: unknown) => errors.push(err);
    process.on('unhandledRejection', onError);
    process.on('uncaughtException', onError);
    try {
      const connectionId = await udpConnect(gw.udpPort);
      const client = createSocket('udp4');
      const packet = udpAnnouncePacket({ connectionId, transactionId: 1, infoHash: randomBytes(20), peerId: randomBytes(20), port: 6881 });
      client.send(packet, gw.udpPort, '127.0.0.1');
      await wasCalled;
      await gw.close();
      release();
      await sleep(100);
      client.close();
      assert.deepEqual(errors, []);
      assert.equal(gw.metrics.udpDroppedSendError.value, 0, 'a send was attempted on the closed socket');
    } finally {
      process.off('unhandledRejection', onError);
      process.off('uncaughtException', onError);
    }
  });
});

/** One datagram from a socket bound to `from` (a loopback address), and its reply. */
function exchangeFrom(from: string, port: number, packet: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    const timer = setTimeout(() => s.close(() => reject(new Error('no UDP reply'))), 2000);
    s.once('message', (m: Buffer) => {
      clearTimeout(timer);
      s.close(() => resolve(m));
    });
    s.bind(0, from, () => s.send(packet, port, '127.0.0.1'));
  });
}

describe('UDP key 0', () => {
  it('is no key: another address sending key 0 cannot stop a peer that announced without one', async () => {
    const gw = await createGateway(config());
    try {
      const infoHash = randomBytes(20);
      const peerId = randomBytes(20);
      const announce = async (from: string, event: number) => {
        const cid = (await exchangeFrom(from, gw.udpPort, udpConnectPacket(1))).subarray(8, 16);
        const packet = udpAnnouncePacket({ connectionId: cid, transactionId: 2, infoHash, peerId, port: 6881, event });
        packet.writeUInt32BE(0, 88); // key 0: what a client without a key sends
        const reply = await exchangeFrom(from, gw.udpPort, packet);
        assert.equal(reply.readUInt32BE(0), 1, `not an announce reply: ${reply.toString('hex')}`);
        return reply;
      };
      await announce('127.0.0.1', 2); // started
      await announce('127.0.0.2', 3); // stopped, from elsewhere, key 0
      const cid = (await exchangeFrom('127.0.0.1', gw.udpPort, udpConnectPacket(3))).subarray(8, 16);
      const scrape = await exchangeFrom('127.0.0.1', gw.udpPort, udpScrapePacket(cid, 4, [infoHash]));
      assert.equal(scrape.readUInt32BE(16), 1, 'the peer is still a leecher of its swarm');
    } finally {
      await gw.close();
    }
  });
});

describe('HTTP numwant below -1', () => {
  it('gets the default number of peers, not a failure', async () => {
    const gw = await createGateway(config({ TRACKER_DEFAULT_NUMWANT: '3' }));
    try {
      const infoHash = randomBytes(20);
      for (let i = 0; i < 5; i++) await httpGet(gw.httpPort, announcePath({ infoHash, peerId: randomBytes(20), port: 7000 + i }));
      const r = await httpGet(gw.httpPort, announcePath({ infoHash, peerId: randomBytes(20), port: 7100, numwant: -5 }));
      const body = r.body.toString('latin1');
      assert.ok(!body.includes('failure reason'), body);
      assert.match(body, /5:peers18:/, 'three compact peers (6 bytes each)');
    } finally {
      await gw.close();
    }
  });
});

describe('refusals', () => {
  it('counts announces the store refused, by reason, on /metrics', async () => {
    const inner = new MemoryStore();
    const reasons = ['address-full', 'address-full', 'swarm-full', 'store-full'] as const;
    let n = 0;
    const store = Object.assign(Object.create(inner) as MemoryStore, {
      announce: (req: StoreAnnounce): StoreAnnounceResult => {
        const r = inner.announce(req) as StoreAnnounceResult;
        const reason = reasons[n++];
        return reason === undefined ? r : { ...r, refused: reason };
      },
    });
    const gw = await createGateway(config(), { store });
    try {
      const infoHash = randomBytes(20);
      for (let i = 0; i < 3; i++) {
        const r = await httpGet(gw.httpPort, announcePath({ infoHash, peerId: randomBytes(20), port: 7000 + i }));
        assert.equal(r.status, 200);
      }
      const connectionId = await udpConnect(gw.udpPort);
      for (let i = 0; i < 2; i++) {
        await new Promise<void>((resolve) => {
          const s = createSocket('udp4');
          s.once('message', () => s.close(() => resolve()));
          s.send(udpAnnouncePacket({ connectionId, transactionId: i, infoHash, peerId: randomBytes(20), port: 8000 + i }), gw.udpPort, '127.0.0.1');
        });
      }
      const text = await metricsText(gw.httpPort);
      assert.equal(metricValue(text, 'tracker_peers_refused_total{reason="address-full"}'), 2);
      assert.equal(metricValue(text, 'tracker_peers_refused_total{reason="swarm-full"}'), 1);
      assert.equal(metricValue(text, 'tracker_peers_refused_total{reason="store-full"}'), 1);
      assert.equal(metricValue(text, 'tracker_announces_total{transport="http",family="4"}'), 3);
    } finally {
      await gw.close();
    }
  });
});

describe('announce latency', () => {
  it('times one announce in 16 per transport into a cumulative histogram', async () => {
    const gw = await createGateway(config());
    try {
      const infoHash = randomBytes(20);
      for (let i = 0; i < 32; i++) {
        const r = await httpGet(gw.httpPort, `/announce?info_hash=${percentEncode(infoHash)}&peer_id=${percentEncode(randomBytes(20))}&port=${6000 + i}&uploaded=0&downloaded=0&left=1`);
        assert.equal(r.status, 200);
      }
      const connectionId = await udpConnect(gw.udpPort);
      for (let i = 0; i < 48; i++) {
        const reply = await udpExchange(gw.udpPort, udpAnnouncePacket({ connectionId, transactionId: i, infoHash, peerId: randomBytes(20), port: 7000 + i }));
        assert.equal(reply?.readUInt32BE(0), 1);
      }
      const text = await metricsText(gw.httpPort);
      assert.match(text, /^# TYPE tracker_announce_duration_seconds histogram$/m);
      for (const [transport, n] of [['http', 2], ['udp', 3]] as const) {
        assert.equal(metricValue(text, `tracker_announce_duration_seconds_count{transport="${transport}"}`), n);
        assert.equal(metricValue(text, `tracker_announce_duration_seconds_bucket{transport="${transport}",le="+Inf"}`), n);
        const buckets = [...text.matchAll(new RegExp(`^tracker_announce_duration_seconds_bucket\\{transport="${transport}",le="[^"]+"\\} (\\d+)$`, 'gm'))].map((m) => Number(m[1]));
        assert.equal(buckets.length, 15);
        assert.ok(buckets.every((v, i) => i === 0 || v >= buckets[i - 1]), String(buckets));
        const sum = metricValue(text, `tracker_announce_duration_seconds_sum{transport="${transport}"}`);
        assert.ok(sum > 0 && sum < n, `${transport}: ${sum} s in all`);
      }
    } finally {
      await gw.close();
    }
  });
});

describe('HTTP connection limits', () => {
  it('answers 408 to connections that send no complete headers in time, and releases them', async () => {
    const gw = await createGateway(
      config({ TRACKER_HTTP_HEADERS_TIMEOUT_MS: '500', TRACKER_HTTP_REQUEST_TIMEOUT_MS: '500' }),
    );
    const clients: Awaited<ReturnType<typeof openRaw>>[] = [];
    try {
      for (let i = 0; i < 10; i++) clients.push(await openRaw(gw.httpPort));
      // half of them trickle a header line (slowloris), half send nothing
      for (const c of clients.slice(0, 5)) c.socket.write('GET /announce HTTP/1.1\r\nX-a: ');
      assert.ok(gw.metrics.httpConnections >= 10, `open: ${gw.metrics.httpConnections}`);
      await Promise.all(clients.map((c) => c.closed));
      for (const c of clients) assert.match(Buffer.concat(c.received).toString(), /^HTTP\/1\.1 408 /);
      // The clients never close their side: the gateway must have destroyed its sockets anyway.
      await eventually(
        3000,
        () => gw.metrics.httpConnections === 0,
        () => `connections still open on the gateway: ${gw.metrics.httpConnections}`,
      );
      const text = await metricsText(gw.httpPort);
      assert.equal(metricValue(text, 'tracker_http_connections_dropped_total{reason="timeout"}'), 10);
    } finally {
      for (const c of clients) c.socket.destroy();
      await gw.close();
    }
  });

  for (const [what, request, status] of [
    ['destroys a connection after answering malformed HTTP with 400', 'NOT HTTP AT ALL\r\n\r\n', 400],
    ['answers 431 to oversized headers and destroys the connection', `GET /announce HTTP/1.1\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431],
  ] as const) {
    it(what, async () => {
      const gw = await createGateway(config());
      const c = await openRaw(gw.httpPort);
      try {
        c.socket.write(request);
        await c.closed;
        assert.match(Buffer.concat(c.received).toString(), new RegExp(`^HTTP/1\\.1 ${status} `));
        await eventually(3000, () => gw.metrics.httpConnections === 0, () => `open: ${gw.metrics.httpConnections}`);
        assert.equal(gw.metrics.httpDroppedMalformed.value, 1);
      } finally {
        c.socket.destroy();
        await gw.close();
      }
    });
  }

  it('refuses connections beyond TRACKER_HTTP_MAX_CONNECTIONS (counted) and serves again once they go', async () => {
    const gw = await createGateway(
      config({
        TRACKER_HTTP_MAX_CONNECTIONS: '5',
        TRACKER_HTTP_HEADERS_TIMEOUT_MS: '800',
        TRACKER_HTTP_REQUEST_TIMEOUT_MS: '800',
      }),
    );
    const clients: Awaited<ReturnType<typeof openRaw>>[] = [];
    try {
      for (let i = 0; i < 5; i++) clients.push(await openRaw(gw.httpPort));
      await eventually(2000, () => gw.metrics.httpConnections === 5, () => `open: ${gw.metrics.httpConnections}`);
      const extra = await openRaw(gw.httpPort);
      clients.push(extra);
      await extra.closed; // closed by the gateway at once, without a byte
      assert.equal(Buffer.concat(extra.received).length, 0);
      assert.equal(gw.metrics.httpDroppedMaxConnections.value, 1);
      await Promise.all(clients.map((c) => c.closed));
      await eventually(3000, () => gw.metrics.httpConnections === 0, () => `open: ${gw.metrics.httpConnections}`);
      assert.equal((await httpGet(gw.httpPort, '/health')).status, 200);
    } finally {
      for (const c of clients) c.socket.destroy();
      await gw.close();
    }
  });

  it('lets one source hold at most TRACKER_HTTP_MAX_CONNECTIONS_PER_IP connections; others and trusted proxies are served', async () => {
    for (const trusted of [false, true]) {
      const gw = await createGateway(
        config({ TRACKER_HTTP_MAX_CONNECTIONS_PER_IP: '4', ...(trusted ? { TRACKER_TRUSTED_PROXIES: '127.0.0.1' } : {}) }),
      );
      const clients: Awaited<ReturnType<typeof openRaw>>[] = [];
      try {
        for (let i = 0; i < 6; i++) clients.push(await openRaw(gw.httpPort, '127.0.0.1'));
        if (!trusted) {
          // the fifth and sixth are closed by the gateway at once, without a byte
          await Promise.all(clients.slice(4).map((c) => c.closed));
          assert.equal(Buffer.concat(clients.slice(4).flatMap((c) => c.received)).length, 0);
          assert.equal(gw.metrics.httpDroppedPerIp.value, 2);
          await eventually(2000, () => gw.metrics.httpConnections === 4, () => `open: ${gw.metrics.httpConnections}`);
        }
        // another source is served meanwhile, /health included
        const other = await openRaw(gw.httpPort, '127.0.0.2');
        clients.push(other);
        other.socket.write('GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
        await other.closed;
        assert.match(Buffer.concat(other.received).toString(), /^HTTP\/1\.1 200 /);
        // the first four (all six from a trusted proxy) still work
        const kept = clients.slice(0, trusted ? 6 : 4);
        for (const c of kept) c.socket.write('GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
        await Promise.all(kept.map((c) => c.closed));
        for (const c of kept) assert.match(Buffer.concat(c.received).toString(), /^HTTP\/1\.1 200 /);
        if (trusted) assert.equal(gw.metrics.httpDroppedPerIp.value, 0);
        // once they are gone the source gets its share again
        await eventually(2000, () => gw.metrics.httpConnections === 0, () => `open: ${gw.metrics.httpConnections}`);
        assert.equal((await httpGet(gw.httpPort, '/health')).status, 200);
      } finally {
        for (const c of clients) c.socket.destroy();
        await gw.close();
      }
    }
  });

  it('closes idle keep-alive connections after TRACKER_HTTP_KEEP_ALIVE_TIMEOUT_MS', async () => {
    const gw = await createGateway(config({ TRACKER_HTTP_KEEP_ALIVE_TIMEOUT_MS: '300' }));
    const c = await openRaw(gw.httpPort);
    try {
      c.socket.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
      await c.closed;
      assert.match(Buffer.concat(c.received).toString(), /^HTTP\/1\.1 200 /);
      await eventually(3000, () => gw.metrics.httpConnections === 0, () => `open: ${gw.metrics.httpConnections}`);
      assert.equal(gw.metrics.httpDroppedIdle.value, 1);
    } finally {
      c.socket.destroy();
      await gw.close();
    }
  });
});

describe('peer limits from the configuration', () => {
  const scrapeCounts = async (port: number, infoHash: Buffer) => {
    const body = (await httpGet(port, `/scrape?info_hash=${percentEncode(infoHash)}`)).body.toString('latin1');
    const num = (k: string) => Number(new RegExp(`${k}i(\\d+)e`).exec(body)?.[1]);
    return { complete: num('complete'), incomplete: num('incomplete') };
  };

  it('keeps a swarm to TRACKER_MAX_PEERS_PER_ADDRESS and TRACKER_MAX_PEERS_PER_SWARM, answering the refused', async () => {
    const gw = await createGateway(config({ TRACKER_MAX_PEERS_PER_ADDRESS: '3', TRACKER_MAX_PEERS_PER_SWARM: '5' }));
    try {
      const infoHash = randomBytes(20);
      // five peers from 127.0.0.1: the last two are over the address limit
      for (let i = 0; i < 5; i++) {
        const r = await httpGet(gw.httpPort, announcePath({ infoHash, peerId: randomBytes(20), port: 7000 + i }));
        assert.equal(r.status, 200);
        assert.ok(!r.body.toString('latin1').includes('failure reason'), 'a refused peer still gets a normal answer');
      }
      assert.deepEqual(await scrapeCounts(gw.httpPort, infoHash), { complete: 0, incomplete: 3 });
      let text = await metricsText(gw.httpPort);
      assert.equal(metricValue(text, 'tracker_peers_refused_total{reason="address-full"}'), 2);
      // other addresses (loopback aliases over UDP, where the source IP is the peer's) fill the
      // swarm to 5, and the third is over the swarm limit
      for (const ip of ['127.0.0.2', '127.0.0.3', '127.0.0.4']) {
        const connectionId = (await exchangeFrom(ip, gw.udpPort, udpConnectPacket(1))).subarray(8, 16);
        const reply = await exchangeFrom(ip, gw.udpPort, udpAnnouncePacket({ connectionId, transactionId: 2, infoHash, peerId: randomBytes(20), port: 9000 }));
        assert.equal(reply.readUInt32BE(0), 1, 'an announce reply, also for the refused peer');
      }
      assert.deepEqual(await scrapeCounts(gw.httpPort, infoHash), { complete: 0, incomplete: 5 });
      text = await metricsText(gw.httpPort);
      assert.equal(metricValue(text, 'tracker_peers_refused_total{reason="swarm-full"}'), 1);
    } finally {
      await gw.close();
    }
  });

  it('keeps the memory store to TRACKER_MEMORY_MAX_SWARMS, new swarms answered', async () => {
    const gw = await createGateway(config({ TRACKER_MEMORY_MAX_SWARMS: '2', TRACKER_SWARM_RETENTION: '3600' }));
    try {
      const hashes = [randomBytes(20), randomBytes(20), randomBytes(20)];
      const first = randomBytes(20);
      for (const infoHash of hashes) {
        const r = await httpGet(gw.httpPort, announcePath({ infoHash, peerId: first, port: 7000 }));
        assert.equal(r.status, 200);
      }
      assert.deepEqual(await scrapeCounts(gw.httpPort, hashes[2]), { complete: 0, incomplete: 0 });
      let text = await metricsText(gw.httpPort);
      assert.equal(metricValue(text, 'tracker_peers_refused_total{reason="store-full"}'), 1);
      assert.equal(metricValue(text, 'tracker_swarms_shed_total'), 0);
      // a swarm kept only for its completed count gives way to a new one
      await httpGet(gw.httpPort, announcePath({ infoHash: hashes[0], peerId: first, port: 7000, left: 0, event: 'completed' }));
      await httpGet(gw.httpPort, announcePath({ infoHash: hashes[0], peerId: first, port: 7000, left: 0, event: 'stopped' }));
      await httpGet(gw.httpPort, announcePath({ infoHash: hashes[2], peerId: randomBytes(20), port: 7002 }));
      assert.deepEqual(await scrapeCounts(gw.httpPort, hashes[2]), { complete: 0, incomplete: 1 });
      text = await metricsText(gw.httpPort);
      assert.equal(metricValue(text, 'tracker_swarms_shed_total'), 1);
    } finally {
      await gw.close();
    }
  });
});
