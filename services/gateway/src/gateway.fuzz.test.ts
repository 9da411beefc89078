import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import { bdecode } from '@peertracker/protocol';
import { createGateway, type Gateway } from './app';
import { loadConfig } from './config';
import { httpGet, udpAnnouncePacket, udpConnect, udpScrapePacket } from './testing/clients';

/**
 * Bounded random-input runs against a live gateway: every HTTP reply must be a bencoded
 * dictionary, UDP must never answer a packet without a valid connection ID with more bytes than it
 * sent, and the gateway must still be healthy afterwards. Seeded, so a failure can be replayed
 * with FUZZ_SEED.
 */
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
const HTTP_CASES = Number(process.env.FUZZ_HTTP_CASES ?? 1500);
const UDP_CASES = Number(process.env.FUZZ_UDP_CASES ?? 6000);

function rng(seed: number): () => number {
  // mulberry32: tiny, seeded, good enough to pick test inputs
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PARAMS = ['info_hash', 'peer_id', 'port', 'uploaded', 'downloaded', 'left', 'event', 'compact', 'numwant', 'key', 'no_peer_id', 'trackerid', 'ip'];
const VALUES = ['', '0', '1', '-1', '65535', '65536', '99999999999999999999999', 'started', 'stopped', 'completed', 'paused', '%', '%4', '%zz', '+', '&', '=', 'NaN', '1e3', '0x10'];

describe(`gateway fuzz (FUZZ_SEED=${SEED})`, () => {
  let gw: Gateway;
  const random = rng(SEED);
  const int = (n: number) => Math.floor(random() * n);
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
  const pct = (b: Buffer) => [...b].map((x) => '%' + x.toString(16).padStart(2, '0')).join('');

  before(async () => {
    gw = await createGateway(
      loadConfig({
        TRACKER_HOST: '127.0.0.1',
        TRACKER_HTTP_PORT: '0',
        TRACKER_UDP_PORT: '0',
        TRACKER_CONNECTION_SECRET: 'fuzz-secret-0123456789-0123456789',
        TRACKER_FULL_SCRAPE: 'true',
      }),
    );
  });
  after(() => gw.close());

  it('answers every random HTTP request with a bencoded dictionary', async () => {
    for (let i = 0; i < HTTP_CASES; i++) {
      const parts: string[] = [];
      for (let p = int(12); p > 0; p--) {
        const name = random() < 0.9 ? PARAMS[int(PARAMS.length)] : pct(bytes(int(4)));
        const roll = random();
        const value =
          roll < 0.4 ? pct(bytes(random() < 0.7 ? 20 : int(40))) : roll < 0.8 ? VALUES[int(VALUES.length)] : String(int(1 << 30));
        parts.push(`${name}=${value}`);
      }
      const path = `${random() < 0.8 ? '/announce' : '/scrape'}?${parts.join('&')}`;
      const reply = await httpGet(gw.httpPort, path);
      assert.equal(reply.status, 200, path);
      assert.ok(bdecode(reply.body) instanceof Map, `${path} → ${reply.body.toString('latin1')}`);
    }
  });

  it('stays silent or small on random UDP, and answers valid-ID garbage with errors only', async () => {
    const cid = await udpConnect(gw.udpPort);
    const socket = createSocket('udp4');
    const replies: Array<{ size: number; action: number }> = [];
    socket.on('message', (m) => replies.push({ size: m.length, action: m.length >= 4 ? m.readUInt32BE(0) : -1 }));
    await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
    let sentWithoutId = 0;
    let largestWithoutId = 0;
    for (let i = 0; i < UDP_CASES; i++) {
      let packet: Buffer;
      const roll = random();
      if (roll < 0.5) {
        packet = bytes(int(1600));
        if (packet.length >= 8 && packet.subarray(0, 8).equals(cid)) packet[0] ^= 1;
        sentWithoutId++;
        largestWithoutId = Math.max(largestWithoutId, packet.length);
      } else {
        // a valid connection ID followed by mutated announce/scrape bodies, truncated at random
        const base =
          random() < 0.7
            ? udpAnnouncePacket({ connectionId: cid, transactionId: i, infoHash: bytes(20), peerId: bytes(20), port: int(65536) })
            : udpScrapePacket(cid, i, Array.from({ length: int(100) }, () => bytes(20)));
        for (let m = int(4); m > 0; m--) base[8 + int(base.length - 8)] = int(256);
        packet = base.subarray(0, Math.max(8, int(base.length + 20)));
      }
      socket.send(packet, gw.udpPort, '127.0.0.1');
      if (i % 200 === 0) await new Promise((r) => setTimeout(r, 5));
    }
    await new Promise((r) => setTimeout(r, 300));
    socket.close();
    // Every reply is a known action; connect replies (16 bytes) are the only answer a packet
    // without a valid ID can earn, and only when it was a well-formed connect request.
    for (const r of replies) assert.ok([0, 1, 2, 3].includes(r.action), `unknown reply action ${r.action}`);
    assert.ok(replies.some((r) => r.action === 1 || r.action === 2), 'valid requests were answered');
    assert.ok(replies.some((r) => r.action === 3), 'bad requests with a valid ID got BEP 15 errors');
    assert.ok(sentWithoutId > 0 && largestWithoutId > 16);
    const health = await httpGet(gw.httpPort, '/health');
    assert.equal(health.status, 200);
  });

  it('keeps its memory bounded under repeated bad input', async () => {
    const path = `/announce?info_hash=${'%41'.repeat(19)}&peer_id=x&port=1`;
    for (let i = 0; i < 300; i++) await httpGet(gw.httpPort, path);
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < 3000; i++) await httpGet(gw.httpPort, path);
    const grown = process.memoryUsage().heapUsed - before;
    assert.ok(grown < 32 * 1024 * 1024, `heap grew by ${grown} bytes over 3000 refused requests`);
  });
});
