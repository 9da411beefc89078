// Redis CPU and memory of the Redis swarm store alone, without a gateway, on a local 3-master
// cluster (run after `npm run build`): for working on the Lua scripts. `npm run bench` measures the
// same figures with a gateway under the UDP load (its cluster mode), which is what the README quotes. Starts the test cluster (3 masters + 3 replicas),
// pins every redis-server to one core and this process to another (taskset, when there are two),
// loads P peers in P/50 torrents (numWant 0), then re-announces every peer to its own torrent
// (numWant 50) at full speed for BENCH_SECONDS, and prints per size:
//   announces/s of this client, Redis CPU µs per announce (masters' used_cpu_sys+user deltas ÷
//   announces), Redis memory bytes per peer (masters' used_memory delta from before loading ÷ peers).
// Env: BENCH_SIZES=200000,1000000  BENCH_SECONDS=10  BENCH_INFLIGHT=512  BENCH_JSON=1
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { drive, nodesSnapshot as mastersSnapshot, pinRedisApart } from './redis-info.mjs';

const require = createRequire(import.meta.url);
const { createRedisStore } = require('../packages/redis-store/dist/index.js');
const { startRedisTestServer } = require('../packages/redis-store/dist/testing/index.js');

const SIZES = (process.env.BENCH_SIZES ?? '200000,1000000').split(',').map(Number);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const INFLIGHT = Number(process.env.BENCH_INFLIGHT ?? 512);
const PER_SWARM = 50;
const LIFETIME_MS = 30 * 60 * 1000;

async function measure(server, peers) {
  const torrents = Math.ceil(peers / PER_SWARM);
  const store = await createRedisStore({ clusterNodes: server.nodes }, { keyPrefix: 'b:' });
  const masters = store.client.nodes('master');
  await Promise.all(masters.map((m) => m.flushall()));
  await new Promise((r) => setTimeout(r, 200));
  const hashes = Array.from({ length: torrents }, () => randomBytes(20));
  const ids = randomBytes(20 * peers);
  const addrs = randomBytes(6 * peers);
  const seeder = (i) => i % 5 === 0; // 20 % seeders
  const req = (i, numWant, event) => ({
    infoHash: hashes[Math.floor(i / PER_SWARM)],
    peerId: ids.subarray(20 * i, 20 * i + 20),
    family: 4,
    addr: addrs.subarray(6 * i, 6 * i + 6),
    key: i % 2 === 0 ? `k${i}` : undefined,
    seeder: seeder(i),
    event,
    numWant,
    withPeerIds: false,
    now: Date.now(),
    peerLifetimeMs: LIFETIME_MS,
  });
  const before = await mastersSnapshot(masters);
  const t0 = Date.now();
  await drive(peers, INFLIGHT, (i) => store.announce(req(i, 0, 'started')));
  const loadS = (Date.now() - t0) / 1000;
  const loaded = await mastersSnapshot(masters);
  // re-announce, peers in a shuffled-ish order (stride through swarms)
  const order = (k) => ((k % peers) * 7919) % peers;
  let sample;
  const start = await mastersSnapshot(masters);
  const t1 = Date.now();
  const deadline = t1 + SECONDS * 1000;
  const announces = await drive(Number.MAX_SAFE_INTEGER, INFLIGHT, async (k) => {
    const r = await store.announce(req(order(k), 50, 'none'));
    sample ??= r;
  }, deadline);
  const runS = (Date.now() - t1) / 1000;
  const end = await mastersSnapshot(masters);
  const replicas = store.client.nodes('slave');
  // reference, same run and load shape: an EVALSHA that does nothing, on the same swarm keys
  const trivial = "return 1";
  store.client.defineCommand('ptTrivial', { numberOfKeys: 1, lua: trivial });
  const rs = await mastersSnapshot(masters);
  const rr = await mastersSnapshot(replicas);
  const t2 = Date.now();
  const refCalls = await drive(Number.MAX_SAFE_INTEGER, INFLIGHT, (k) => store.client.ptTrivial(store.swarmKeys(hashes[Math.floor(order(k) / PER_SWARM)])[0], 'x'), t2 + Math.min(SECONDS, 5) * 1000);
  const refS = (Date.now() - t2) / 1000;
  const re = await mastersSnapshot(masters);
  const rre = await mastersSnapshot(replicas);
  await store.close();
  for (const [k, v] of Object.entries(re.cmds)) if (k.startsWith('evalsha')) console.error('trivial evalsha commandstats µs/call', (v.usec - (rs.cmds[k]?.usec ?? 0)) / Math.max(1, v.calls - (rs.cmds[k]?.calls ?? 0)));
  return {
    peers,
    torrents,
    loadPerS: Math.round(peers / loadS),
    announcesPerS: Math.round(announces / runS),
    cpuUsPerAnnounce: ((end.cpu - start.cpu) * 1e6) / announces,
    bytesPerPeer: (loaded.mem - before.mem) / peers,
    trivialPerS: Math.round(refCalls / refS),
    trivialCpuUs: ((re.cpu - rs.cpu) * 1e6) / refCalls,
    trivialReplicaCpuUs: ((rre.cpu - rr.cpu) * 1e6) / refCalls,
    samplePeers: sample ? sample.peers.length / 6 : 0,
    // commandstats time (inside command execution) per announce, by command, during the run
    commandUsPerAnnounce: Object.fromEntries(
      Object.entries(end.cmds)
        .map(([k, c]) => [k, (c.usec - (start.cmds[k]?.usec ?? 0)) / announces, c.calls - (start.cmds[k]?.calls ?? 0)])
        .filter(([, , calls]) => calls > 0)
        .map(([k, us, calls]) => [k, `${us.toFixed(2)} µs, ${(calls / announces).toFixed(2)} calls`]),
    ),
  };
}

async function main() {
  const server = await startRedisTestServer('cluster');
  let pinned = false;
  try {
    pinned = await pinRedisApart(() => createRedisStore({ clusterNodes: server.nodes }, { keyPrefix: 'b:' }));
    const rows = [];
    for (const peers of SIZES) {
      const row = await measure(server, peers);
      rows.push(row);
      console.error(JSON.stringify(row));
    }
    if (process.env.BENCH_JSON === '1') console.log(JSON.stringify(rows));
    console.log(`\nRedis store on a local 3-master cluster (${pinned ? 'redis on core 0, client on core 1' : 'not pinned'}; ${SECONDS} s of announces, numWant 50, ${PER_SWARM} peers per torrent)\n`);
    console.log('| peers | torrents | announces/s (1 client) | Redis CPU µs / announce (masters) | trivial EVALSHA µs (same run) | Redis bytes / peer (masters) |');
    console.log('|---:|---:|---:|---:|---:|---:|');
    for (const r of rows) {
      console.log(`| ${r.peers.toLocaleString('en')} | ${r.torrents.toLocaleString('en')} | ${r.announcesPerS.toLocaleString('en')} | ${r.cpuUsPerAnnounce.toFixed(1)} | ${r.trivialCpuUs.toFixed(1)} | ${r.bytesPerPeer.toFixed(0)} |`);
    }
  } finally {
    await server.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
