// Memory per peer of the in-memory swarm store (packages/tracker, MemoryStore).
//
//   node --expose-gc bench/heap-per-peer.mjs [--json] [--sizes 1000000x20000,200000x4000]
//
// For each size (peers x torrents): peer i joins torrent i % torrents with event=started. The
// baseline is taken after the module is loaded and the request buffers (reused for every
// announce) are allocated, then every peer is announced, and after a full GC the figure is
// (heapUsed + arrayBuffers) delta / peers. A sanity check afterwards reads a few swarms back, to
// make sure the store copied what it keeps (if it kept our reused buffers, the count would be low
// and the swarms corrupted; the figure is then flagged as wrong).

import { fullGc, loadTracker, memory } from './heap.mjs';
import { createHash } from 'node:crypto';

const jsonOut = process.argv.includes('--json');
const sizesArg = process.argv.includes('--sizes') ? process.argv[process.argv.indexOf('--sizes') + 1] : null;
const sizes = (sizesArg ?? '1000000x20000,200000x4000').split(',').map((s) => {
  const [peers, torrents] = s.split('x').map(Number);
  if (!(peers > 0 && torrents > 0)) die(`bad --sizes entry ${JSON.stringify(s)} (want PEERSxTORRENTS)`);
  return { peers, torrents };
});

function die(message) {
  process.stderr.write(`heap-per-peer: ${message}\n`);
  process.exit(1);
}

const mod = await loadTracker('bench/heap-per-peer.mjs');
const MemoryStore = mod.MemoryStore ?? mod.default?.MemoryStore;
if (typeof MemoryStore !== 'function') die('packages/tracker/dist/index.js does not export MemoryStore');

const PEER_LIFETIME_MS = 3_600_000;


function writePeerId(buf, i) {
  buf.write('-PT0001-', 0, 'latin1');
  let n = i;
  for (let k = 19; k >= 8; k--) {
    buf[k] = 48 + (n % 10);
    n = Math.floor(n / 10);
  }
}

function writeAddr(buf, i) {
  buf.writeUInt32BE((0x0a000000 + i) >>> 0, 0); // 10.x.y.z, distinct per peer
  buf.writeUInt16BE(10000 + (i % 50000), 4);
}

async function measure({ peers, torrents }) {
  // everything reused is allocated before the baseline
  const hashes = Buffer.alloc(20 * torrents);
  for (let t = 0; t < torrents; t++) createHash('sha1').update(`torrent-${t}`).digest().copy(hashes, 20 * t);
  const req = {
    infoHash: Buffer.alloc(20),
    peerId: Buffer.alloc(20),
    family: 4,
    addr: Buffer.alloc(6),
    seeder: false,
    event: 'started',
    numWant: 0,
    withPeerIds: false,
    now: Date.now(),
    peerLifetimeMs: PEER_LIFETIME_MS,
  };
  await fullGc();
  const before = memory();
  let store = new MemoryStore();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < peers; i++) {
    hashes.copy(req.infoHash, 0, 20 * (i % torrents), 20 * (i % torrents) + 20);
    writePeerId(req.peerId, i);
    writeAddr(req.addr, i);
    req.seeder = i % 3 === 0;
    await store.announce(req);
  }
  const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;
  await fullGc();
  const after = memory();
  const stats = await store.stats();

  // Read a few swarms back: a leecher re-announcing must see distinct peers, which fails if the
  // store kept references to our reused buffers instead of copying them.
  const problems = [];
  if (stats.peers !== peers) problems.push(`stats() counts ${stats.peers} peers, announced ${peers}`);
  if (stats.swarms !== torrents) problems.push(`stats() counts ${stats.swarms} swarms, announced ${torrents}`);
  for (let t = 0; t < Math.min(torrents, 10); t++) {
    const i = t + torrents; // a leecher (i % 3 !== 0 for most t) in torrent t
    const probe = {
      infoHash: Buffer.from(hashes.subarray(20 * t, 20 * t + 20)),
      peerId: Buffer.alloc(20),
      family: 4,
      addr: Buffer.alloc(6),
      seeder: i % 3 === 0,
      event: 'none',
      numWant: 50,
      withPeerIds: true,
      now: req.now,
      peerLifetimeMs: PEER_LIFETIME_MS,
    };
    if (i >= peers) break;
    writePeerId(probe.peerId, i);
    writeAddr(probe.addr, i);
    const res = await store.announce(probe);
    const n = res.peers.length / 6;
    const addrs = new Set();
    for (let k = 0; k < n; k++) addrs.add(res.peers.toString('hex', 6 * k, 6 * k + 6));
    if (n > 0 && addrs.size !== n) problems.push(`torrent ${t}: ${n} peers returned but only ${addrs.size} distinct addresses`);
    if (addrs.has(probe.addr.toString('hex'))) problems.push(`torrent ${t}: the announcer got itself back`);
    if (res.peerIds) {
      const ids = new Set();
      for (let k = 0; k < n; k++) ids.add(res.peerIds.toString('hex', 20 * k, 20 * k + 20));
      if (ids.size !== n) problems.push(`torrent ${t}: ${n} peers returned but only ${ids.size} distinct peer ids`);
    }
  }
  await store.close();
  store = null;
  await fullGc();
  return {
    peers,
    torrents,
    bytesPerPeer: Math.round(((after - before) / peers) * 10) / 10,
    totalMiB: Math.round(((after - before) / 2 ** 20) * 10) / 10,
    loadSeconds: Math.round(loadMs / 100) / 10,
    announcesPerSec: Math.round(peers / (loadMs / 1000)),
    problems,
  };
}

const results = [];
for (const size of sizes) {
  const r = await measure(size);
  results.push(r);
  if (!jsonOut) {
    process.stdout.write(
      `MemoryStore: ${r.peers} peers in ${r.torrents} torrents: ${r.bytesPerPeer} bytes/peer ` +
        `(${r.totalMiB} MiB heapUsed+arrayBuffers; loaded in ${r.loadSeconds} s, ${r.announcesPerSec} announces/s)\n`,
    );
    for (const p of r.problems) process.stdout.write(`  WARNING: ${p}\n`);
  }
}
if (jsonOut) process.stdout.write(`${JSON.stringify({ node: process.version, results })}\n`);
process.exit(results.some((r) => r.problems.length > 0) ? 3 : 0);
