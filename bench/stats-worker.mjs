// How many announce events one stats worker writes per second of its CPU, with the Redis writes
// (run after `npm run build`; `npm run bench` runs it as its `worker` mode). Starts a Kafka broker
// (deploy/kafka.sh) and the test Redis Cluster (3 masters + 3 replicas), fills a 6-partition topic
// with BENCH_WORKER_EVENTS events the way gateways publish them (one record per partition per
// flush, BENCH_WORKER_RECORD events a record), over torrents whose announces follow a heavy tail
// (Zipf, s = 1, over BENCH_WORKER_TORRENTS torrents: a few very busy swarms beside many quiet
// ones), then starts one worker process (services/stats-worker/dist/main.js) pinned to core 1,
// Redis and Kafka on core 0, and measures until every event is written:
//   events/s (wall), worker CPU µs per event and events per worker CPU second (/proc utime+stime),
//   Redis CPU µs per event (the masters' used_cpu_sys+user).
// Env: BENCH_WORKER_EVENTS=1000000  BENCH_WORKER_RECORD=500  BENCH_WORKER_TORRENTS=100000  BENCH_JSON=1
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { nodesSnapshot, pin } from './redis-info.mjs';

const require = createRequire(import.meta.url);
const { startRedisTestServer, freePort } = require('../packages/redis-store/dist/testing/index.js');
const { encodeRecord, partitionOf, decodeClient } = require('../packages/events/dist/index.js');
const { Kafka, logLevel } = require('kafkajs');
const { Cluster } = require('ioredis');

const EVENTS = Number(process.env.BENCH_WORKER_EVENTS ?? 1_000_000);
const PER_RECORD = Number(process.env.BENCH_WORKER_RECORD ?? 500);
const TORRENTS = Number(process.env.BENCH_WORKER_TORRENTS ?? 100_000);
const PARTITIONS = 6;
const ROOT = new URL('..', import.meta.url).pathname;
const TICKS = 100; // (USER_HZ: /proc's clock ticks per second on Linux)

function cpuSeconds(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / TICKS;
}

const listening = (port) => new Promise((r) => net.connect(port, '127.0.0.1').once('connect', function () { this.destroy(); r(true); }).once('error', () => r(false)));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** a Zipf(1) sampler over n items: index 0 the busiest */
function zipf(n) {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) cdf[i] = sum += 1 / (i + 1);
  return () => {
    const x = Math.random() * sum;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid] < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

async function main() {
  const cleanup = [];
  const dir = mkdtempSync(join(os.tmpdir(), 'pt-bench-worker-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  try {
    process.stderr.write('bench: worker: starting a Redis Cluster and a Kafka broker\n');
    const redis = await startRedisTestServer('cluster');
    cleanup.unshift(() => redis.stop());
    const kafkaPort = await freePort();
    const controllerPort = await freePort();
    const kafka = spawn('bash', [join(ROOT, 'deploy/kafka.sh'), 'run'], { env: { ...process.env, KAFKA_PORT: String(kafkaPort), KAFKA_CONTROLLER_PORT: String(controllerPort), KAFKA_DIR: join(dir, 'kafka'), KAFKA_PARTITIONS: String(PARTITIONS) }, stdio: 'ignore' });
    cleanup.unshift(() => kafka.kill('SIGKILL'));
    for (let t = 0; !(await listening(kafkaPort)); t++) {
      if (t > 900) throw new Error('the Kafka broker did not start in 90 s');
      await sleep(100);
    }
    const brokers = [`127.0.0.1:${kafkaPort}`];
    const client = new Kafka({ brokers, clientId: 'bench', logLevel: logLevel.NOTHING });
    const admin = client.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'announces', numPartitions: PARTITIONS }], waitForLeaders: true });
    await admin.disconnect();

    // the events, as gateways would publish them
    process.stderr.write(`bench: worker: producing ${EVENTS} events over ${TORRENTS} torrents (Zipf), ${PER_RECORD} a record\n`);
    const hashes = Array.from({ length: TORRENTS }, () => randomBytes(20));
    const pick = zipf(TORRENTS);
    const clients = ['-qB4650-', '-TR4060-', '-lt0D80-', '-UT3550-', 'A2-1-37-0-', '-BC0200-', '-WW0100-'].map((p) => decodeClient(Buffer.concat([Buffer.from(p), randomBytes(20 - p.length)])));
    const producer = client.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const start = Date.now() - 10 * 60_000;
    const pending = Array.from({ length: PARTITIONS }, () => []);
    let sent = 0;
    const flush = async (p) => {
      if (pending[p].length === 0) return;
      await producer.send({ topic: 'announces', messages: [{ partition: p, value: encodeRecord('bench-gateway', pending[p]) }] });
      pending[p] = [];
    };
    const events = ['none', 'none', 'none', 'none', 'none', 'none', 'started', 'stopped', 'completed'];
    for (let i = 0; i < EVENTS; i++) {
      const h = hashes[pick()];
      const p = partitionOf(h, PARTITIONS);
      pending[p].push({
        time: start + Math.floor((i / EVENTS) * 10 * 60_000),
        infoHash: h,
        peerKey: randomBytes(8),
        event: events[i % events.length],
        left: i % 3 === 0 ? 0 : 1000,
        uploaded: 0,
        downloaded: 0,
        protocol: i % 4 === 0 ? 'http' : 'udp',
        family: i % 10 === 0 ? 6 : 4,
        client: clients[i % clients.length],
        seeders: 10,
        leechers: 5,
      });
      if (pending[p].length >= PER_RECORD) await flush(p);
      sent++;
    }
    for (let p = 0; p < PARTITIONS; p++) await flush(p);
    await producer.disconnect();

    // one worker, on its own core
    const redisClient = new Cluster(redis.nodes);
    await new Promise((r, j) => redisClient.once('ready', r).once('error', j));
    const masters = redisClient.nodes('master');
    const pins = os.cpus().length >= 2;
    if (pins) {
      for (const n of redisClient.nodes('all')) pin(Number(/process_id:(\d+)/.exec(await n.info('server'))[1]), 0);
      pin(kafka.pid, 0);
    }
    const before = await nodesSnapshot(masters);
    const metricsPort = await freePort();
    const t0 = performance.now();
    const worker = spawn(process.execPath, [join(ROOT, 'services/stats-worker/dist/main.js')], {
      env: { ...process.env, KAFKA_BROKERS: brokers.join(','), REDIS_CLUSTER_NODES: redis.nodes.map((n) => `${n.host}:${n.port}`).join(','), STATS_WORKER_PORT: String(metricsPort), STATS_WORKER_HOST: '127.0.0.1' },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    cleanup.unshift(() => worker.kill('SIGKILL'));
    if (pins) pin(worker.pid, 1);
    let written = 0;
    while (written < sent) {
      await sleep(200);
      if (worker.exitCode !== null) throw new Error(`the worker exited (${worker.exitCode})`);
      const text = await fetch(`http://127.0.0.1:${metricsPort}/metrics`).then((r) => r.text()).catch(() => '');
      written = Number(/^stats_events_written_total (\d+)/m.exec(text)?.[1] ?? 0);
      if (performance.now() - t0 > 600_000) throw new Error(`only ${written} of ${sent} events written in 10 minutes`);
    }
    const seconds = (performance.now() - t0) / 1000;
    const workerCpu = cpuSeconds(worker.pid);
    const after = await nodesSnapshot(masters);
    redisClient.disconnect();
    const result = {
      events: sent,
      torrents: TORRENTS,
      eventsPerRecord: PER_RECORD,
      seconds: Math.round(seconds * 10) / 10,
      eventsPerSecond: Math.round(sent / seconds),
      workerCpuSeconds: workerCpu,
      workerCpuUsPerEvent: Math.round((workerCpu / sent) * 1e6 * 100) / 100,
      eventsPerWorkerCpuSecond: Math.round(sent / workerCpu),
      redisCpuUsPerEvent: Math.round(((after.cpu - before.cpu) / sent) * 1e6 * 100) / 100,
      pinned: pins,
    };
    if (process.env.BENCH_JSON) process.stdout.write(`${JSON.stringify(result)}\n`);
    else {
      process.stdout.write('| events | torrents (Zipf) | wall s (start included) | events/s | worker CPU µs / event | events per worker CPU s | Redis CPU µs / event |\n|---:|---:|---:|---:|---:|---:|---:|\n');
      process.stdout.write(`| ${sent} | ${TORRENTS} | ${result.seconds} | ${result.eventsPerSecond} | ${result.workerCpuUsPerEvent} | ${result.eventsPerWorkerCpuSecond} | ${result.redisCpuUsPerEvent} |\n`);
    }
  } finally {
    for (const f of cleanup) await Promise.resolve().then(f).catch(() => {});
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`bench: worker: ${err.stack ?? err}\n`);
    process.exit(1);
  },
);
