import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { bdecode, type BValue } from '@peertracker/protocol';
import type { SwarmStore } from '@peertracker/tracker';
import { createGateway, type Gateway } from './app';
import { loadConfig } from './config';
import { withDeadline } from './store';
import {
  announcePath,
  httpGet,
  percentEncode,
  udpAnnouncePacket,
  udpConnect,
  udpConnectPacket,
  udpExchange,
  udpScrapePacket,
} from './testing/clients';

const SECRET = 'test-secret-shared-by-every-replica-0123456789';

function config(extra: Record<string, string> = {}) {
  return loadConfig({
    TRACKER_HOST: '::',
    TRACKER_HTTP_PORT: '0',
    TRACKER_UDP_PORT: '0',
    TRACKER_CONNECTION_SECRET: SECRET,
    TRACKER_ANNOUNCE_INTERVAL: '120',
    TRACKER_MIN_INTERVAL: '30',
    TRACKER_INTERVAL_JITTER: '0',
    TRACKER_MAX_NUMWANT: '60',
    ...extra,
  });
}

function dict(body: Buffer): Map<string, BValue> {
  const value = bdecode(body);
  assert.ok(value instanceof Map, `not a dictionary: ${body.toString('latin1')}`);
  return value as Map<string, BValue>;
}

function failureOf(body: Buffer): string | undefined {
  const reason = dict(body).get('failure reason');
  return reason === undefined ? undefined : (reason as Buffer).toString();
}

const peerId = (n: number) => Buffer.from(`-PT0001-${String(n).padStart(12, '0')}`);

describe('gateway over HTTP', () => {
  let gw: Gateway;
  before(async () => {
    gw = await createGateway(config({ TRACKER_TRUSTED_PROXIES: '127.0.0.2' }));
  });
  after(() => gw.close());

  it('introduces a leecher to a seeder with compact IPv4 peers', async () => {
    // Bytes that a UTF-8 query parser would corrupt: NUL, high bytes, '%', '&', '=', '+'.
    const infoHash = Buffer.from('00ff80252b263d7e2001a0c3e9fe0102030405ff', 'hex');
    const seed = await httpGet(gw.httpPort, announcePath({ infoHash, peerId: peerId(1), port: 51413, left: 0, event: 'started' }));
    assert.equal(seed.status, 200);
    const first = dict(seed.body);
    assert.equal(first.get('failure reason'), undefined);
    assert.equal(first.get('complete'), 1);
    assert.equal(first.get('incomplete'), 0);
    assert.equal(first.get('interval'), 120);
    assert.equal(first.get('min interval'), 30);
    assert.equal((first.get('peers') as Buffer).length, 0);

    const leech = dict((await httpGet(gw.httpPort, announcePath({ infoHash, peerId: peerId(2), port: 6881, event: 'started' }))).body);
    assert.equal(leech.get('complete'), 1);
    assert.equal(leech.get('incomplete'), 1);
    assert.equal((leech.get('peers') as Buffer).toString('hex'), '7f000001' + (51413).toString(16).padStart(4, '0'));

    const scrape = dict((await httpGet(gw.httpPort, `/scrape?info_hash=${percentEncode(infoHash)}`)).body);
    const files = scrape.get('files') as Map<string, BValue>;
    const entry = files.get(infoHash.toString('latin1')) as Map<string, BValue>;
    assert.deepEqual(Object.fromEntries(entry), { complete: 1, downloaded: 0, incomplete: 1 });
  });

  it('answers dictionary peers with and without peer id', async () => {
    const infoHash = randomBytes(20);
    await httpGet(gw.httpPort, announcePath({ infoHash, peerId: peerId(1), port: 7001, left: 0 }));
    const withIds = dict((await httpGet(gw.httpPort, announcePath({ infoHash, peerId: peerId(2), port: 7002, compact: 0 }))).body);
    const peers = withIds.get('peers') as Array<Map<string, BValue>>;
    assert.equal(peers.length, 1);
    assert.equal((peers[0].get('ip') as Buffer).toString(), '127.0.0.1');
    assert.equal(peers[0].get('port'), 7001);
    assert.deepEqual(peers[0].get('peer id'), peerId(1));
    const noIds = dict(
      (await httpGet(gw.httpPort, announcePath({ infoHash, peerId: peerId(2), port: 7002, compact: 0, noPeerId: true }))).body,
    );
    assert.equal((noIds.get('peers') as Array<Map<string, BValue>>)[0].get('peer id'), undefined);
  });

  it('keeps IPv6 peers apart and answers them in peers6', async () => {
    const infoHash = randomBytes(20);
    await httpGet(gw.httpPort, announcePath({ infoHash, peerId: peerId(1), port: 7001, left: 0 }));
    await httpGet(gw.httpPort, announcePath({ infoHash, peerId: peerId(3), port: 7003, left: 0 }), { host: '::1' });
    const v6 = dict((await httpGet(gw.httpPort, announcePath({ infoHash, peerId: peerId(4), port: 7004 }), { host: '::1' })).body);
    assert.equal(v6.get('peers'), undefined);
    assert.equal((v6.get('peers6') as Buffer).toString('hex'), '0'.repeat(31) + '1' + (7003).toString(16).padStart(4, '0'));
    assert.equal(v6.get('complete'), 2, 'counts cover both families');
  });

  it('stops returning a peer that sent event=stopped', async () => {
    const infoHash = randomBytes(20);
    await httpGet(gw.httpPort, announcePath({ infoHash, peerId: peerId(1), port: 7001, left: 0 }));
    await httpGet(gw.httpPort, announcePath({ infoHash, peerId: peerId(1), port: 7001, left: 0, event: 'stopped' }));
    const r = dict((await httpGet(gw.httpPort, announcePath({ infoHash, peerId: peerId(2), port: 7002 }))).body);
    assert.equal((r.get('peers') as Buffer).length, 0);
    assert.equal(r.get('complete'), 0);
  });

  it('clamps numwant to the configured maximum', async () => {
    const infoHash = randomBytes(20);
    for (let i = 0; i < 80; i++) {
      await httpGet(gw.httpPort, announcePath({ infoHash, peerId: peerId(100 + i), port: 10000 + i, left: 0, numwant: 0 }));
    }
    const r = dict((await httpGet(gw.httpPort, announcePath({ infoHash, peerId: peerId(1), port: 7001, numwant: 1000000 }))).body);
    assert.equal((r.get('peers') as Buffer).length, 60 * 6);
  });

  it('believes X-Forwarded-For only from trusted proxies', async () => {
    const infoHash = randomBytes(20);
    const forwarded = { 'X-Forwarded-For': '198.51.100.7' };
    await httpGet(gw.httpPort, announcePath({ infoHash, peerId: peerId(1), port: 7001, left: 0 }), {
      localAddress: '127.0.0.2',
      headers: forwarded,
    });
    await httpGet(gw.httpPort, announcePath({ infoHash, peerId: peerId(2), port: 7002, left: 0 }), { headers: forwarded });
    const r = dict((await httpGet(gw.httpPort, announcePath({ infoHash, peerId: peerId(3), port: 7003, numwant: 10 }))).body);
    const peers = (r.get('peers') as Buffer).toString('hex').match(/.{12}/g)?.sort();
    assert.deepEqual(peers, ['7f0000011b5a', 'c63364071b59'].sort());
  });

  const refusals: Array<[string, RegExp]> = [
    ['/announce', /info_hash/],
    [`/announce?info_hash=${'%41'.repeat(19)}&peer_id=${'%42'.repeat(20)}&port=1&left=0`, /info_hash/],
    [`/announce?info_hash=${'%41'.repeat(20)}&peer_id=${'%42'.repeat(21)}&port=1&left=0`, /peer_id/],
    [`/announce?info_hash=${'%41'.repeat(20)}&peer_id=${'%42'.repeat(20)}&port=70000&left=0`, /port/],
    [`/announce?info_hash=${'%41'.repeat(20)}&peer_id=${'%42'.repeat(20)}&port=1&left=-1`, /left/],
    [`/announce?info_hash=${'%41'.repeat(20)}&peer_id=${'%42'.repeat(20)}&port=1&left=0&event=exploded`, /event/],
    [`/announce?info_hash=${'%41'.repeat(20)}&peer_id=${'%42'.repeat(20)}&port=1&left=0&numwant=lots`, /numwant/],
    [`/announce?info_hash=%zz${'%41'.repeat(19)}&peer_id=${'%42'.repeat(20)}&port=1&left=0`, /info_hash/],
    [`/announce?info_hash=${'%41'.repeat(20)}&x=${'y'.repeat(9000)}`, /too long/],
    ['/scrape', /full scrape is disabled/],
    [`/scrape?info_hash=${'%41'.repeat(21)}`, /info_hash/],
    [`/scrape?${Array.from({ length: 75 }, () => `info_hash=${'%41'.repeat(20)}`).join('&')}`, /too many/],
  ];
  for (const [path, reason] of refusals) {
    it(`refuses ${path.slice(0, 70)}… with a failure reason`, async () => {
      const r = await httpGet(gw.httpPort, path);
      assert.equal(r.status, 200);
      assert.match(failureOf(r.body) ?? '(no failure reason)', reason);
    });
  }

  it('serves health and Prometheus metrics through express, 404 elsewhere', async () => {
    const health = await httpGet(gw.httpPort, '/health');
    assert.equal(health.status, 200);
    assert.deepEqual(JSON.parse(health.body.toString()), { status: 'ok' });
    assert.equal((await httpGet(gw.httpPort, '/health/live')).status, 200);
    const metrics = await httpGet(gw.httpPort, '/metrics');
    assert.equal(metrics.status, 200);
    const text = metrics.body.toString();
    assert.match(text, /^tracker_announces_total\{transport="http",family="4"\} [1-9]\d*$/m);
    assert.match(text, /^tracker_client_errors_total\{transport="http"\} [1-9]\d*$/m);
    assert.match(text, /^tracker_peers [1-9]\d*$/m);
    assert.equal((await httpGet(gw.httpPort, '/nothing')).status, 404);
  });

  it('serves /metrics only on TRACKER_METRICS_PORT when it is set, and keeps it open through a shutdown until the end', async () => {
    const other = await createGateway(config({ TRACKER_METRICS_PORT: '0' }));
    try {
      assert.ok(other.metricsPort !== undefined && other.metricsPort !== other.httpPort);
      await httpGet(other.httpPort, `/announce?info_hash=${'%AA'.repeat(20)}&peer_id=${'%BB'.repeat(20)}&port=6881&left=1&compact=1`);
      assert.equal((await httpGet(other.httpPort, '/metrics')).status, 404);
      assert.equal((await httpGet(other.httpPort, '/health')).status, 200);
      const m = await httpGet(other.metricsPort!, '/metrics');
      assert.equal(m.status, 200);
      assert.match(m.body.toString(), /^tracker_announces_total\{transport="http",family="\d"\} 1$/m);
      assert.equal((await httpGet(other.metricsPort!, '/health')).status, 200);
      // draining: the metrics port still answers, with the 503 a probe of it would read
      const done = other.shutdown({ delayMs: 300, timeoutMs: 2000 });
      await new Promise((r) => setTimeout(r, 100));
      assert.equal((await httpGet(other.metricsPort!, '/health')).status, 503);
      assert.equal((await httpGet(other.metricsPort!, '/metrics')).status, 200);
      assert.equal(await done, true);
      await assert.rejects(httpGet(other.metricsPort!, '/metrics'));
    } finally {
      await other.close().catch(() => {});
    }
    assert.throws(() => config({ TRACKER_HTTP_PORT: '7000', TRACKER_METRICS_PORT: '7000' }), /TRACKER_METRICS_PORT \(7000\) must differ from TRACKER_HTTP_PORT/);
  });

  it('answers malformed HTTP with 400 and keeps serving', async () => {
    const { connect } = await import('node:net');
    const reply = await new Promise<string>((resolve) => {
      const s = connect(gw.httpPort, '127.0.0.1', () => s.write('GARBAGE\x00\x01 / NOPE\r\n\r\n'));
      let data = '';
      s.on('data', (d) => (data += d.toString()));
      s.on('close', () => resolve(data));
      s.on('error', () => resolve(data));
    });
    assert.match(reply, /^HTTP\/1\.1 400/);
    assert.equal((await httpGet(gw.httpPort, '/health')).status, 200);
  });
});

describe('gateway whose store fails', () => {
  /** One HTTP and one UDP announce through gw; both must get the tracker's failure answer. */
  async function announceBoth(gw: Gateway): Promise<void> {
    const r = await httpGet(gw.httpPort, announcePath({ infoHash: randomBytes(20), peerId: peerId(1), port: 7001 }));
    assert.match(failureOf(r.body) ?? '', /temporarily unavailable/);
    const cid = await udpConnect(gw.udpPort);
    const u = await udpExchange(
      gw.udpPort,
      udpAnnouncePacket({ connectionId: cid, transactionId: 11, infoHash: randomBytes(20), peerId: peerId(1), port: 7001 }),
    );
    assert.deepEqual([u?.readUInt32BE(0), u?.readUInt32BE(4)], [3, 11]);
  }

  it('answers failure reasons and BEP 15 errors, counts them by kind on /metrics, and keeps running', async () => {
    // A store whose every call fails, as a Redis store does while Redis is unreachable, wrapped
    // as openStore wraps the Redis store.
    const broken = () => Promise.reject(new Error('store unavailable'));
    const store: SwarmStore = { announce: broken, scrape: broken, scrapeAll: broken, stats: broken, close: async () => {} };
    const gw = await createGateway(config(), { store: withDeadline(store, 1000) });
    try {
      await announceBoth(gw);
      // /metrics still answers: the store's counts are unknown, the failures are counted
      const m = await httpGet(gw.httpPort, '/metrics');
      assert.equal(m.status, 200);
      const text = m.body.toString();
      // prom-client writes NaN as "Nan"; Prometheus reads it either way
      assert.match(text, /^tracker_peers nan$/im);
      assert.match(text, /^tracker_swarms nan$/im);
      assert.match(text, /^tracker_server_errors_total\{transport="http"\} 1$/m);
      assert.match(text, /^tracker_server_errors_total\{transport="udp"\} 1$/m);
      assert.match(text, /^tracker_store_failures_total\{kind="error"\} 2$/m);
      assert.match(text, /^tracker_store_failures_total\{kind="timeout"\} 0$/m);
      assert.equal((await httpGet(gw.httpPort, '/health')).status, 200);
    } finally {
      await gw.close();
    }
  });

  it('counts store calls that outlast the deadline as timeouts', async () => {
    const never = () => new Promise<never>(() => {});
    const store: SwarmStore = { announce: never, scrape: never, scrapeAll: never, stats: async () => ({ peers: 3, swarms: 1 }), close: async () => {} };
    const gw = await createGateway(config(), { store: withDeadline(store, 100) });
    try {
      await announceBoth(gw);
      const text = (await httpGet(gw.httpPort, '/metrics')).body.toString();
      assert.match(text, /^tracker_store_failures_total\{kind="timeout"\} 2$/m);
      assert.match(text, /^tracker_store_failures_total\{kind="error"\} 0$/m);
      assert.match(text, /^tracker_peers 3$/m);
    } finally {
      await gw.close();
    }
  });
});

describe('gateway with full scrape on', () => {
  it('lists every swarm on /scrape without info_hash', async () => {
    const gw = await createGateway(config({ TRACKER_FULL_SCRAPE: 'true' }));
    try {
      const a = randomBytes(20);
      const b = randomBytes(20);
      await httpGet(gw.httpPort, announcePath({ infoHash: a, peerId: peerId(1), port: 7001, left: 0 }));
      await httpGet(gw.httpPort, announcePath({ infoHash: b, peerId: peerId(1), port: 7001 }));
      const files = dict((await httpGet(gw.httpPort, '/scrape')).body).get('files') as Map<string, BValue>;
      assert.deepEqual([...files.keys()].sort(), [a.toString('latin1'), b.toString('latin1')].sort());
    } finally {
      await gw.close();
    }
  });
});

describe('gateway over UDP (BEP 15)', () => {
  let gw: Gateway;
  before(async () => {
    gw = await createGateway(config());
  });
  after(() => gw.close());

  it('connects, announces and scrapes', async () => {
    const cid = await udpConnect(gw.udpPort);
    const infoHash = randomBytes(20);
    const seed = await udpExchange(
      gw.udpPort,
      udpAnnouncePacket({ connectionId: cid, transactionId: 7, infoHash, peerId: peerId(1), port: 51413, left: 0n, event: 2 }),
    );
    assert.ok(seed);
    assert.deepEqual([seed.readUInt32BE(0), seed.readUInt32BE(4), seed.readUInt32BE(8)], [1, 7, 120]);
    const leech = await udpExchange(
      gw.udpPort,
      udpAnnouncePacket({ connectionId: cid, transactionId: 8, infoHash, peerId: peerId(2), port: 6881, event: 2 }),
    );
    assert.ok(leech);
    assert.deepEqual([leech.readUInt32BE(0), leech.readUInt32BE(4), leech.readUInt32BE(12), leech.readUInt32BE(16)], [1, 8, 1, 1]);
    assert.equal(leech.subarray(20).toString('hex'), '7f000001c8d5');

    const scrape = await udpExchange(gw.udpPort, udpScrapePacket(cid, 9, [infoHash, randomBytes(20)]));
    assert.ok(scrape);
    assert.equal(scrape.length, 8 + 24);
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5, 6, 7].map((i) => scrape.readUInt32BE(i * 4)),
      [2, 9, 1, 0, 1, 0, 0, 0],
    );
  });

  it('answers IPv6 clients with 18-byte peers', async () => {
    const cid = await udpConnect(gw.udpPort, '::1');
    const infoHash = randomBytes(20);
    await udpExchange(
      gw.udpPort,
      udpAnnouncePacket({ connectionId: cid, transactionId: 1, infoHash, peerId: peerId(1), port: 7001, left: 0n }),
      '::1',
    );
    const r = await udpExchange(
      gw.udpPort,
      udpAnnouncePacket({ connectionId: cid, transactionId: 2, infoHash, peerId: peerId(2), port: 7002 }),
      '::1',
    );
    assert.ok(r);
    assert.equal(r.subarray(20).toString('hex'), '0'.repeat(31) + '1' + '1b59');
  });

  it('accepts a connection ID issued by another replica with the same secret', async () => {
    const other = await createGateway(config());
    try {
      const cid = await udpConnect(other.udpPort);
      const r = await udpExchange(
        gw.udpPort,
        udpAnnouncePacket({ connectionId: cid, transactionId: 3, infoHash: randomBytes(20), peerId: peerId(1), port: 7001 }),
      );
      assert.equal(r?.readUInt32BE(0), 1);
    } finally {
      await other.close();
    }
  });

  it('drops announces without a valid connection ID and never answers with more bytes', async () => {
    const forged = udpAnnouncePacket({
      connectionId: randomBytes(8),
      transactionId: 4,
      infoHash: randomBytes(20),
      peerId: peerId(1),
      port: 7001,
    });
    assert.equal(await udpExchange(gw.udpPort, forged, '127.0.0.1', 300), null);
    assert.equal(await udpExchange(gw.udpPort, Buffer.from('garbage'), '127.0.0.1', 300), null);
    const badProtocol = udpConnectPacket(5);
    badProtocol[0] ^= 1;
    assert.equal(await udpExchange(gw.udpPort, badProtocol, '127.0.0.1', 300), null);
    const connect = await udpExchange(gw.udpPort, udpConnectPacket(6));
    assert.ok(connect && connect.length <= 16);
  });

  it('answers a BEP 15 error to a bad request that carries a valid connection ID', async () => {
    const cid = await udpConnect(gw.udpPort);
    const zeroPort = udpAnnouncePacket({ connectionId: cid, transactionId: 10, infoHash: randomBytes(20), peerId: peerId(1), port: 0 });
    const r = await udpExchange(gw.udpPort, zeroPort);
    assert.ok(r);
    assert.deepEqual([r.readUInt32BE(0), r.readUInt32BE(4)], [3, 10]);
    assert.match(r.subarray(8).toString(), /port/);
  });
});
