// The Redis store with one swarm of many peers (issue 7: the cost of an announce must not grow with
// the swarm). Store-level, as bench/redis-cluster.mjs (run after `npm run build`; `npm run bench`
// runs it as its `swarm` mode): starts the test cluster (3 masters + 3 replicas), pins the masters
// to one core at nice -20 and the replicas and this process to the other (taskset, when there are
// two), so that a master's SLOWLOG times are its own work as far as the machine allows. Per size:
//   load: N peers into one swarm (numWant 0, distinct addresses, 20 % seeders, half with a key);
//     a tenth of them (at most 1,000 per second of the run) dated so that they go due one after
//     the other during the run, which includes their purge;
//   run: the other peers re-announce (numWant 50) at full speed for BENCH_SWARM_SECONDS;
// and prints: Redis CPU µs per announce (masters' used_cpu_sys+user deltas over the run ÷
// announces, the counters of /proc/<pid>/stat at µs resolution), its ratio to the 50-peer figure,
// Redis memory bytes per peer (MEMORY USAGE of the swarm's keys after the load ÷ N; the masters'
// used_memory growth, which also moves with replication buffers, in the JSON), the longest Redis
// call of the load and of the run (SLOWLOG, slowlog-log-slower-than 200 µs: wall time, so a
// preempted call on a busy machine counts too; in brackets the longest of a do-nothing EVALSHA
// sent every 64th call beside the store's, the noise of the same moments; and how many calls of
// 10,000 took over 1 ms, the store's and the probe's), the due peers still
// counted at the end, and the same run's do-nothing EVALSHA as reference.
// Env: BENCH_SWARM_SIZES=50,10000,100000,1000000  BENCH_SWARM_SECONDS=10  BENCH_INFLIGHT=256
//      BENCH_SWARM_DUE_PER_S=1000 (peers going due per second of the run; 0: none, re-announces only)
//      BENCH_JSON=1 (one JSON line of the rows on stdout)
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { drive, infoField, nodesSnapshot, pinRedisApart, trivialEvalshaCost } from './redis-info.mjs';

const require = createRequire(import.meta.url);
const { createRedisStore } = require('../packages/redis-store/dist/index.js');
const { startRedisTestServer } = require('../packages/redis-store/dist/testing/index.js');

const SIZES = (process.env.BENCH_SWARM_SIZES ?? '50,10000,100000,1000000').split(',').map(Number);
const SECONDS = Number(process.env.BENCH_SWARM_SECONDS ?? 10);
const INFLIGHT = Number(process.env.BENCH_INFLIGHT ?? 256);
const LIFETIME_MS = 30 * 60 * 1000;
const SLOW_US = 200;
const DUE_PER_S = Number(process.env.BENCH_SWARM_DUE_PER_S ?? 1000);
/**
 * BENCH_SWARM_CHURN=f (e.g. 0.1): the same joins and expiries per announce at every size, the 50
 * peers included. Each announce moves a simulated clock on by interval ÷ n (interval = lifetime ÷
 * 2), so each of the n members re-announces once per interval, in turn; every (1/f)-th announce a
 * new peer takes a member's place (the old one leaves silently and expires a lifetime after its
 * last announce), and the load adds f · n peers that left in the interval before, so expiries run
 * at f per announce from the start. Without it (0, the default), only big swarms have peers going
 * due (DUE_PER_S), which the 50-peer reference hardly has.
 */
const CHURN = Number(process.env.BENCH_SWARM_CHURN ?? 0);

const PROBE_LUA = 'return 1';
/** sha1 of PROBE_LUA, a do-nothing script called now and then beside the load (the noise probe) */
let probeSha;

/**
 * The longest calls in the masters' SLOWLOGs (µs, and command name): of the store, and of the
 * noise probe (a do-nothing EVALSHA: what the machine adds to any call at that time); then resets
 * them.
 */
async function longestCalls(masters) {
  const longest = { us: 0, command: '', probeUs: 0, over1ms: 0, probeOver1ms: 0, top: [] };
  for (const m of masters) {
    for (const entry of await m.slowlog('GET', 100_000)) {
      const us = Number(entry[2]);
      const args = entry[3].map(String);
      if (args[1] === probeSha) {
        longest.probeUs = Math.max(longest.probeUs, us);
        if (us > 1000) longest.probeOver1ms++;
      } else {
        if (us > 1000) longest.over1ms++;
        if (us > longest.us) Object.assign(longest, { us, command: args[0] });
        longest.top.push([us, args.slice(0, 4).join(' ').slice(0, 120), Number(entry[1])]);
      }
    }
    await m.slowlog('RESET');
  }
  longest.top = longest.top.sort((x, y) => y[0] - x[0]).slice(0, 5);
  return longest;
}

async function measure(server, peers) {
  const store = await createRedisStore({ clusterNodes: server.nodes }, { keyPrefix: 'sw:' });
  const masters = store.client.nodes('master');
  await Promise.all(masters.map((m) => m.flushall()));
  await new Promise((r) => setTimeout(r, 300));
  for (const m of masters) {
    await m.config('SET', 'slowlog-log-slower-than', String(SLOW_US));
    await m.config('SET', 'slowlog-max-len', '100000');
    await m.slowlog('RESET');
  }
  const infoHash = randomBytes(20);
  // churn: small sizes run as several swarms of that size, taken in turn, so that the calls in
  // flight at once span a small part of each swarm's simulated interval (else a swarm's clock
  // would run out of order by more than a lifetime)
  const swarms = CHURN > 0 ? Math.max(1, Math.ceil((4 * INFLIGHT) / peers)) : 1;
  const hashes = [infoHash, ...Array.from({ length: swarms - 1 }, () => randomBytes(20))];
  probeSha = await masters[0].script('LOAD', PROBE_LUA);
  for (const m of masters.slice(1)) await m.script('LOAD', PROBE_LUA);
  const probeKey = store.swarmKeys(infoHash)[0];
  // every 64th call, a do-nothing EVALSHA on the swarm's node beside the store's
  const probe = (i) => (i % 64 === 0 ? store.client.evalsha(probeSha, 1, probeKey) : undefined);
  // (churn: per swarm, room for its leavers and the run's joins; swarm s has ids [s · cap, (s + 1) · cap))
  const leavers = CHURN > 0 ? Math.ceil(CHURN * peers) : 0;
  const cap = CHURN > 0 ? peers + leavers + Math.ceil((CHURN * 60_000 * SECONDS) / swarms) : peers;
  const ids = randomBytes(20 * cap * swarms);
  const addrs = randomBytes(6 * cap * swarms);
  // peers that go due during the run, one in ten and at most DUE_PER_S a second of it, their expiry
  // spread over the run: about one removal per 10 announces at this client's pace (a real swarm
  // sees about interval ÷ mean stay, 0.1-0.3)
  const dueCount = Math.min(Math.ceil(peers / 10), DUE_PER_S * SECONDS);
  const due = (i) => i % 10 === 0 && i / 10 < dueCount;
  const dueAt = (i) => t0 - LIFETIME_MS + 2000 + ((i / 10) * SECONDS * 1000) / dueCount;
  const t0 = Date.now();
  const req = (i, numWant, event, now) => ({
    infoHash: hashes[Math.floor(i / cap)],
    peerId: ids.subarray(20 * i, 20 * i + 20),
    family: 4,
    addr: addrs.subarray(6 * i, 6 * i + 6),
    key: i % 2 === 0 ? `k${i}` : undefined,
    seeder: i % 5 === 1,
    event,
    numWant,
    withPeerIds: false,
    now,
    peerLifetimeMs: LIFETIME_MS,
    maxPeersPerSwarm: 10 * peers,
    maxPeersPerAddress: 64,
  });
  const before = await nodesSnapshot(masters);
  const l0 = Date.now();
  // churn: the n members announced over the last interval, the f · n leavers over the one before
  const interval = LIFETIME_MS / 2;
  const tick = interval / peers;
  const loadAt = (p) => (CHURN > 0 ? (p < peers ? t0 - interval + p * tick : t0 - 2 * interval + ((p - peers) * interval) / leavers) : due(p) ? dueAt(p) : t0);
  const perSwarm = peers + leavers;
  await drive(perSwarm * swarms, INFLIGHT, (x) => {
    const i = Math.floor(x / perSwarm) * cap + (x % perSwarm);
    return Promise.all([probe(x), store.announce(req(i, 0, 'started', loadAt(x % perSwarm)))]);
  });
  const loadS = (Date.now() - l0) / 1000;
  const loaded = await nodesSnapshot(masters);
  const loadLongest = await longestCalls(masters);
  // forks (a replica's full resync, a background save) stop a master for about 10 ms per GB
  const forks = async () => {
    const out = [];
    for (const m of masters) {
      const st = await m.info('stats');
      out.push({ fullSyncs: infoField(st, 'sync_full'), latestForkUs: infoField(st, 'latest_fork_usec') });
    }
    return out;
  };
  const loadForks = await forks();
  // the swarm's own keys (used_memory also moves with the replication buffers and the like)
  // (every key of the swarm: the declared ones and the pools' chunk keys, '<key>.<n>')
  const stem = swarms > 1 ? 'sw:' : store.swarmKeys(infoHash)[0].slice(0, -1);
  let keyBytes = 0;
  for (const m of masters) {
    let cursor = '0';
    do {
      const [next, keys] = await m.scan(cursor, 'MATCH', `${stem}*`, 'COUNT', 1000);
      for (const key of keys) keyBytes += (await m.memory('USAGE', key, 'SAMPLES', '0')) ?? 0;
      cursor = next;
    } while (cursor !== '0');
  }
  // (MEMORY USAGE walks the keys: not a call of the store)
  await longestCalls(masters);
  // the other peers re-announce, strided through the swarm, on a clock that starts 2 s after the load
  const live = peers - Math.ceil(peers / 10);
  const order = (k) => {
    const j = (k * 7919) % live;
    return Math.floor(j / 9) * 10 + 1 + (j % 9);
  };
  // churn: swarm k % swarms takes announce k, its kk-th; its member j = kk % n announces at
  // kk = j, j + n, …; every (1/f)-th is a newcomer's
  const members = Array.from({ length: swarms }, (_, sw) => Int32Array.from({ length: peers }, (_, j) => sw * cap + j));
  const nextId = Array.from({ length: swarms }, (_, sw) => sw * cap + perSwarm);
  const every = CHURN > 0 ? Math.max(1, Math.round(1 / CHURN)) : 0;
  const next = (k) => {
    if (CHURN === 0) return [Math.min(order(k), peers - 1), 'none', t0 + 2000 + (Date.now() - r0)];
    const sw = k % swarms;
    const kk = Math.floor(k / swarms);
    const j = kk % peers;
    if (kk % every === every - 1 && nextId[sw] < (sw + 1) * cap) {
      members[sw][j] = nextId[sw]++;
      return [members[sw][j], 'started', t0 + kk * tick];
    }
    return [members[sw][j], 'none', t0 + kk * tick];
  };
  const start = await nodesSnapshot(masters);
  const r0 = Date.now();
  let returned = 0;
  const announces = await drive(
    Number.MAX_SAFE_INTEGER,
    INFLIGHT,
    async (k) => {
      probe(k);
      const [i, event, now] = next(k);
      const r = await store.announce(req(i, 50, event, now));
      returned += r.peers.length / 6;
    },
    r0 + SECONDS * 1000,
  );
  const runS = (Date.now() - r0) / 1000;
  const end = await nodesSnapshot(masters);
  const runLongest = await longestCalls(masters);
  // churn, per swarm at the end (its kk-th announce): leaver m went due at kk = m · every; a member
  // replaced at kk had last announced at kk - n, so it goes due at kk + n
  const churnEnd = (() => {
    if (CHURN === 0) return { live: 0, due: 0 };
    const kkEnd = Math.floor(announces / swarms);
    const joins = Math.floor(kkEnd / every);
    const leaversDue = Math.min(leavers, Math.floor(kkEnd / every) + 1);
    const replacedDue = Math.max(0, Math.floor((kkEnd - peers) / every));
    return { live: peers + (leavers - leaversDue) + (joins - replacedDue), due: leaversDue + replacedDue };
  })();
  const entries = await store.scrape(hashes, CHURN > 0 ? t0 + Math.floor(announces / swarms) * tick : t0 + 2000 + (Date.now() - r0));
  const entry = { complete: 0, incomplete: 0 };
  for (const e of entries) {
    entry.complete += e.complete;
    entry.incomplete += e.incomplete;
  }
  const ref = await trivialEvalshaCost(store.client, masters, { torrents: 1, seconds: Math.min(SECONDS, 3), inflight: INFLIGHT });
  await store.close();
  return {
    peers,
    loadPerS: Math.round((perSwarm * swarms) / loadS),
    announcesPerS: Math.round(announces / runS),
    cpuUsPerAnnounce: ((end.cpu - start.cpu) * 1e6) / announces,
    bytesPerPeer: keyBytes / (perSwarm * swarms),
    usedMemoryPerPeer: (loaded.mem - before.mem) / (perSwarm * swarms),
    loadLongestUs: loadLongest.us,
    loadLongestCommand: loadLongest.command,
    runLongestUs: runLongest.us,
    runLongestCommand: runLongest.command,
    meanPeersReturned: returned / announces,
    // (due: the peers that went due during the run; dueLeft: those still counted at the end)
    dueLeft: entry.complete + entry.incomplete - (CHURN > 0 ? swarms * churnEnd.live : peers - dueCount),
    due: CHURN > 0 ? swarms * churnEnd.due : dueCount,
    churn: CHURN,
    swarms,
    trivialCpuUs: ref.cpuUs,
    loadForks,
    // the slowest calls of the store: µs, command and keys, unix time
    loadSlowest: loadLongest.top,
    runSlowest: runLongest.top,
    loadProbeLongestUs: loadLongest.probeUs,
    runProbeLongestUs: runLongest.probeUs,
    // calls over 1 ms per 10,000: the store's, and the probe's (one probe per 64 calls)
    runOver1msPer10k: (runLongest.over1ms * 1e4) / announces,
    runProbeOver1msPer10k: (runLongest.probeOver1ms * 1e4) / Math.max(1, Math.ceil(announces / 64)),
    // commandstats time (inside command execution) per announce during the run
    commandsPerAnnounce: Object.fromEntries(
      Object.entries(end.cmds)
        .map(([k, c]) => [k, c.calls - (start.cmds[k]?.calls ?? 0), c.usec - (start.cmds[k]?.usec ?? 0)])
        .filter(([k, calls]) => calls > 0 && !/^(info|slowlog|config)/.test(k))
        .map(([k, calls, usec]) => [k, `${(calls / announces).toFixed(2)} calls, ${(usec / announces).toFixed(2)} µs`]),
    ),
  };
}

export function swarmTable(rows) {
  const base = rows.find((r) => r.peers === 50) ?? rows[0];
  const us = (n) => (n >= 1000 ? `${(n / 1000).toFixed(1)} ms` : n > 0 ? `${Math.round(n)} µs` : `< ${SLOW_US} µs`);
  const out = [
    '| peers in the swarm | announces/s (1 client) | Redis CPU µs / announce | ratio to 50 peers | do-nothing EVALSHA µs | Redis bytes / peer | longest call: load (probe) | longest call: run (probe) | run calls > 1 ms per 10,000 (probe) | due peers still counted at the end |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    out.push(
      `| ${r.peers.toLocaleString('en')} | ${r.announcesPerS.toLocaleString('en')} | ${r.cpuUsPerAnnounce.toFixed(1)} | ${(r.cpuUsPerAnnounce / base.cpuUsPerAnnounce).toFixed(2)} | ` +
        `${r.trivialCpuUs.toFixed(1)} | ${r.bytesPerPeer.toFixed(0)} | ${us(r.loadLongestUs)} (${us(r.loadProbeLongestUs)}) | ${us(r.runLongestUs)} (${us(r.runProbeLongestUs)}) | ${r.runOver1msPer10k.toFixed(1)} (${r.runProbeOver1msPer10k.toFixed(1)}) | ${r.dueLeft.toLocaleString('en')} of ${r.due.toLocaleString('en')} |`,
    );
  }
  return out.join('\n');
}

async function main() {
  const server = await startRedisTestServer('cluster');
  const stop = () => server.stop().finally(() => process.exit(130));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  let pinned = false;
  try {
    pinned = await pinRedisApart(() => createRedisStore({ clusterNodes: server.nodes }, { keyPrefix: 'sw:' }), { replicasWithClient: true, priorityMasters: true });
    const rows = [];
    for (const peers of SIZES) {
      const row = await measure(server, peers);
      rows.push(row);
      console.error(JSON.stringify(row));
    }
    if (process.env.BENCH_JSON === '1') {
      console.log(JSON.stringify({ pinned, seconds: SECONDS, rows }));
    } else {
      console.log(`\nRedis store, one swarm (local 3-master cluster; ${pinned ? 'masters on core 0 at nice -20, replicas and client on core 1' : 'not pinned'}; ${SECONDS} s of re-announces, numWant 50; ${CHURN > 0 ? `churn ${CHURN}: as many joins and expiries per announce at every size, on a simulated clock (interval ÷ n per announce); sizes under ${4 * INFLIGHT} as several swarms of that size, in turn` : `a tenth of the peers, at most ${DUE_PER_S.toLocaleString('en')} a second, going due during the run`})\n`);
      console.log(swarmTable(rows));
    }
  } finally {
    await server.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
