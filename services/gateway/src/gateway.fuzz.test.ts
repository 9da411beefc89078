import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { bdecode } from '@peertracker/protocol';
import { createGateway, type Gateway } from './app';
import { loadConfig } from './config';
import { httpGet, udpAnnouncePacket, udpConnect, udpConnectPacket, udpScrapePacket } from './testing/clients';

/**
 * Bounded random-input runs against a live gateway: every HTTP reply must be a bencoded
 * dictionary; over UDP a source without a valid connection ID gets nothing but one 16-byte reply
 * per connect request (every reply counted, with its bytes); the gateway must still be healthy
 * afterwards and its live heap bounded. Seeded, so a failure can be replayed with FUZZ_SEED.
 * scripts/mutation-check.mjs removes the connection-ID guards one by one and expects this test to
 * fail each time.
 */
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
const HTTP_CASES = Number(process.env.FUZZ_HTTP_CASES ?? 1500);
const UDP_CASES = Number(process.env.FUZZ_UDP_CASES ?? 6000);

/** A UDP socket bound to `address` (any 127/8 address is loopback on Linux), keeping what it receives. */
async function udpSocket(address: string): Promise<{ socket: Socket; replies: Buffer[] }> {
  const socket = createSocket('udp4');
  const replies: Buffer[] = [];
  socket.on('message', (m) => replies.push(m));
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, address, () => resolve());
  });
  return { socket, replies };
}

const REFUSED_REQUESTS = 3000;
/** 1 MiB over 3000 requests: anything kept per request beyond ~350 bytes shows. */
const HEAP_GROWTH_LIMIT = 1024 * 1024;

/**
 * Bytes of live heap: garbage is collected first, or the figure is mostly garbage not yet
 * collected. gc() exists under --expose-gc; otherwise the flag is set at run time and gc is taken
 * from a fresh context, where V8 installs it.
 */
function liveHeap(): number {
  let gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

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

  it('answers a source without a connection ID only with connect replies, byte for byte', async () => {
    // An ID is bound to the IP it was issued to, so sockets on other loopback addresses stand in
    // for spoofed sources. The stranger never connects: nothing it sends may earn a reply. The
    // connector sends connect requests among the same forged packets: only those may be answered,
    // each once, with 16 bytes. Forged IDs: random, random with the current window byte, and one
    // really issued, but to another IP.
    const issued = await udpConnect(gw.udpPort);
    const stranger = await udpSocket('127.0.0.2');
    const connector = await udpSocket('127.0.0.3');
    const kinds = ['garbage', 'announce', 'scrape', 'bad announce', 'bad scrape', 'unknown action'] as const;
    type Kind = (typeof kinds)[number] | 'connect';
    /** transaction id → what was sent with it, per socket */
    const sent = { stranger: new Map<number, { kind: Kind; size: number }>(), connector: new Map<number, { kind: Kind; size: number }>() };
    const sentKinds = new Map<string, number>();
    let nextTid = 1;
    const forgedId = (): Buffer => {
      const roll = int(3);
      if (roll === 0) return Buffer.from(issued);
      const id = bytes(8);
      if (roll === 1) id[0] = issued[0];
      if (id.equals(issued)) id[7] ^= 1;
      return id;
    };
    const forged = (kind: (typeof kinds)[number], tid: number): Buffer => {
      const id = forgedId();
      if (kind === 'garbage') return bytes(int(1600));
      if (kind === 'announce' || kind === 'bad announce') {
        const p = udpAnnouncePacket({ connectionId: id, transactionId: tid, infoHash: bytes(20), peerId: bytes(20), port: 1 + int(65535) });
        if (kind === 'announce') return p;
        // each is answerable with a BEP 15 error when the ID is valid: port 0, an unknown event, too short
        const bad = int(3);
        if (bad === 0) p.writeUInt16BE(0, 96);
        else if (bad === 1) p.writeUInt32BE(5 + int(1000), 80);
        else return p.subarray(0, 16 + int(82));
        return p;
      }
      if (kind === 'scrape') return udpScrapePacket(id, tid, Array.from({ length: 1 + int(70) }, () => bytes(20)));
      if (kind === 'bad scrape') return udpScrapePacket(id, tid, Array.from({ length: random() < 0.5 ? 0 : 75 + int(20) }, () => bytes(20)));
      const p = Buffer.concat([id, bytes(8 + int(100))]);
      p.writeUInt32BE(4 + int(1000), 8);
      p.writeUInt32BE(tid, 12);
      return p;
    };
    const send = (from: 'stranger' | 'connector', packet: Buffer, kind: Kind) => {
      // garbage carries a random transaction id, which must not shadow a real one
      if (kind !== 'garbage') sent[from].set(packet.readUInt32BE(12), { kind, size: packet.length });
      sentKinds.set(`${from} ${kind}`, (sentKinds.get(`${from} ${kind}`) ?? 0) + 1);
      (from === 'stranger' ? stranger : connector).socket.send(packet, gw.udpPort, '127.0.0.1');
    };
    for (let i = 0; i < UDP_CASES; i++) {
      const from = random() < 0.5 ? 'stranger' : 'connector';
      const tid = nextTid++;
      if (from === 'connector' && random() < 0.25) {
        // a connect request, sometimes with trailing bytes (still a connect)
        const p = Buffer.concat([udpConnectPacket(tid), bytes(random() < 0.8 ? 0 : int(100))]);
        send(from, p, 'connect');
      } else {
        const kind = kinds[int(kinds.length)];
        send(from, forged(kind, tid), kind);
      }
      if (i % 100 === 0) await new Promise((r) => setTimeout(r, 5));
    }
    await new Promise((r) => setTimeout(r, 300));
    stranger.socket.close();
    connector.socket.close();

    for (const from of ['stranger', 'connector'] as const) {
      for (const kind of kinds) assert.ok((sentKinds.get(`${from} ${kind}`) ?? 0) > 0, `the ${from} sent no ${kind}`);
    }
    const describeReply = (from: 'stranger' | 'connector', r: Buffer) => {
      const tid = r.length >= 8 ? r.readUInt32BE(4) : -1;
      const to = sent[from].get(tid);
      return `${r.length}-byte reply (action ${r.length >= 4 ? r.readUInt32BE(0) : '?'}) to ${to ? `a ${to.size}-byte ${to.kind}` : 'an unknown packet'}`;
    };
    const strangerBytes = stranger.replies.reduce((n, r) => n + r.length, 0);
    assert.deepEqual(
      stranger.replies.map((r) => describeReply('stranger', r)),
      [],
      `a source that never connected got ${stranger.replies.length} replies, ${strangerBytes} bytes (FUZZ_SEED=${SEED})`,
    );
    const answered = new Set<number>();
    const connects = [...sent.connector.values()].filter((p) => p.kind === 'connect');
    let connectBytes = 0;
    for (const r of connector.replies) {
      const tid = r.length >= 8 ? r.readUInt32BE(4) : -1;
      const to = sent.connector.get(tid);
      assert.ok(
        r.length === 16 && r.readUInt32BE(0) === 0 && to?.kind === 'connect' && !answered.has(tid),
        `only one 16-byte connect reply per connect request: ${describeReply('connector', r)} (FUZZ_SEED=${SEED})`,
      );
      answered.add(tid);
      connectBytes += to.size;
    }
    const replyBytes = connector.replies.reduce((n, r) => n + r.length, 0);
    assert.ok(replyBytes <= connectBytes, `${replyBytes} reply bytes for ${connectBytes} bytes of connect requests`);
    // some answered shows the connector hears replies at all (a connect rate limit may drop others)
    assert.ok(answered.size > 0, `none of ${connects.length} connect requests answered`);
    assert.equal((await httpGet(gw.httpPort, '/health')).status, 200);
  });

  it('keeps its memory bounded under repeated bad input', async () => {
    const path = `/announce?info_hash=${'%41'.repeat(19)}&peer_id=x&port=1`;
    for (let i = 0; i < 300; i++) await httpGet(gw.httpPort, path);
    const before = liveHeap();
    for (let i = 0; i < REFUSED_REQUESTS; i++) await httpGet(gw.httpPort, path);
    const grown = liveHeap() - before;
    assert.ok(grown < HEAP_GROWTH_LIMIT, `live heap grew by ${grown} bytes over ${REFUSED_REQUESTS} refused requests`);
  });
});
