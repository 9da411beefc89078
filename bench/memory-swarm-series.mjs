// Single-swarm series of the in-memory store (packages/tracker, MemoryStore): heap per peer and
// time per announce for one swarm of 50, 10,000, 100,000 and 1,000,000 peers, each as a ratio to
// the 50-peer figure (the machine is shared and noisy: compare ratios). Then the footprint the
// store-wide limits (MemoryStoreOptions.maxPeers / maxSwarms) are derived from: bytes per swarm of
// one peer and per swarm kept only for its completed count.
//
//   node --expose-gc bench/memory-swarm-series.mjs [--json] [--sizes 50,10000,100000,1000000] [--ops 200000]
//     [--no-address-limit]
//
// Per size N, on a fresh store, all IPv4, every peer on its own address, numwant 50, the logic's
// default maxPeersPerAddress (64: pools above 128 peers keep their per-address counts) and
// maxPeersPerSwarm raised to 2N so that the 1,000,000-peer swarm still takes new peers:
//   fill     N peers join, one per simulated millisecond, lifetime N ms (a third seeders);
//            heap per peer = (heapUsed + arrayBuffers) growth after a full GC ÷ N;
//   expiry   `ops` new peers join as the clock moves one ms each: every announce purges the peer
//            that expires then, so the swarm stays at N (steady churn);
//   refresh  `ops` re-announces of random live peers;
//   join     new peers join and then stop, ceil(N / 100) at a time (the swarm stays within 1% of
//            N), `ops` of each; timed separately.
// Heap per peer is measured on ⌈200,000 / N⌉ swarms of N peers (one small swarm is lost in the
// noise). Every announce is timed on its own (process.hrtime.bigint; the timer's own cost, measured
// on an empty call, is subtracted from p50 and mean). Ratios compare p50s, which other processes on
// a shared machine disturb least; the mean also carries GC and the amortized pool resizes; max is
// mostly preemption and GC. The announce that last found the pool full at a power of two during
// the fill shows the stall of a resize (a pool that doubles copies itself and rebuilds its index at
// once; above 4,096 slots the store now adds a chunk instead); the longest announce of the fill
// also catches an index or address-count split, and GC.

import { fullGc, loadTracker, memory } from './heap.mjs';

const args = process.argv.slice(2);
const jsonOut = args.includes('--json');
const arg = (name) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const sizes = (arg('--sizes') ?? '50,10000,100000,1000000').split(',').map(Number);
const ops = Number(arg('--ops') ?? 200_000);
/** --no-address-limit: without maxPeersPerAddress, to see what the per-address counts cost */
const addressLimit = !args.includes('--no-address-limit');
/** peers per heap measurement (see heapPerPeer) */
const HEAP_PEERS = 200_000;
if (!sizes.every((n) => Number.isInteger(n) && n > 0) || !(ops > 0)) die('bad --sizes or --ops');

function die(message) {
  process.stderr.write(`memory-swarm-series: ${message}\n`);
  process.exit(1);
}

const { MemoryStore, DEFAULT_MAX_PEERS_PER_ADDRESS } = await loadTracker('bench/memory-swarm-series.mjs');

/**
 * Peer `i`: a distinct id and a distinct IPv4 address (10.0.0.0 + i); with `swarms` > 1 it
 * belongs to swarm i % swarms.
 */
function setPeer(req, i, swarms = 1) {
  if (swarms > 1) req.infoHash.writeUInt32BE(i % swarms, 0);
  req.peerId.writeUInt32BE(i >>> 0, 16);
  req.addr.writeUInt32BE((0x0a000000 + i) >>> 0, 0);
  req.seeder = i % 3 === 0;
}

function makeRequest(infoHash, lifetime, n) {
  const peerId = Buffer.from('-PT0001-000000000000', 'latin1');
  return {
    infoHash,
    peerId,
    family: 4,
    addr: Buffer.from([10, 0, 0, 0, 0x1a, 0xe1]),
    key: undefined,
    seeder: false,
    event: 'started',
    numWant: 50,
    withPeerIds: false,
    now: 0,
    peerLifetimeMs: lifetime,
    maxPeersPerSwarm: Math.max(1_000_000, 2 * n),
    maxPeersPerAddress: addressLimit ? DEFAULT_MAX_PEERS_PER_ADDRESS : undefined,
  };
}

/** A sample of announce times in ns: mean (timer cost subtracted), p99, max. */
class Timing {
  constructor(overhead) {
    this.overhead = overhead;
    this.samples = new Float64Array(ops);
    this.n = 0;
  }
  time(store, req) {
    const t0 = process.hrtime.bigint();
    const r = store.announce(req);
    this.samples[this.n++] = Number(process.hrtime.bigint() - t0);
    return r;
  }
  summary() {
    const s = this.samples.subarray(0, this.n).sort();
    let sum = 0;
    for (const x of s) sum += x;
    const us = (ns) => Math.round(ns / 10) / 100;
    return {
      p50Us: us(Math.max(0, s[s.length >> 1] - this.overhead)),
      meanUs: us(Math.max(0, sum / s.length - this.overhead)),
      p99Us: us(s[Math.floor(s.length * 0.99)]),
      maxUs: us(s[s.length - 1]),
    };
  }
}

function timerOverhead() {
  const samples = new Float64Array(100_000);
  const nop = { announce: () => null };
  for (let i = 0; i < samples.length; i++) {
    const t0 = process.hrtime.bigint();
    nop.announce(i);
    samples[i] = Number(process.hrtime.bigint() - t0);
  }
  return samples.sort()[samples.length >> 1];
}

/**
 * Heap per peer of swarms of n peers: ⌈HEAP_PEERS / n⌉ of them (a single small swarm is lost in
 * the noise of a heap measurement), peers as in the series.
 */
async function heapPerPeer(n) {
  const swarms = Math.ceil(HEAP_PEERS / n);
  const infoHash = Buffer.alloc(20, 0x5a);
  const req = makeRequest(infoHash, 3_600_000, n);
  req.numWant = 0;
  await fullGc();
  const before = memory();
  const store = new MemoryStore({ maxPeers: 0, maxSwarms: 0 });
  for (let s = 0; s < swarms; s++) {
    infoHash.writeUInt32BE(s, 0);
    for (let i = 0; i < n; i++) {
      setPeer(req, s * n + i);
      store.announce(req);
    }
  }
  await fullGc();
  const bytes = (memory() - before) / (swarms * n);
  if ((await store.stats()).peers !== swarms * n) die(`heap: ${swarms * n} peers announced, not all held`);
  await store.close();
  return { swarms, bytesPerPeer: Math.round(bytes * 10) / 10 };
}

/**
 * The series for one swarm of n peers; with `swarms` > 1, the same n peers spread over that many
 * swarms (the control: it tells what comes from the swarm's size and what from the number of
 * peers the process holds, i.e. from the caches).
 */
async function series(n, overhead, swarms = 1) {
  const heap = swarms === 1 ? await heapPerPeer(n) : null;
  const infoHash = Buffer.alloc(20, 0x5a);
  const t0 = 1_700_000_000_000;
  const req = makeRequest(infoHash, n, n);
  const expiry = new Timing(overhead);
  const refresh = new Timing(overhead);
  const joins = new Timing(overhead);
  const stops = new Timing(overhead);
  await fullGc();
  const before = memory();
  const store = new MemoryStore({ maxPeers: 0, maxSwarms: 0 });
  req.numWant = 0;
  // the announce that finds the pool full at a power of two (from 4): it doubled the pool, copying
  // it and rebuilding its index, until pools above 4,096 slots grew by chunks; the last is timed
  // (the longest when it doubled). And the longest announce of the fill, GC and preemption included.
  let doublingNs = 0;
  let longestNs = 0;
  for (let i = 0; i < n; i++) {
    setPeer(req, i, swarms);
    req.now = t0 + i;
    const t = process.hrtime.bigint();
    store.announce(req);
    const took = Number(process.hrtime.bigint() - t);
    if (i >= 4 && (i & (i - 1)) === 0) doublingNs = took;
    if (took > longestNs) longestNs = took;
  }
  await fullGc();
  const filled = memory();
  const problems = [];
  const check = (what) => {
    let count = store.size().swarms === swarms ? 0 : -1;
    // a copy: the single swarm's hash must stay as it is for the announces that follow
    const probe = Buffer.from(infoHash);
    for (let k = 0; k < swarms && count >= 0; k++) {
      if (swarms > 1) probe.writeUInt32BE(k, 0);
      const pool = store.inspect(probe)?.v4 ?? null;
      count += pool === null ? 0 : pool.seeders + pool.leechers;
    }
    if (count !== n) problems.push(`${what}: the swarms hold ${count} peers, not ${n}`);
  };
  check('after fill');

  // expiry: one new peer per ms; the peer that joined n ms earlier expires with it
  req.numWant = 50;
  let next = n;
  let now = t0 + n;
  for (let j = 0; j < ops; j++, now++) {
    setPeer(req, next++, swarms);
    req.now = now;
    const r = expiry.time(store, req);
    if (r.refused !== undefined) problems.push(`expiry: refused (${r.refused})`);
  }
  check('after expiry');

  // refresh: random live peers (the last n that joined), clock frozen so nothing expires
  now--;
  req.event = 'none';
  let x = 12345;
  for (let j = 0; j < ops; j++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    setPeer(req, next - n + (x % n), swarms);
    req.now = now;
    refresh.time(store, req);
  }
  check('after refresh');

  // join then stop, in groups of ceil(n / 100)
  const group = Math.ceil(n / 100);
  while (joins.n < ops) {
    const first = next;
    const k = Math.min(group, ops - joins.n);
    req.event = 'started';
    for (let j = 0; j < k; j++) {
      setPeer(req, next++, swarms);
      const r = joins.time(store, req);
      if (r.refused !== undefined) problems.push(`join: refused (${r.refused})`);
    }
    req.event = 'stopped';
    for (let j = 0; j < k; j++) {
      setPeer(req, first + j, swarms);
      stops.time(store, req);
    }
  }
  check('after join/stop');
  store.checkInvariants();
  await fullGc();
  const churned = memory();
  const filledPerPeer = Math.round(((filled - before) / n) * 10) / 10;
  await store.close();
  return {
    peers: n,
    swarms,
    heapSwarms: heap === null ? swarms : heap.swarms,
    bytesPerPeer: heap === null ? filledPerPeer : heap.bytesPerPeer,
    // only where one swarm is large enough to measure
    bytesPerPeerAfterChurn: n >= HEAP_PEERS / 2 ? Math.round(((churned - before) / n) * 10) / 10 : null,
    doublingUs: swarms === 1 ? Math.round(doublingNs / 10) / 100 : null,
    longestFillUs: Math.round(longestNs / 10) / 100,
    expiry: expiry.summary(),
    refresh: refresh.summary(),
    join: joins.summary(),
    stop: stops.summary(),
    problems: [...new Set(problems)],
  };
}

/** Bytes per swarm of one peer, and per swarm kept only for its completed count. */
async function footprint(count) {
  const hashes = Buffer.alloc(20 * count);
  for (let i = 0; i < count; i++) hashes.writeUInt32BE(i, 20 * i);
  const infoHash = Buffer.alloc(20);
  const req = makeRequest(infoHash, 3_600_000, 1);
  const result = {};
  for (const kind of ['onePeer', 'retained']) {
    await fullGc();
    const before = memory();
    const store = new MemoryStore({ maxPeers: 0, maxSwarms: 0 });
    for (let i = 0; i < count; i++) {
      hashes.copy(infoHash, 0, 20 * i, 20 * i + 20);
      setPeer(req, i);
      req.event = kind === 'retained' ? 'completed' : 'started';
      req.seeder = kind === 'retained';
      store.announce(req);
      if (kind === 'retained') {
        req.event = 'stopped';
        store.announce(req);
      }
    }
    await fullGc();
    const size = store.size();
    result[kind] = Math.round(((memory() - before) / count) * 10) / 10;
    if (size.swarms !== count) die(`footprint: ${size.swarms} swarms held, not ${count}`);
    await store.close();
  }
  return { swarms: count, bytesPerOnePeerSwarm: result.onePeer, bytesPerRetainedSwarm: result.retained };
}

const overhead = timerOverhead();
// warm-up (JIT): the first series measured would otherwise pay for compiling the announce path
await series(1000, overhead);
const results = [];
for (const n of sizes) results.push(await series(n, overhead));
// the control: the largest size again, spread over swarms of 50
const largest = Math.max(...sizes);
if (largest >= 1000 && largest % 50 === 0) results.push(await series(largest, overhead, largest / 50));
const base = results.find((r) => r.peers === 50 && r.swarms === 1) ?? results[0];
const ratio = (a, b) => (b > 0 ? Math.round((a / b) * 100) / 100 : null);
for (const r of results) {
  r.ratio = {
    bytesPerPeer: ratio(r.bytesPerPeer, base.bytesPerPeer),
    expiry: ratio(r.expiry.p50Us, base.expiry.p50Us),
    refresh: ratio(r.refresh.p50Us, base.refresh.p50Us),
    join: ratio(r.join.p50Us, base.join.p50Us),
    stop: ratio(r.stop.p50Us, base.stop.p50Us),
  };
}
const fp = await footprint(200_000);

const label = (r) =>
  r.swarms === 1 ? r.peers.toLocaleString('en-US') : `${r.peers.toLocaleString('en-US')} in ${r.swarms.toLocaleString('en-US')} swarms (control)`;

/** The series as a markdown table (bench/run.mjs prints it). */
function markdown() {
  const t = (r, k) => `${r[k].p50Us} (×${r.ratio[k]})`;
  const rows = results.map(
    (r) =>
      `| ${label(r)} | ${r.bytesPerPeer} (×${r.ratio.bytesPerPeer}) | ${t(r, 'refresh')} | ${t(r, 'join')} | ` +
      `${t(r, 'stop')} | ${t(r, 'expiry')} | ${r.doublingUs === null ? '–' : r.doublingUs.toLocaleString('en-US')} | ` +
      `${r.longestFillUs.toLocaleString('en-US')} |`,
  );
  return [
    '| peers in the swarm | heap bytes/peer | µs per re-announce | µs per new peer | µs per stop | µs per new peer with one expiring | announce that doubles the pool, last (µs) | longest announce of the fill (µs) |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows,
    '',
    `Footprint behind the store limits: ${fp.bytesPerOnePeerSwarm} bytes per swarm of one peer, ${fp.bytesPerRetainedSwarm} per swarm kept only for its completed count (${fp.swarms.toLocaleString('en-US')} swarms each).`,
  ].join('\n');
}

if (jsonOut) {
  const out = { node: process.version, ops, addressLimit, timerOverheadNs: overhead, results, footprint: fp, markdown: markdown() };
  process.stdout.write(`${JSON.stringify(out)}\n`);
} else {
  const f = (t) => `p50 ${t.p50Us} µs (mean ${t.meanUs}, p99 ${t.p99Us}, max ${t.maxUs})`;
  for (const r of results) {
    process.stdout.write(
      `${label(r)}: ${r.bytesPerPeer} B/peer (after churn ${r.bytesPerPeerAfterChurn}); last pool doubling ${r.doublingUs} µs; longest fill announce ${r.longestFillUs} µs; ` +
        `refresh ${f(r.refresh)}; join ${f(r.join)}; stop ${f(r.stop)}; expiry ${f(r.expiry)}\n`,
    );
    for (const p of r.problems) process.stdout.write(`  WARNING: ${p}\n`);
  }
  process.stdout.write(`\n${markdown()}\n`);
}
process.exit(results.some((r) => r.problems.length > 0) ? 3 : 0);
