/*
 * OpenTelemetry end to end: a gateway process and a stats worker process (`node dist/main.js`
 * each, no extra flags, as deployed) on a real Redis Cluster and a real Kafka broker, exporting to
 * a real OpenTelemetry Collector (scripts/otel-collector.sh builds it) at trace ratio 1. An HTTP and
 * a UDP announce are sent; the collector must receive their spans (HTTP server, store, event
 * publishing, Kafka, express) and the worker's (its consumer's, its batch write, Redis), and metrics of both
 * services over OTLP, while Prometheus /metrics keeps answering. Without the collector the test is
 * skipped with the command that builds it, except under CI=true, where it fails.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bdecode } from '@peertracker/protocol';
import { announcePath, httpGet, udpAnnouncePacket, udpConnect, udpExchange } from '@peertracker/gateway/dist/testing/clients';
import { clusterGatewayEnv, freePort, startGateway, stopGateway, type GatewayProcess } from '@peertracker/gateway/dist/testing/gateway-process';
import { kafkaSkipReason, startKafkaTestBroker, type KafkaTestBroker } from '@peertracker/gateway/dist/testing/kafka';
import { redisSkipReason, startRedisTestServer, type RedisTestServer } from '@peertracker/redis-store/dist/testing';
import { collectorSkipReason, startTestCollector, type ReceivedPoint, type ReceivedSpan, type TestCollector } from '@peertracker/telemetry/dist/testing';
import { startWorker } from './testing';

const skip = collectorSkipReason() ?? kafkaSkipReason() ?? redisSkipReason('cluster') ?? false;
const WORKER = join(__dirname, 'main.js');
const GATEWAY = join(__dirname, '../../gateway/dist/main.js');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, find: () => T | undefined, explain: () => string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = find();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${explain()}`);
    await sleep(100);
  }
}

/** OTLP to the collector, every span kept, metrics every half second, spans sent within 100 ms. */
function otelEnv(collector: TestCollector): Record<string, string> {
  return {
    OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint,
    OTEL_TRACES_SAMPLER_ARG: '1',
    OTEL_METRIC_EXPORT_INTERVAL: '500',
    OTEL_BSP_SCHEDULE_DELAY: '100',
  };
}


async function stop(child: ChildProcess | undefined): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

describe('OpenTelemetry: the gateway and the stats worker export to a real collector', { skip }, () => {
  let collector: TestCollector;
  let kafka: KafkaTestBroker;
  let redis: RedisTestServer;
  let gw: GatewayProcess | undefined;
  let worker: (ChildProcess & { output: string[] }) | undefined;

  before(async () => {
    collector = await startTestCollector();
    kafka = await startKafkaTestBroker();
    redis = await startRedisTestServer('cluster');
  });
  after(async () => {
    await stopGateway(gw);
    await stop(worker);
    await redis?.stop();
    await kafka?.stop();
    await collector?.stop();
  });

  it('receives the spans and metrics of an HTTP and a UDP announce, from the gateway to the worker', async () => {
    const topic = `otel-${randomBytes(4).toString('hex')}`;
    const nodes = redis.nodes.map((n) => `${n.host}:${n.port}`).join(',');
    gw = await startGateway({
      ...clusterGatewayEnv(redis.nodes),
      ...otelEnv(collector),
      KAFKA_BROKERS: kafka.brokers.join(','),
      KAFKA_TOPIC: topic,
      TRACKER_EVENTS_FLUSH_MS: '50',
    });
    const explain = () => {
      // (the collector's whole output, for a look at what did arrive)
      const file = join(tmpdir(), `peertracker-otel-collector-${process.pid}.log`);
      writeFileSync(file, collector.output());
      return `gateway: ${gw!.output.join('').slice(-1500)}\nworker: ${worker?.output.join('').slice(-1500) ?? '(not started)'}\ncollector output: ${file}`;
    };
    for (let t = 0; !/^tracker_events_connected 1$/m.test((await httpGet(gw.httpPort, '/metrics')).body.toString()); t++) {
      if (t > 300) throw new Error(`the gateway did not connect to Kafka\n${explain()}`);
      await sleep(100);
    }

    const httpHash = randomBytes(20);
    const udpHash = randomBytes(20);
    const http = await httpGet(gw.httpPort, announcePath({ infoHash: httpHash, peerId: Buffer.from('-qB4650-otelhttp0001'), port: 6881, left: 0 }));
    assert.equal((bdecode(http.body) as Map<string, unknown>).get('failure reason'), undefined);
    const cid = await udpConnect(gw.udpPort);
    const udp = await udpExchange(gw.udpPort, udpAnnouncePacket({ connectionId: cid, transactionId: 7, infoHash: udpHash, peerId: Buffer.from('-TR4060-oteludp00001'), port: 6882 }));
    assert.ok(udp !== null && udp.readUInt32BE(0) === 1, 'the UDP announce was answered');
    // an admin route (express)
    assert.equal((await httpGet(gw.httpPort, '/health')).status, 200);

    const metricsPort = await freePort();
    worker = startWorker({
      ...otelEnv(collector),
      KAFKA_BROKERS: kafka.brokers.join(','),
      KAFKA_TOPIC: topic,
      STATS_GROUP_ID: topic,
      REDIS_CLUSTER_NODES: nodes,
      STATS_KEY_PREFIX: `o${randomBytes(3).toString('hex')}:`,
      STATS_WORKER_HOST: '127.0.0.1',
      STATS_WORKER_PORT: String(metricsPort),
    }, false);

    const spans = () => collector.spans();
    const gateway = (s: ReceivedSpan) => s.service === 'peertracker-gateway';
    const childOf = (parent: ReceivedSpan) => (s: ReceivedSpan) => s.traceId === parent.traceId && s.parentId === parent.id;
    const one = (what: string, pick: (s: ReceivedSpan) => boolean) => waitFor(what, () => spans().find(pick), explain);

    // the HTTP announce: the instrumentation's server span, the store call under it (the gateway's
    // Redis commands are auto-pipelined, many announces' in one round trip, and its context follows
    // synchronous calls only: no Redis span of its own; the worker's below)
    const httpSpan = await one('the HTTP announce span', (s) => gateway(s) && s.kind === 'Server' && s.name === 'GET /announce');
    assert.equal(httpSpan.scope, '@opentelemetry/instrumentation-http');
    assert.equal(httpSpan.attributes['http.route'], '/announce');
    const httpStore = await one('the store span of the HTTP announce', (s) => childOf(httpSpan)(s) && s.name === 'store.announce');
    assert.equal(httpStore.attributes['db.system'], 'redis');
    assert.equal(httpStore.attributes['peertracker.info_hash'], httpHash.toString('hex'));

    // the UDP announce: our server span, the store call under it
    const udpSpan = await one('the UDP announce span', (s) => gateway(s) && s.name === 'udp announce' && s.attributes['peertracker.info_hash'] === udpHash.toString('hex'));
    assert.equal(udpSpan.kind, 'Server');
    assert.equal(udpSpan.parentId, '');
    await one('the store span of the UDP announce', (s) => childOf(udpSpan)(s) && s.name === 'store.announce');

    // the events' publishing: a send per partition, each linked to the traced announces whose
    // events it carries, with kafkajs's producer span under it
    for (const announce of [httpSpan, udpSpan]) {
      const publish = await one(`the send that carries the ${announce.name} event`, (s) => gateway(s) && s.name === `publish ${topic}` && s.links.includes(announce.id));
      assert.equal(publish.kind, 'Producer');
      await one('kafkajs\'s producer span under the publish span', (s) => childOf(publish)(s) && s.scope === '@opentelemetry/instrumentation-kafkajs' && s.kind === 'Producer');
    }

    // express on the admin routes
    const health = await one('the /health server span', (s) => gateway(s) && s.kind === 'Server' && s.name === 'GET /health');
    await one('an express span under /health', (s) => childOf(health)(s) && s.scope === '@opentelemetry/instrumentation-express');

    // the worker: kafkajs's consumer span, the batch write, Redis under it
    const worker_ = (s: ReceivedSpan) => s.service === 'peertracker-stats-worker';
    await one('kafkajs\'s consumer span in the worker', (s) => worker_(s) && s.scope === '@opentelemetry/instrumentation-kafkajs' && s.kind === 'Consumer');
    // (the two events went to their torrents' partitions: one write each, or one for both)
    const writes = await waitFor(
      'the worker\'s batch write spans of both events',
      () => {
        const w = spans().filter((s) => worker_(s) && s.name === 'stats.write');
        return w.reduce((n, s) => n + Number(s.attributes['peertracker.events']), 0) >= 2 ? w : undefined;
      },
      explain,
    );
    for (const w of writes) assert.equal(w.attributes['peertracker.write_status'], 'ok');
    // (under one of them: once in CI the first of two writes had no Redis span under it while the
    // second had; the cause is not established, the first write comes right after the connect)
    const redisSpan = await one('a Redis command span under a batch write', (s) => writes.some((w) => childOf(w)(s)) && s.scope === '@opentelemetry/instrumentation-ioredis');
    assert.match(redisSpan.name, /^eval/);

    // metrics over OTLP from both services: the announces counted, the events written
    const points = () => collector.points();
    const point = (what: string, pick: (p: ReceivedPoint) => boolean) => waitFor(what, () => points().find(pick), explain);
    for (const transport of ['http', 'udp']) {
      await point(`the gateway's ${transport} announce count`, (p) => p.service === 'peertracker-gateway' && p.metric === 'tracker_announces_total' && p.attributes.transport === transport && p.value >= 1);
    }
    await point('the gateway\'s announce latency histogram', (p) => p.service === 'peertracker-gateway' && p.metric === 'tracker_announce_duration_seconds');
    await point('the HTTP instrumentation\'s request duration', (p) => p.service === 'peertracker-gateway' && p.metric === 'http.server.request.duration');
    await point('the worker\'s written events', (p) => p.service === 'peertracker-stats-worker' && p.metric === 'stats_events_written_total' && p.value >= 2);

    // and Prometheus beside it
    assert.match((await httpGet(gw.httpPort, '/metrics')).body.toString(), /^tracker_announces_total\{transport="udp",family="4"\} 1$/m);
    assert.match((await httpGet(metricsPort, '/metrics')).body.toString(), /^stats_events_written_total \d+$/m);
  });
});

describe('OpenTelemetry configuration errors stop the services', () => {
  for (const [service, main, prefix] of [
    ['gateway', GATEWAY, 'peertracker: configuration error: '],
    ['stats worker', WORKER, 'stats-worker: '],
  ] as const) {
    it(`${service}: a bad OTEL_* value is named and the process exits with code 2`, async () => {
      const child = spawn(process.execPath, [main], {
        env: { PATH: process.env.PATH ?? '', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1', OTEL_TRACES_SAMPLER_ARG: '1.5' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
      const code = await new Promise((r) => child.once('exit', r));
      assert.equal(code, 2, stderr);
      assert.equal(stderr, `${prefix}OTEL_TRACES_SAMPLER_ARG must be a number from 0 to 1 (the share of traces sampled) (got "1.5")\n`);
    });
  }
});
