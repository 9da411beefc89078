// `npm run bench`: throughput and latency of the gateway against the reference responder, on the
// same load in the same run (DESIGN.md, "Performance, and how it is measured"), then the memory
// per peer of the in-memory store.
//
// For each mode (udp, http) and each server (responder, gateway): start the server pinned to one
// core, wait until it answers, run bench/loadgen pinned to the other core (warmup: every peer
// announces once with event=started; then the measured window), stop the server.
//
// Environment (all optional):
//   BENCH_DURATION     measured window per run, seconds or a Go duration (default 20)
//   BENCH_PEERS / BENCH_TORRENTS / BENCH_NUMWANT   load (default 200000 / 4000 / 50)
//   BENCH_SERVERS      comma list of responder,gateway (default both)
//   BENCH_MODES        comma list of udp,http,cluster,swarm,events,worker,otel (default all
//                      seven; cluster = the gateway on a local Redis Cluster, below; swarm = the
//                      Redis store with one swarm of 50 to 1,000,000 peers, bench/redis-swarm.mjs;
//                      events = the UDP gateway with and without publishing to a local Kafka
//                      broker; worker = one stats worker's events per CPU second,
//                      bench/stats-worker.mjs; otel = the gateway with and without
//                      OpenTelemetry exporting to a local collector, below)
//   BENCH_OTEL_RATIOS  otel mode: trace ratios measured once each after the default's runs
//                      (e.g. 1,0.01; default none)
//   BENCH_OTEL_PAIRS   otel mode: pairs of runs without and with telemetry (default 3)
//   BENCH_OTEL_TRANSPORTS  otel mode: udp,http (default both)
//   BENCH_INFLIGHT     UDP outstanding requests (default 64) / BENCH_SOCKETS (default 4)
//   BENCH_CONNS        HTTP keep-alive connections (default 64)
//   BENCH_SERVER_CPU / BENCH_LOADGEN_CPU   cores for taskset (default 0 / 1)
//   BENCH_GATEWAY_MAIN gateway entry point (default services/gateway/dist/main.js)
//   BENCH_SKIP_HEAP=1  skip the memory-per-peer measurement
//   BENCH_SKIP_MEMORY_SERIES=1  skip the in-memory store's single-swarm series (bench/memory-swarm-series.mjs)
//   BENCH_CLUSTER_BATCH  TRACKER_REDIS_BATCH_MAX values the cluster-mode runs alternate (default
//                      64,1: batched, and each announce alone, in the same run)
//   BENCH_CLUSTER_PEERS  peer counts of the cluster-mode runs (default 200000,1000000; torrents
//                      keep the load's peers per torrent)
// Results: a markdown table on stdout and bench/.out/results.json.

import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import { dirname, join, relative } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { nodesSnapshot, pin, serverPids, trivialEvalshaCost } from './redis-info.mjs';
import { swarmTable } from './redis-swarm.mjs';

const benchDir = dirname(fileURLToPath(import.meta.url));
const root = join(benchDir, '..');
const outDir = join(benchDir, '.out');
const loadgenBin = join(outDir, 'loadgen');
const HOST = '127.0.0.1';
/** every child process we started; all are killed when we exit, however we exit */
const children = new Set();
/** pids of servers started through a library (the Redis cluster), killed the same way */
const serverPidsToKill = new Set();

const env = process.env;
const durationArg = env.BENCH_DURATION ?? '20';
const duration = /^\d+(\.\d+)?$/.test(durationArg) ? `${durationArg}s` : durationArg;
const durationSec = parseGoDuration(duration);
const load = {
  peers: int('BENCH_PEERS', 200_000),
  torrents: int('BENCH_TORRENTS', 4_000),
  numwant: int('BENCH_NUMWANT', 50),
  inflight: int('BENCH_INFLIGHT', 64),
  sockets: int('BENCH_SOCKETS', 4),
  conns: int('BENCH_CONNS', 64),
};
const serverCpu = env.BENCH_SERVER_CPU ?? '0';
const loadgenCpu = env.BENCH_LOADGEN_CPU ?? '1';
const servers = list('BENCH_SERVERS', ['responder', 'gateway']);
const modes = list('BENCH_MODES', ['udp', 'http', 'cluster', 'swarm', 'events', 'worker', 'otel']);
/** the modes that run the gateway and the responder under bench/loadgen */
const loadModes = modes.filter((m) => m === 'udp' || m === 'http');
const gatewayMain = env.BENCH_GATEWAY_MAIN ?? join(root, 'services/gateway/dist/main.js');
const clusterSizes = intList('BENCH_CLUSTER_PEERS', [200_000, 1_000_000]);
const clusterBatches = intList('BENCH_CLUSTER_BATCH', [64, 1], 1);

function fail(message) {
  process.stderr.write(`\nbench: ${message}\n`);
  killAll();
  process.exit(1);
}

function int(name, fallback) {
  if (env[name] === undefined || env[name] === '') return fallback;
  const n = Number(env[name]);
  if (!Number.isInteger(n) || n < 1) fail(`${name} must be a positive whole number (got ${JSON.stringify(env[name])})`);
  return n;
}

function intList(name, fallback, min = 1000) {
  if (!env[name]) return fallback;
  const items = env[name].split(',').map((x) => Number(x.trim()));
  if (!items.every((n) => Number.isInteger(n) && n >= min)) fail(`${name} must be whole numbers >= ${min} separated by commas (got ${JSON.stringify(env[name])})`);
  return items;
}

function list(name, all) {
  if (!env[name]) return all;
  const items = env[name].split(',').map((s) => s.trim()).filter(Boolean);
  for (const item of items) if (!all.includes(item)) fail(`${name}: unknown ${JSON.stringify(item)} (choose from ${all.join(', ')})`);
  return all.filter((a) => items.includes(a)); // keep the canonical order
}

function parseGoDuration(s) {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(s);
  if (!m) {
    process.stderr.write(`bench: BENCH_DURATION must be seconds (e.g. 20) or a duration like 500ms, 20s, 1m (got ${JSON.stringify(s)})\n`);
    process.exit(1);
  }
  return Number(m[1]) * { ms: 0.001, s: 1, m: 60 }[m[2]];
}

// ---- child processes ---------------------------------------------------------------------------

function track(child) {
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

function killAll() {
  for (const child of children) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  children.clear();
  for (const pid of serverPidsToKill) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  serverPidsToKill.clear();
}

process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    process.stderr.write(`\nbench: ${sig}, stopping\n`);
    killAll();
    process.exit(130);
  });
}
process.on('uncaughtException', (err) => fail(err.stack ?? String(err)));
process.on('unhandledRejection', (err) => fail(err?.stack ?? String(err)));

// ---- prerequisites -----------------------------------------------------------------------------

function checkTools() {
  const ts = spawnSync('taskset', ['-c', serverCpu, 'true']);
  if (ts.error?.code === 'ENOENT') fail('taskset not found: install util-linux (Debian: apt-get install util-linux)');
  if (ts.status !== 0) fail(`taskset -c ${serverCpu} failed: ${String(ts.stderr).trim()} (the bench needs two cores; set BENCH_SERVER_CPU / BENCH_LOADGEN_CPU)`);
  const ts2 = spawnSync('taskset', ['-c', loadgenCpu, 'true']);
  if (ts2.status !== 0) fail(`taskset -c ${loadgenCpu} failed: ${String(ts2.stderr).trim()} (the bench needs two cores; set BENCH_SERVER_CPU / BENCH_LOADGEN_CPU)`);
  if (serverCpu === loadgenCpu) process.stderr.write('bench: WARNING: server and load generator share a core\n');
  const go = spawnSync('go', ['version'], { encoding: 'utf8' });
  if (go.error?.code === 'ENOENT') fail('go not found: the load generator (bench/loadgen) is written in Go; install Go >= 1.22');
  if (go.status !== 0) fail(`\`go version\` failed: ${go.stderr}`);
  return go.stdout.trim();
}

function buildLoadgen() {
  mkdirSync(outDir, { recursive: true });
  process.stderr.write('bench: building bench/loadgen\n');
  const r = spawnSync('go', ['build', '-o', loadgenBin, '.'], {
    cwd: join(benchDir, 'loadgen'),
    encoding: 'utf8',
    // standard library only: never reach for the network
    env: { ...env, GOTOOLCHAIN: 'local', GOPROXY: 'off', CGO_ENABLED: '0' },
    timeout: 300_000,
  });
  if (r.status !== 0) fail(`go build of bench/loadgen failed:\n${r.stderr || r.error}`);
}

// ---- ports and readiness -----------------------------------------------------------------------

/**
 * A port free for TCP and UDP, below the kernel's ephemeral range (the test helpers' freePort:
 * a port the OS picks can be taken by an outgoing connection before the server binds it).
 */
function freePort() {
  return createRequire(import.meta.url)('../packages/redis-store/dist/testing/index.js').freePort();
}

function httpOk(port, path) {
  return new Promise((resolve) => {
    const req = http.get({ host: HOST, port, path, agent: false, timeout: 1000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200));
      res.on('error', () => resolve(false));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

function udpConnectOk(port) {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    const tid = randomBytes(4);
    const done = (ok) => {
      clearTimeout(timer);
      s.close();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 500);
    s.on('error', () => done(false));
    s.on('message', (msg) => {
      if (msg.length >= 16 && msg.readUInt32BE(0) === 0 && msg.subarray(4, 8).equals(tid)) done(true);
    });
    const pkt = Buffer.alloc(16);
    pkt.writeUInt32BE(0x417, 0);
    pkt.writeUInt32BE(0x27101980, 4);
    pkt.writeUInt32BE(0, 8);
    tid.copy(pkt, 12);
    s.send(pkt, port, HOST, (err) => err && done(false));
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- servers -----------------------------------------------------------------------------------

function tail(file, lines = 20) {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no output)';
  }
}

async function startServer(name, mode, { extraEnv = {}, tag = '' } = {}) {
  const httpPort = await freePort();
  const udpPort = await freePort();
  let args;
  let childEnv = env;
  if (name === 'responder') {
    args = ['node', join(benchDir, 'responder.mjs'), '--host', HOST, '--http-port', String(httpPort), '--udp-port', String(udpPort)];
  } else {
    if (!existsSync(gatewayMain)) fail(`${relative(root, gatewayMain)} not found: build the gateway first (\`npm run build\`)`);
    args = ['node', gatewayMain];
    childEnv = {
      ...env,
      NODE_ENV: 'production',
      TRACKER_HOST: HOST,
      TRACKER_HTTP_PORT: String(httpPort),
      TRACKER_UDP_PORT: String(udpPort),
      TRACKER_CONNECTION_SECRET: randomBytes(32).toString('hex'),
      TRACKER_MAX_NUMWANT: '50',
      TRACKER_LOG_LEVEL: env.TRACKER_LOG_LEVEL ?? 'warn',
      ...extraEnv,
    };
  }
  const logFile = join(outDir, `${name}-${mode}${tag}.log`);
  const log = createWriteStream(logFile);
  await new Promise((r) => log.on('open', r));
  // taskset execs the command, so the child's pid is the server's pid
  const child = track(spawn('taskset', ['-c', serverCpu, ...args], { cwd: root, env: childEnv, stdio: ['ignore', log, log] }));
  let exited = null;
  child.on('exit', (code, signal) => (exited = { code, signal }));

  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited) fail(`${name} exited during start-up (${exited.signal ?? `code ${exited.code}`}); its output (${relative(root, logFile)}):\n${tail(logFile)}`);
    const ready = mode === 'udp' ? await udpConnectOk(udpPort) : await httpOk(httpPort, '/health');
    if (ready) break;
    if (Date.now() > deadline) fail(`${name} did not answer ${mode === 'udp' ? 'a UDP connect' : 'GET /health'} within 30 s; its output:\n${tail(logFile)}`);
    await sleep(200);
  }
  return {
    pid: child.pid,
    httpPort,
    target: `${HOST}:${mode === 'udp' ? udpPort : httpPort}`,
    logFile,
    isAlive: () => !exited,
    exitInfo: () => exited,
    async stop() {
      if (exited) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await gone;
      clearTimeout(t);
      log.end();
    },
  };
}

// ---- one run -----------------------------------------------------------------------------------

function runLoadgen(mode, server, { peers = load.peers, torrents = load.torrents, extraArgs = [] } = {}) {
  const args = [
    '-c', loadgenCpu, loadgenBin,
    '-mode', mode,
    '-target', server.target,
    '-peers', String(peers),
    '-torrents', String(torrents),
    '-numwant', String(load.numwant),
    '-duration', duration,
    '-warmup',
    '-json',
    '-server-pid', String(server.pid),
  ];
  if (/^\d+$/.test(serverCpu) && /^\d+$/.test(loadgenCpu)) args.push('-server-core', serverCpu, '-loadgen-core', loadgenCpu);
  if (mode === 'udp') args.push('-inflight', String(load.inflight), '-sockets', String(load.sockets));
  else args.push('-conns', String(load.conns));
  args.push(...extraArgs);
  // bound: warmup (at >= 1,000 announces/s), ramp-up, window, drain
  const limitMs = (peers / 1000 + durationSec + 30) * 1000;
  return new Promise((resolve) => {
    const child = track(spawn('taskset', args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] }));
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => {
      err += d;
      process.stderr.write(`  ${String(d).trimEnd().split('\n').join('\n  ')}\n`);
    });
    const timer = setTimeout(() => {
      err += `\nbench: load generator still running after ${Math.round(limitMs / 1000)} s, killed`;
      child.kill('SIGKILL');
    }, limitMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const line = out.trim().split('\n').pop() ?? '';
      try {
        if (code !== 0) throw new Error();
        resolve({ ok: true, result: JSON.parse(line) });
      } catch {
        resolve({ ok: false, error: `load generator failed (${signal ?? `exit code ${code}`}): ${err.trim().split('\n').slice(-5).join(' | ')}` });
      }
    });
  });
}

// ---- cluster mode: one gateway on a local Redis Cluster ----------------------------------------
//
// The gateway (TRACKER_STORE=redis) on the server core as in the embedded runs; the test cluster
// (3 masters + 3 replicas from Debian's redis-server) shares the other core with the load
// generator (CPU time per process does not depend on who else runs on the core; a gateway short
// of CPU would batch fewer commands per round trip and make every Redis figure worse). Per size:
// announces/s, the masters' CPU over the measured window (from /proc, -watch-pids) per announce,
// the masters' used_memory growth per peer, and the same run's do-nothing EVALSHA as the
// reference (redis-info.mjs).

async function clusterBench() {
  if (spawnSync('redis-server', ['--version']).error?.code === 'ENOENT') {
    return { skipped: 'redis-server not found (Debian: apt-get install redis-server)' };
  }
  const require = createRequire(import.meta.url);
  const { startRedisTestServer } = require('../packages/redis-store/dist/testing/index.js');
  const { Cluster } = require('ioredis');
  // always a cluster started here: its processes are pinned and measured
  const localEnv = { ...env, REDIS_TEST_PROVIDER: 'local' };
  delete localEnv.REDIS_CLUSTER_NODES;
  process.stderr.write('\nbench: cluster mode: starting a local Redis Cluster (3 masters + 3 replicas)\n');
  const redis = await startRedisTestServer('cluster', localEnv);
  const client = new Cluster(redis.nodes, { scaleReads: 'master', enableAutoPipelining: true });
  const rows = [];
  try {
    await new Promise((resolve, reject) => {
      client.once('ready', resolve);
      client.once('error', reject);
    });
    const masters = client.nodes('master');
    const masterPids = await serverPids(masters);
    const allPids = [...masterPids, ...(await serverPids(client.nodes('slave')))];
    if (allPids.some((p) => !p)) throw new Error('INFO server gave no process_id for some node');
    for (const p of allPids) serverPidsToKill.add(p);
    if (!allPids.every((p) => pin(p, loadgenCpu))) throw new Error(`could not pin the Redis servers to core ${loadgenCpu}`);
    const nodesEnv = redis.nodes.map((n) => `${n.host}:${n.port}`).join(',');
    const perTorrent = load.peers / load.torrents;
    for (const peers of clusterSizes) for (const batchMax of clusterBatches) {
      const torrents = Math.max(1, Math.round(peers / perTorrent));
      await Promise.all(masters.map((m) => m.flushall()));
      // the replicas drop their copies too: let that settle before the baseline
      await sleep(500);
      const before = await nodesSnapshot(masters);
      process.stderr.write(`\nbench: cluster / ${fmtInt(peers)} peers, TRACKER_REDIS_BATCH_MAX=${batchMax}: gateway on core ${serverCpu}, Redis with the load generator on core ${loadgenCpu}\n`);
      const gw = await startServer('gateway', 'udp', {
        tag: `-redis-${peers}-batch-${batchMax}`,
        extraEnv: { TRACKER_STORE: 'redis', REDIS_CLUSTER_NODES: nodesEnv, TRACKER_REDIS_BATCH_MAX: String(batchMax) },
      });
      const r = await runLoadgen('udp', gw, { peers, torrents, extraArgs: ['-watch-pids', masterPids.join(',')] });
      const after = await nodesSnapshot(masters);
      const batches = await batchSizes(gw.httpPort).catch(() => undefined);
      const died = !gw.isAlive();
      await gw.stop();
      if (died) throw new Error(`the gateway died during the run; see ${relative(root, gw.logFile)}`);
      if (!r.ok) throw new Error(r.error);
      const x = r.result;
      if (!(x.announces > 0) || x.watched_cpu_seconds === undefined) throw new Error('no successful announce, or no CPU figure for the Redis masters');
      process.stderr.write('bench: cluster: reference, a do-nothing EVALSHA from this process\n');
      const ref = await trivialEvalshaCost(client, masters, { torrents });
      const row = {
        peers,
        torrents,
        batchMax,
        batches,
        gatewayCpuUsPerAnnounce: (x.server_cpu * x.seconds * 1e6) / x.announces,
        announcesPerS: x.announces_per_sec,
        p50us: x.p50_us,
        p99us: x.p99_us,
        errors: x.errors,
        timeouts: x.timeouts,
        redisCpuUsPerAnnounce: (x.watched_cpu_seconds * 1e6) / x.announces,
        redisSysShare: x.watched_cpu_seconds > 0 ? x.watched_sys_seconds / x.watched_cpu_seconds : undefined,
        redisBytesPerPeer: (after.mem - before.mem) / peers,
        trivialEvalshaCpuUs: ref.cpuUs,
        gatewayCpu: x.server_cpu,
        // INFO commandstats over warmup and window (results.json only): calls and µs per announce
        commandsPerAnnounce: Object.fromEntries(
          Object.entries(after.cmds)
            .map(([k, c]) => [k, c.calls - (before.cmds[k]?.calls ?? 0), c.usec - (before.cmds[k]?.usec ?? 0)])
            .filter(([k, calls]) => calls > 0 && !k.startsWith('info') && !k.startsWith('flushall'))
            .map(([k, calls, usec]) => [k, { calls: calls / (x.announces + (x.warmup?.announces ?? 0)), us: usec / (x.announces + (x.warmup?.announces ?? 0)) }]),
        ),
      };
      row.ratioToTrivial = row.redisCpuUsPerAnnounce / row.trivialEvalshaCpuUs;
      process.stderr.write(`bench: cluster / ${fmtInt(peers)} peers, batch ${batchMax}: ${row.gatewayCpuUsPerAnnounce.toFixed(1)} µs gateway CPU and ${row.redisCpuUsPerAnnounce.toFixed(1)} µs Redis CPU per announce (do-nothing EVALSHA ${ref.cpuUs.toFixed(1)} µs), ${row.redisBytesPerPeer.toFixed(0)} B per peer, batches: ${fmtBatches(batches)}\n`);
      rows.push(row);
    }
    return { rows };
  } finally {
    client.disconnect();
    await redis.stop();
    serverPidsToKill.clear();
  }
}

/**
 * The gateway's tracker_redis_batch_size histogram: mean, and the bucket bounds under which half,
 * 90 % and 99 % of the batch calls fell.
 */
async function batchSizes(httpPort) {
  const text = await (await fetch(`http://${HOST}:${httpPort}/metrics`)).text();
  const buckets = [...text.matchAll(/^tracker_redis_batch_size_bucket\{le="([^"]+)"\} (\S+)$/gm)].map((m) => [m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2])]);
  const count = Number(text.match(/^tracker_redis_batch_size_count (\S+)$/m)?.[1]);
  const sum = Number(text.match(/^tracker_redis_batch_size_sum (\S+)$/m)?.[1]);
  const resent = Number(text.match(/^tracker_redis_batch_resent_total (\S+)$/m)?.[1]);
  if (!(count > 0)) return undefined;
  const under = (q) => buckets.find(([, c]) => c >= q * count)?.[0];
  return { calls: count, mean: sum / count, p50: under(0.5), p90: under(0.9), p99: under(0.99), resent };
}

const fmtBatches = (b) => (b === undefined ? '–' : `mean ${b.mean.toFixed(1)}, ≤ ${b.p50} / ${b.p90} / ${b.p99} (p50 / p90 / p99)`);

// ---- events: what publishing to Kafka costs the gateway ----------------------------------------
//
// A local Kafka broker (deploy/kafka.sh) on the load generator's core; the UDP gateway on its own
// core as in the embedded runs, without and with KAFKA_BROKERS, twice each, alternating. The
// gateway's CPU per announce (its CPU over the window ÷ announces) with and without, in the same
// run, and what became of the events (the gateway's /metrics).

async function eventsBench() {
  for (const cmd of ['java', 'mvn']) {
    if (spawnSync('sh', ['-c', `command -v ${cmd}`]).status !== 0) return { skipped: `${cmd} not found (Debian: apt-get install openjdk-17-jre-headless maven)` };
  }
  const kafkaPort = await freePort();
  const controllerPort = await freePort();
  const dir = join(outDir, `kafka-${process.pid}`);
  process.stderr.write(`\nbench: events: starting a Kafka broker on core ${loadgenCpu} (deploy/kafka.sh)\n`);
  const log = createWriteStream(join(outDir, 'kafka.log'));
  await new Promise((r) => log.on('open', r));
  const broker = track(
    spawn('taskset', ['-c', loadgenCpu, 'bash', join(root, 'deploy/kafka.sh'), 'run'], {
      cwd: root,
      env: { ...env, KAFKA_PORT: String(kafkaPort), KAFKA_CONTROLLER_PORT: String(controllerPort), KAFKA_DIR: dir, KAFKA_PARTITIONS: '6' },
      stdio: ['ignore', log, log],
    }),
  );
  try {
    const deadline = Date.now() + 120_000;
    while (!(await new Promise((r) => net.connect(kafkaPort, HOST).once('connect', function () { this.destroy(); r(true); }).once('error', () => r(false))))) {
      if (broker.exitCode !== null) throw new Error(`the Kafka broker exited; see ${relative(root, join(outDir, 'kafka.log'))}`);
      if (Date.now() > deadline) throw new Error('the Kafka broker did not answer within 120 s');
      await sleep(200);
    }
    const runs = [];
    for (const withKafka of [false, true, false, true]) {
      process.stderr.write(`\nbench: events: UDP gateway ${withKafka ? 'publishing to Kafka' : 'without Kafka'}\n`);
      const gw = await startServer('gateway', 'udp', {
        tag: withKafka ? '-kafka' : '-nokafka',
        extraEnv: withKafka ? { KAFKA_BROKERS: `${HOST}:${kafkaPort}`, TRACKER_GATEWAY_ID: 'bench' } : {},
      });
      const r = await runLoadgen('udp', gw);
      let metrics = '';
      if (withKafka) {
        // (the last flush, then the counts)
        await sleep(1000);
        metrics = await new Promise((resolve) => {
          http.get({ host: HOST, port: gw.httpPort, path: '/metrics', agent: false }, (res) => {
            let body = '';
            res.on('data', (d) => (body += d));
            res.on('end', () => resolve(body));
          }).on('error', () => resolve(''));
        });
      }
      const died = !gw.isAlive();
      await gw.stop();
      if (died) throw new Error(`the gateway died during the run; see ${relative(root, gw.logFile)}`);
      if (!r.ok) throw new Error(r.error);
      const x = r.result;
      const metric = (re) => [...metrics.matchAll(re)].reduce((n, m) => n + Number(m[1]), 0);
      runs.push({
        withKafka,
        announcesPerS: x.announces_per_sec,
        p99us: x.p99_us,
        gatewayCpuUsPerAnnounce: (x.server_cpu * x.seconds * 1e6) / x.announces,
        eventsPublished: withKafka ? metric(/^tracker_events_published_total (\d+)/gm) : undefined,
        eventsDropped: withKafka ? metric(/^tracker_events_dropped_total\{[^}]*\} (\d+)/gm) : undefined,
        announcesTotal: withKafka ? metric(/^tracker_announces_total\{[^}]*\} (\d+)/gm) : undefined,
      });
    }
    const mean = (k, w) => runs.filter((r) => r.withKafka === w).reduce((n, r) => n + r[k], 0) / 2;
    const without = mean('gatewayCpuUsPerAnnounce', false);
    const withK = mean('gatewayCpuUsPerAnnounce', true);
    const lag = await eventsLag(kafkaPort);
    return { runs, cpuUsWithout: without, cpuUsWith: withK, addedCpuUs: withK - without, lag };
  } finally {
    broker.kill('SIGKILL');
    spawnSync('rm', ['-rf', dir]);
  }
}

/**
 * The end-to-end lag: the publishing UDP gateway under the same load, with a stats worker (and a
 * local Redis Cluster) counting its events on the load generator's core. Every 500 ms during the
 * run the worker's stats_latest_event_age_seconds (now minus the newest event it has written);
 * after the run, how long until it has written every event the gateway published.
 */
async function eventsLag(kafkaPort) {
  const require = createRequire(import.meta.url);
  const { startRedisTestServer } = require('../packages/redis-store/dist/testing/index.js');
  const localEnv = { ...env, REDIS_TEST_PROVIDER: 'local' };
  delete localEnv.REDIS_CLUSTER_NODES;
  process.stderr.write('\nbench: events: end-to-end lag (a stats worker and a Redis Cluster on the load generator\'s core)\n');
  const redis = await startRedisTestServer('cluster', localEnv);
  const metricsPort = await freePort();
  const topic = `lag-${process.pid}`;
  const workerLog = createWriteStream(join(outDir, 'worker-lag.log'));
  await new Promise((r) => workerLog.on('open', r));
  const worker = track(
    spawn('taskset', ['-c', loadgenCpu, process.execPath, join(root, 'services/stats-worker/dist/main.js')], {
      cwd: root,
      env: { ...env, KAFKA_BROKERS: `${HOST}:${kafkaPort}`, KAFKA_TOPIC: topic, STATS_GROUP_ID: topic, REDIS_CLUSTER_NODES: redis.nodes.map((n) => `${n.host}:${n.port}`).join(','), STATS_WORKER_HOST: HOST, STATS_WORKER_PORT: String(metricsPort) },
      stdio: ['ignore', workerLog, workerLog],
    }),
  );
  const get = (port, path) =>
    new Promise((resolve) => {
      http.get({ host: HOST, port, path, agent: false }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve(res.statusCode === 200 ? body : ''));
      }).on('error', () => resolve(''));
    });
  const metric = (text, name) => Number(new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(text)?.[1] ?? NaN);
  let gw;
  try {
    for (let t = 0; (await get(metricsPort, '/health')) === ''; t++) {
      if (worker.exitCode !== null || t > 600) throw new Error(`the stats worker did not start; see ${relative(root, join(outDir, 'worker-lag.log'))}`);
      await sleep(100);
    }
    gw = await startServer('gateway', 'udp', { tag: '-lag', extraEnv: { KAFKA_BROKERS: `${HOST}:${kafkaPort}`, KAFKA_TOPIC: topic, TRACKER_GATEWAY_ID: 'bench' } });
    const ages = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const age = metric(await get(metricsPort, '/metrics'), 'stats_latest_event_age_seconds');
        if (age > 0) ages.push(age);
        await sleep(500);
      }
    })();
    const r = await runLoadgen('udp', gw);
    sampling = false;
    await sampler;
    if (!r.ok) throw new Error(r.error);
    await sleep(1000);
    const published = metric(await get(gw.httpPort, '/metrics'), 'tracker_events_published_total');
    if (!(published > 0)) throw new Error('the gateway published no events (or its /metrics did not answer)');
    const stopped = performance.now();
    let written = 0;
    while ((written = metric(await get(metricsPort, '/metrics'), 'stats_events_written_total')) < published) {
      if (performance.now() - stopped > 600_000) throw new Error(`the worker wrote ${written} of ${published} events in 10 minutes`);
      await sleep(200);
    }
    ages.sort((a, b) => a - b);
    const q = (f) => ages[Math.min(ages.length - 1, Math.floor(f * ages.length))];
    return {
      announcesPerS: r.result.announces_per_sec,
      published,
      samples: ages.length,
      ageP50s: q(0.5),
      ageP99s: q(0.99),
      ageMaxS: ages[ages.length - 1],
      drainS: (performance.now() - stopped) / 1000 + 1,
    };
  } catch (err) {
    return { error: String(err.message ?? err) };
  } finally {
    await gw?.stop();
    worker.kill('SIGKILL');
    workerLog.end();
    await redis.stop();
  }
}

// ---- otel: what OpenTelemetry costs the gateway ----------------------------------------------
//
// The test collector (scripts/otel-collector.sh; OTLP over HTTP, debug exporter at `basic`) on the
// load generator's core; the gateway on its own core as in the embedded runs, over UDP and over
// HTTP, without an OTLP endpoint (telemetry off: the SDK is not loaded) and with one (the default
// sampler, traces and metrics exported), in BENCH_OTEL_PAIRS pairs of runs back to back (default
// 3; off first, then on first, and so on, so that a machine getting busier or quieter favours
// neither). The ratio: the median over the pairs of announces/s with telemetry ÷ without; beside
// it the ratio of the gateway's CPU per announce (means). BENCH_OTEL_RATIOS adds one run per
// trace ratio, and from each the gateway CPU a traced announce costs.

const OTEL_OFF = { OTEL_EXPORTER_OTLP_ENDPOINT: '', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '', OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: '', OTEL_TRACES_SAMPLER: '', OTEL_TRACES_SAMPLER_ARG: '' };

async function otelBench() {
  const found = spawnSync('bash', [join(root, 'scripts/otel-collector.sh'), 'path'], { encoding: 'utf8' });
  if (found.status !== 0) return { skipped: 'no collector binary: build it with `bash scripts/otel-collector.sh build` (needs Go, about 3 minutes)' };
  const collectorBin = found.stdout.trim();
  const pairs = int('BENCH_OTEL_PAIRS', 3);
  const transports = list('BENCH_OTEL_TRANSPORTS', ['udp', 'http']);
  const extraRatios = (env.BENCH_OTEL_RATIOS ?? '').split(',').map((x) => x.trim()).filter(Boolean).map(Number);
  if (!extraRatios.every((r) => r > 0 && r <= 1)) fail(`BENCH_OTEL_RATIOS must be numbers from 0 to 1 separated by commas (got ${JSON.stringify(env.BENCH_OTEL_RATIOS)})`);
  const otlpPort = await freePort();
  process.stderr.write(`\nbench: otel: starting the test collector on core ${loadgenCpu}\n`);
  const logFile = join(outDir, 'otelcol.log');
  const log = createWriteStream(logFile);
  await new Promise((r) => log.on('open', r));
  const collector = track(
    spawn('taskset', ['-c', loadgenCpu, collectorBin, '--config', `file:${join(root, 'scripts/otelcol-config.yaml')}`], {
      cwd: root,
      env: { ...env, OTLP_PORT: String(otlpPort), OTELCOL_VERBOSITY: 'basic' },
      stdio: ['ignore', log, log],
    }),
  );
  try {
    const deadline = Date.now() + 30_000;
    while (!(await new Promise((r) => net.connect(otlpPort, HOST).once('connect', function () { this.destroy(); r(true); }).once('error', () => r(false))))) {
      if (collector.exitCode !== null) throw new Error(`the collector exited; see ${relative(root, logFile)}`);
      if (Date.now() > deadline) throw new Error('the collector did not answer within 30 s');
      await sleep(100);
    }
    const on = { ...OTEL_OFF, OTEL_EXPORTER_OTLP_ENDPOINT: `http://${HOST}:${otlpPort}` };
    const plan = [];
    for (const mode of transports) {
      for (let i = 0; i < pairs; i++) for (const telemetry of i % 2 === 0 ? ['off', 'default'] : ['default', 'off']) plan.push({ mode, telemetry, pair: i });
      for (const ratio of extraRatios) plan.push({ mode, telemetry: String(ratio) });
    }
    const runs = [];
    for (const { mode, telemetry, pair } of plan) {
      process.stderr.write(`\nbench: otel / ${mode}: telemetry ${telemetry}\n`);
      const extraEnv = telemetry === 'off' ? OTEL_OFF : telemetry === 'default' ? on : { ...on, OTEL_TRACES_SAMPLER_ARG: telemetry };
      const gw = await startServer('gateway', mode, { tag: `-otel-${telemetry}`, extraEnv });
      const r = await runLoadgen(mode, gw);
      const died = !gw.isAlive();
      await gw.stop();
      if (died) throw new Error(`the gateway died during the run; see ${relative(root, gw.logFile)}`);
      if (!r.ok) throw new Error(r.error);
      const x = r.result;
      process.stderr.write(`bench: otel / ${mode} / ${telemetry}: ${fmtInt(x.announces_per_sec)} announces/s\n`);
      runs.push({ mode, telemetry, pair, announcesPerS: x.announces_per_sec, p99us: x.p99_us, gatewayCpuUsPerAnnounce: (x.server_cpu * x.seconds * 1e6) / x.announces });
    }
    const spans = [...readFileSync(logFile, 'utf8').matchAll(/"spans": (\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
    const summary = {};
    for (const mode of transports) {
      const of = (t) => runs.filter((r) => r.mode === mode && r.telemetry === t);
      const mean = (t, k) => of(t).reduce((n, r) => n + r[k], 0) / of(t).length;
      const pairRatios = [];
      for (let i = 0; i < pairs; i++) {
        const [off, on] = ['off', 'default'].map((t) => of(t).find((r) => r.pair === i));
        pairRatios.push(on.announcesPerS / off.announcesPerS);
      }
      pairRatios.sort((a, b) => a - b);
      const offCpu = mean('off', 'gatewayCpuUsPerAnnounce');
      summary[mode] = {
        off: mean('off', 'announcesPerS'),
        default: mean('default', 'announcesPerS'),
        pairRatios,
        ratio: pairRatios[Math.floor(pairs / 2)],
        cpuRatio: offCpu / mean('default', 'gatewayCpuUsPerAnnounce'),
        ratios: Object.fromEntries(extraRatios.map((q) => [q, { ratio: mean(String(q), 'announcesPerS') / mean('off', 'announcesPerS'), cpuUsPerTraced: (mean(String(q), 'gatewayCpuUsPerAnnounce') - offCpu) / q }])),
      };
    }
    return { runs, summary, spans };
  } finally {
    collector.kill('SIGKILL');
    log.end();
  }
}

function otelTable(o) {
  const out = ['| run | mode | pair | telemetry | announces/s | p99 µs | gateway CPU µs / announce |', '|---:|---|---:|---|---:|---:|---:|'];
  o.runs.forEach((r, i) => {
    out.push(`| ${i + 1} | ${r.mode} | ${r.pair === undefined ? '' : r.pair + 1} | ${r.telemetry === 'off' || r.telemetry === 'default' ? r.telemetry : `ratio ${r.telemetry}`} | ${fmtInt(r.announcesPerS)} | ${fmtInt(r.p99us)} | ${r.gatewayCpuUsPerAnnounce.toFixed(2)} |`);
  });
  out.push('');
  for (const [mode, s] of Object.entries(o.summary)) {
    const extra = Object.entries(s.ratios)
      .map(([q, v]) => `; at trace ratio ${q}: ${v.ratio.toFixed(3)} (a traced announce costs ${v.cpuUsPerTraced.toFixed(0)} µs of gateway CPU)`)
      .join('');
    out.push(
      `${mode.toUpperCase()}: with telemetry (default sampler) ÷ without: **${s.ratio.toFixed(3)}** (median of the pairs' ${s.pairRatios.map((r) => r.toFixed(3)).join(', ')}; ` +
        `means ${fmtInt(s.default)} against ${fmtInt(s.off)} announces/s); CPU per announce without ÷ with: ${s.cpuRatio.toFixed(3)}${extra}.`,
    );
  }
  out.push('', `The collector received ${fmtInt(o.spans)} spans in all.`);
  return out.join('\n');
}

function eventsTable(e) {
  const out = [
    '| run | Kafka | announces/s | p99 µs | gateway CPU µs / announce | events published | events dropped | announces answered (warmup included) |',
    '|---:|---|---:|---:|---:|---:|---:|---:|',
  ];
  e.runs.forEach((r, i) => {
    out.push(
      `| ${i + 1} | ${r.withKafka ? 'publishing' : 'off'} | ${fmtInt(r.announcesPerS)} | ${fmtInt(r.p99us)} | ${r.gatewayCpuUsPerAnnounce.toFixed(2)} | ${r.withKafka ? fmtInt(r.eventsPublished) : ''} | ${r.withKafka ? fmtInt(r.eventsDropped) : ''} | ${r.withKafka ? fmtInt(r.announcesTotal) : ''} |`,
    );
  });
  out.push('', `Gateway CPU per announce: ${e.cpuUsWithout.toFixed(2)} µs without Kafka, ${e.cpuUsWith.toFixed(2)} µs publishing (means of two runs each): publishing adds ${e.addedCpuUs.toFixed(2)} µs.`);
  const l = e.lag;
  if (l?.error) out.push('', `End-to-end lag run failed: ${l.error}`);
  else if (l) {
    out.push(
      '',
      `End-to-end lag (the same load, a stats worker and a Redis Cluster on the load generator's core): ${fmtInt(l.announcesPerS)} announces/s, ${fmtInt(l.published)} events published; ` +
        `the newest written event's age over ${l.samples} samples: median ${l.ageP50s.toFixed(2)} s, p99 ${l.ageP99s.toFixed(2)} s, longest ${l.ageMaxS.toFixed(2)} s; every event written ${l.drainS.toFixed(1)} s after the load stopped.`,
    );
  }
  return out.join('\n');
}

function clusterTable(rows) {
  const out = [
    '| peers | torrents | batch max | announces/s | p50 µs | p99 µs | errors | timeouts | gateway CPU µs / announce | Redis CPU µs / announce (kernel share) | do-nothing EVALSHA µs | ratio | Redis bytes / peer | batch sizes |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
  ];
  for (const r of rows) {
    out.push(
      `| ${fmtInt(r.peers)} | ${fmtInt(r.torrents)} | ${r.batchMax} | ${fmtInt(r.announcesPerS)} | ${fmtInt(r.p50us)} | ${fmtInt(r.p99us)} | ${fmtInt(r.errors)} | ${fmtInt(r.timeouts)} | ${r.gatewayCpuUsPerAnnounce.toFixed(1)} | ` +
        `${r.redisCpuUsPerAnnounce.toFixed(1)} (${fmtPct(r.redisSysShare)}) | ${r.trivialEvalshaCpuUs.toFixed(1)} | ${r.ratioToTrivial.toFixed(1)} | ${r.redisBytesPerPeer.toFixed(0)} | ${fmtBatches(r.batches)} |`,
    );
  }
  return out.join('\n');
}

// ---- report ------------------------------------------------------------------------------------

const fmtInt = (n) => (n === undefined || n === null ? '–' : Math.round(n).toLocaleString('en-US'));
const fmtPct = (f) => (f === undefined || f === null ? '–' : `${Math.round(f * 100)}%`);
/** CPU of our process, and in brackets how busy its core was (other processes included) */
const fmtCpu = (own, core) => (core === undefined || core === null ? fmtPct(own) : `${fmtPct(own)} (${fmtPct(core)})`);

function table(runs) {
  const rows = [
    '| mode | server | announces/s | p50 µs | p99 µs | errors | timeouts | reply bytes | server CPU | loadgen CPU | gateway / responder |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const run of runs) {
    const r = run.result;
    if (!r) {
      rows.push(`| ${run.mode} | ${run.server} | failed: ${run.error.replaceAll('|', '/')} | | | | | | | | |`);
      continue;
    }
    const ratio = run.server === 'gateway' && run.ratio !== undefined ? run.ratio.toFixed(3) : '';
    rows.push(
      `| ${run.mode} | ${run.server} | ${fmtInt(r.announces_per_sec)} | ${fmtInt(r.p50_us)} | ${fmtInt(r.p99_us)} | ` +
        `${fmtInt(r.errors)}${r.failures ? ` (${fmtInt(r.failures)} failure)` : ''} | ${fmtInt(r.timeouts)} | ${r.mean_reply_bytes} | ` +
        `${fmtCpu(r.server_cpu, r.server_core_busy)} | ${fmtCpu(r.loadgen_cpu, r.loadgen_core_busy)} | ${ratio} |`,
    );
  }
  return rows.join('\n');
}

/** The JSON object on the last line of a child's output, or null (the caller reports the failure). */
function lastJsonLine(text) {
  try {
    return JSON.parse(text.trim().split('\n').pop());
  } catch {
    return null;
  }
}

async function main() {
  const goVersion = checkTools();
  if (os.cpus().length < 2) process.stderr.write('bench: WARNING: fewer than two CPUs; figures will be meaningless\n');
  buildLoadgen();

  const started = new Date();
  const runs = [];
  let failed = false;
  for (const mode of loadModes) {
    for (const name of servers) {
      process.stderr.write(`\nbench: ${mode} / ${name}: starting the server on core ${serverCpu}\n`);
      const server = await startServer(name, mode);
      process.stderr.write(`bench: ${mode} / ${name}: pid ${server.pid}, ${server.target}; load generator on core ${loadgenCpu}\n`);
      const r = await runLoadgen(mode, server);
      const died = !server.isAlive();
      await server.stop();
      const run = { mode, server: name };
      if (died) {
        const e = server.exitInfo();
        run.error = `${name} died during the run (${e.signal ?? `code ${e.code}`}); see ${relative(root, server.logFile)}`;
      } else if (!r.ok) {
        run.error = r.error;
      } else {
        run.result = r.result;
        if (r.result.announces === 0) run.error = 'no successful announce';
      }
      if (run.error) {
        failed = true;
        process.stderr.write(`bench: ${mode} / ${name}: ${run.error}\n`);
      } else {
        const x = r.result;
        process.stderr.write(`bench: ${mode} / ${name}: ${fmtInt(x.announces_per_sec)} announces/s, p50 ${x.p50_us} µs, p99 ${x.p99_us} µs\n`);
        // The server is the bottleneck only if it keeps its core busy.
        const warnings = [];
        if (x.server_cpu !== undefined && x.server_cpu < 0.9 && x.loadgen_cpu > 0.9) {
          warnings.push(`the load generator looks like the bottleneck (server CPU ${fmtPct(x.server_cpu)}, loadgen CPU ${fmtPct(x.loadgen_cpu)})`);
        }
        for (const [who, own, core] of [['server', x.server_cpu, x.server_core_busy], ['load generator', x.loadgen_cpu, x.loadgen_core_busy]]) {
          // loopback softirq work also lands here (≈ 15–20% of the load generator's core when quiet)
          if (own !== undefined && core !== undefined && core - own > 0.3) {
            warnings.push(`other work (other processes, kernel network processing) took about ${fmtPct(core - own)} of the ${who}'s core: the figures are noisy, compare ratios`);
          }
        }
        if (warnings.length) {
          run.warning = warnings.join('; ');
          process.stderr.write(`bench: WARNING: ${run.warning}\n`);
        }
      }
      runs.push(run);
    }
  }
  const ratios = {};
  for (const mode of loadModes) {
    const ref = runs.find((r) => r.mode === mode && r.server === 'responder')?.result;
    const gw = runs.find((r) => r.mode === mode && r.server === 'gateway');
    if (ref?.announces_per_sec > 0 && gw?.result) {
      gw.ratio = gw.result.announces_per_sec / ref.announces_per_sec;
      ratios[mode] = Math.round(gw.ratio * 1000) / 1000;
    }
  }

  const report = {
    date: started.toISOString(),
    node: process.version,
    go: goVersion,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    load: { ...load, durationSec, serverCpu, loadgenCpu },
    runs,
    ratios,
  };

  if (runs.length > 0) {
    process.stdout.write(`\n## Throughput (${fmtInt(load.peers)} peers in ${fmtInt(load.torrents)} torrents, numwant ${load.numwant}, ${durationSec} s per run)\n\n`);
    process.stdout.write(`${table(runs)}\n`);
    for (const run of runs) if (run.warning) process.stdout.write(`\nWARNING (${run.mode} / ${run.server}): ${run.warning}\n`);
    process.stdout.write(
      '\nratio = gateway announces/s ÷ responder announces/s in this run; the responder answers with a fixed reply and no tracker work ' +
        '(the ceiling for Node on one core). CPU is the share of one core the process used over the measured window; in brackets, how busy that core was in all (other processes included).\n',
    );
  }

  if (env.BENCH_SKIP_HEAP !== '1') {
    process.stderr.write('\nbench: memory per peer (node --expose-gc bench/heap-per-peer.mjs)\n');
    const heap = spawnSync(process.execPath, ['--expose-gc', join(benchDir, 'heap-per-peer.mjs'), '--json'], {
      cwd: root,
      encoding: 'utf8',
      timeout: 600_000,
      killSignal: 'SIGKILL',
    });
    const parsed = lastJsonLine(heap.stdout);
    if (!parsed) {
      failed = true;
      report.heap = { error: (heap.stderr || String(heap.error ?? `exit ${heap.status}`)).trim() };
      process.stdout.write(`\n## Memory per peer\n\nfailed: ${report.heap.error}\n`);
    } else {
      report.heap = parsed.results;
      process.stdout.write('\n## Memory per peer (MemoryStore, heapUsed + arrayBuffers after a full GC)\n\n');
      process.stdout.write('| peers | torrents | bytes/peer | total MiB |\n|---:|---:|---:|---:|\n');
      for (const h of parsed.results) {
        process.stdout.write(`| ${fmtInt(h.peers)} | ${fmtInt(h.torrents)} | ${h.bytesPerPeer} | ${h.totalMiB} |\n`);
      }
      for (const h of parsed.results) {
        for (const p of h.problems) {
          failed = true;
          process.stdout.write(`\nWARNING (${h.peers} peers): ${p}\n`);
        }
      }
    }
  }

  if (env.BENCH_SKIP_MEMORY_SERIES !== '1') {
    process.stderr.write('\nbench: in-memory store, one swarm of 50 to 1,000,000 peers (bench/memory-swarm-series.mjs)\n');
    const run = spawnSync('taskset', ['-c', serverCpu, process.execPath, '--expose-gc', join(benchDir, 'memory-swarm-series.mjs'), '--json'], {
      cwd: root,
      encoding: 'utf8',
      timeout: 900_000,
      killSignal: 'SIGKILL',
    });
    const parsed = lastJsonLine(run.stdout);
    report.memorySeries = parsed ?? { error: (run.stderr || String(run.error ?? `exit ${run.status}`)).trim() };
    process.stdout.write('\n## In-memory store, one swarm (p50 per announce, ×: ratio to 50 peers)\n\n');
    if (parsed === null || run.status !== 0) failed = true;
    process.stdout.write(parsed === null ? `failed: ${report.memorySeries.error}\n` : `${parsed.markdown}\n`);
  }

  if (modes.includes('cluster')) {
    let cluster;
    try {
      cluster = await clusterBench();
    } catch (e) {
      cluster = { error: e?.message ?? String(e) };
    }
    report.cluster = cluster;
    process.stdout.write(`\n## Cluster mode (one gateway, local Redis Cluster of 3 masters + 3 replicas; numwant ${load.numwant}, ${durationSec} s per run)\n\n`);
    if (cluster.skipped) process.stdout.write(`skipped: ${cluster.skipped}\n`);
    else if (cluster.error) {
      failed = true;
      process.stdout.write(`failed: ${cluster.error}\n`);
    } else {
      process.stdout.write(`${clusterTable(cluster.rows)}\n`);
      process.stdout.write(
        `\nThe gateway on core ${serverCpu}; Redis and the load generator share core ${loadgenCpu}. ` +
          'Redis CPU = the masters\' CPU over the measured window ÷ announces (in brackets the share spent in the kernel: socket reads and writes, epoll); bytes = growth of the masters\' used_memory ÷ peers; ' +
          'ratio = Redis CPU per announce ÷ the CPU of a do-nothing EVALSHA measured right after (DESIGN.md puts that at ≈ 2 µs on its machine).\n',
      );
    }
  }

  if (modes.includes('events')) {
    let ev;
    try {
      ev = await eventsBench();
    } catch (e) {
      ev = { error: e?.message ?? String(e) };
    }
    report.events = ev;
    process.stdout.write(`\n## Publishing announce events (UDP gateway, local Kafka broker on the load generator's core; ${durationSec} s per run)\n\n`);
    if (ev.skipped) process.stdout.write(`skipped: ${ev.skipped}\n`);
    else if (ev.error) {
      failed = true;
      process.stdout.write(`failed: ${ev.error}\n`);
    } else process.stdout.write(`${eventsTable(ev)}\n`);
  }

  if (modes.includes('otel')) {
    let o;
    try {
      o = await otelBench();
    } catch (e) {
      o = { error: e?.message ?? String(e) };
    }
    report.otel = o;
    process.stdout.write(`\n## OpenTelemetry (the gateway without and with telemetry exporting to a local collector on the load generator's core; ${durationSec} s per run)\n\n`);
    if (o.skipped) process.stdout.write(`skipped: ${o.skipped}\n`);
    else if (o.error) {
      failed = true;
      process.stdout.write(`failed: ${o.error}\n`);
    } else process.stdout.write(`${otelTable(o)}\n`);
  }

  if (modes.includes('swarm')) {
    process.stdout.write('\n## One swarm in the Redis store (store calls on a local Redis Cluster of 3 masters + 3 replicas)\n\n');
    if (spawnSync('redis-server', ['--version']).error?.code === 'ENOENT') {
      report.swarm = { skipped: 'redis-server not found' };
      process.stdout.write('skipped: redis-server not found (Debian: apt-get install redis-server)\n');
    } else {
      // twice: as the series always ran (a tenth of a big swarm's peers going due), and with the
      // same churn per announce at every size (BENCH_SWARM_CHURN, the 50-peer reference included)
      report.swarm = {};
      for (const [name, churn] of [['due', '0'], ['churn', '0.1']]) {
        process.stderr.write(`\nbench: swarm mode, ${name} (node bench/redis-swarm.mjs, BENCH_SWARM_CHURN=${churn})\n`);
        const run = spawnSync(process.execPath, [join(benchDir, 'redis-swarm.mjs')], {
          cwd: root,
          encoding: 'utf8',
          env: { ...env, BENCH_JSON: '1', BENCH_SWARM_CHURN: churn, REDIS_TEST_PROVIDER: 'local', REDIS_CLUSTER_NODES: '' },
          stdio: ['ignore', 'pipe', 'inherit'],
          timeout: 3_600_000,
        });
        const parsed = lastJsonLine(run.stdout);
        if (!parsed) {
          failed = true;
          report.swarm[name] = { error: String(run.error ?? `exit ${run.status}`) };
          process.stdout.write(`failed: ${report.swarm[name].error}\n`);
          continue;
        }
        report.swarm[name] = parsed;
        const workload =
          churn === '0'
            ? 'per size one swarm loaded (a tenth of its peers, at most 1,000 a second of the run, dated to go due during the run, so the run purges them)'
            : `per size a swarm (small sizes as several swarms of that size, taken in turn) on a simulated clock: a tenth of the announces are new peers replacing members that leave silently and expire, at every size alike`;
        process.stdout.write(`\n${name === 'due' ? '' : '### The same with equal churn at every size\n\n'}${swarmTable(parsed.rows)}\n`);
        process.stdout.write(
          `\n${parsed.pinned ? 'The Redis masters alone on one core (nice -20), the replicas and this client on the other' : 'Redis not pinned'}; ${workload}, then ${parsed.seconds} s of announces (numWant 50). ` +
            'Redis CPU = the masters\' CPU over the run ÷ announces; bytes = MEMORY USAGE of the swarm\'s keys ÷ peers; longest call = SLOWLOG (wall time: a call preempted on a busy machine counts; the probe is a do-nothing EVALSHA sent every 64th call beside the store\'s).\n',
        );
      }
    }
  }

  if (modes.includes('worker')) {
    process.stdout.write('\n## Stats worker (one worker process on one core; Redis Cluster and Kafka on the other)\n\n');
    process.stderr.write('\nbench: worker mode (node bench/stats-worker.mjs)\n');
    const run = spawnSync(process.execPath, [join(benchDir, 'stats-worker.mjs')], {
      cwd: root,
      encoding: 'utf8',
      env: { ...env, BENCH_JSON: '1', REDIS_TEST_PROVIDER: 'local', REDIS_CLUSTER_NODES: '' },
      stdio: ['ignore', 'pipe', 'inherit'],
      timeout: 1_800_000,
    });
    const r = lastJsonLine(run.stdout);
    if (!r) {
      failed = true;
      report.worker = { error: String(run.error ?? `exit ${run.status}`) };
      process.stdout.write(`failed: ${report.worker.error}\n`);
    } else {
      report.worker = r;
      process.stdout.write('| events | torrents (Zipf) | wall s (start included) | events/s | worker CPU µs / event | events per worker CPU s | Redis CPU µs / event |\n|---:|---:|---:|---:|---:|---:|---:|\n');
      process.stdout.write(`| ${fmtInt(r.events)} | ${fmtInt(r.torrents)} | ${r.seconds} | ${fmtInt(r.eventsPerSecond)} | ${r.workerCpuUsPerEvent} | ${fmtInt(r.eventsPerWorkerCpuSecond)} | ${r.redisCpuUsPerEvent} |\n`);
      process.stdout.write(`\nThe topic filled first (${r.eventsPerRecord} events a record, 6 partitions, as gateways publish), then one worker started and timed until every event was written; CPU from /proc.\n`);
    }
  }

  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'results.json'), `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(`\nresults: ${relative(root, join(outDir, 'results.json'))}\n`);
  killAll();
  process.exit(failed ? 1 : 0);
}

main();
