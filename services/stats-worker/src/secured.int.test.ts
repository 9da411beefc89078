/*
 * Secured connections, end to end: a Redis Cluster that takes only TLS with client certificates
 * and a password, and a Kafka listener that takes only TLS with client certificates and SASL.
 * A gateway, a stats worker and the stats API, each its own process configured from the
 * environment as in production, carry announces through both to the API's numbers. A process
 * given the wrong settings refuses to start, or says in its log, why.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { bdecode } from '@peertracker/protocol';
import { announcePath, httpGet } from '@peertracker/gateway/dist/testing/clients';
import { clusterGatewayEnv, startGateway, stopGateway, type GatewayProcess } from '@peertracker/gateway/dist/testing/gateway-process';
import { kafkaSkipReason, startSecuredKafkaBroker, type SecuredKafkaBroker } from '@peertracker/gateway/dist/testing/kafka';
import { makeTestCertificates, redisSkipReason, startSecuredCluster, type RedisTestServer, type TestCertificates } from '@peertracker/redis-store/dist/testing';
import { StatsState } from './state';
import { eventually, startWorker } from './testing';

const PASSWORD = `pw ${randomBytes(12).toString('hex')}`;
const USERS = { gateway: randomBytes(9).toString('hex'), stats: randomBytes(9).toString('hex') };
const skip = redisSkipReason('cluster') ?? kafkaSkipReason() ?? false;

describe('TLS and authentication to Redis and Kafka', { skip, timeout: 240_000 }, () => {
  let certs: TestCertificates;
  let redis: RedisTestServer;
  let kafka: SecuredKafkaBroker;
  const children: ChildProcess[] = [];
  let redisEnv: Record<string, string>;
  let kafkaTlsEnv: Record<string, string>;
  before(async () => {
    certs = makeTestCertificates();
    [redis, kafka] = await Promise.all([startSecuredCluster({ password: PASSWORD, tls: certs }), startSecuredKafkaBroker(certs, USERS)]);
    redisEnv = {
      REDIS_CLUSTER_NODES: redis.nodes.map((n) => `${n.host}:${n.port}`).join(','),
      REDIS_PASSWORD: PASSWORD,
      REDIS_TLS: 'true',
      REDIS_TLS_CA_FILE: certs.ca,
      REDIS_TLS_CERT_FILE: certs.clientCert,
      REDIS_TLS_KEY_FILE: certs.clientKey,
    };
    kafkaTlsEnv = {
      KAFKA_BROKERS: kafka.secureBrokers.join(','),
      KAFKA_TLS: 'true',
      KAFKA_TLS_CA_FILE: certs.ca,
      KAFKA_TLS_CERT_FILE: certs.clientCert,
      KAFKA_TLS_KEY_FILE: certs.clientKey,
    };
  });
  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await Promise.all([redis?.stop(), kafka?.stop()]);
    certs?.remove();
  });

  const gatewayEnv = () => ({
    ...clusterGatewayEnv(redis.nodes),
    ...redisEnv,
    ...kafkaTlsEnv,
    KAFKA_SASL_MECHANISM: 'scram-sha-512',
    KAFKA_SASL_USERNAME: 'gateway',
    KAFKA_SASL_PASSWORD: USERS.gateway,
    KAFKA_TOPIC: `secured-${randomBytes(4).toString('hex')}`,
    TRACKER_EVENTS_FLUSH_MS: '20',
    TRACKER_LOG_LEVEL: 'info',
  });

  it('carries announces from a gateway through Kafka (SCRAM and PLAIN) and the stats worker to the stats API', async () => {
    const env = gatewayEnv();
    const prefix = `st${randomBytes(3).toString('hex')}:`;
    const statsEnv = { ...redisEnv, ...kafkaTlsEnv, KAFKA_TOPIC: env.KAFKA_TOPIC, STATS_KEY_PREFIX: prefix, KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'stats', KAFKA_SASL_PASSWORD: USERS.stats };
    let gw: GatewayProcess | undefined;
    try {
      gw = await startGateway(env);
      // (events of announces answered before the producer connects are dropped, and counted so)
      await eventually('the gateway connected to Kafka', async () => assert.match((await httpGet(gw!.httpPort, '/metrics')).body.toString(), /^tracker_events_connected 1$/m), 30_000);
      // the stored swarm answers through TLS: the second peer sees the first
      const infoHash = randomBytes(20);
      const announce = async (peerId: Buffer, port: number, event?: string, left = 100) => {
        const r = await httpGet(gw!.httpPort, announcePath({ infoHash, peerId, port, compact: 1, left, event }));
        const body = bdecode(r.body) as Map<string, unknown>;
        assert.equal(body.get('failure reason'), undefined, String(body.get('failure reason')));
        return body;
      };
      const [a, b] = [randomBytes(20), randomBytes(20)];
      await announce(a, 7001, 'started');
      assert.equal((await announce(b, 7002, 'started')).get('incomplete'), 2, 'the first peer was stored in the cluster');
      await announce(a, 7001, 'completed', 0);

      const worker = startWorker({ ...statsEnv, STATS_WORKER_HOST: '127.0.0.1', STATS_WORKER_PORT: '0' }, false);
      children.push(worker);
      const api = spawn(process.execPath, [join(__dirname, 'api-main.js')], {
        env: { PATH: process.env.PATH ?? '', ...redisEnv, STATS_KEY_PREFIX: prefix, STATS_API_HOST: '127.0.0.1', STATS_API_PORT: '0' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.push(api);
      let apiOutput = '';
      api.stdout.on('data', (d) => (apiOutput += d));
      api.stderr.on('data', (d) => (apiOutput += d));
      const apiPort = await eventually('the stats API started', async () => Number(/"port":(\d+)/.exec(apiOutput)?.[1] ?? assert.fail(apiOutput || 'no output yet')), 20_000);
      const totals = await eventually(
        'the announces counted',
        async () => {
          assert.equal(worker.exitCode, null, `the worker exited: ${worker.output.join('')}`);
          const r = await httpGet(apiPort, `/v1/torrents/${infoHash.toString('hex')}`);
          assert.equal(r.status, 200, `${r.body.toString()}\nworker: ${worker.output.join('').slice(-1500)}`);
          const t = JSON.parse(r.body.toString());
          assert.equal(t.announces, 3, JSON.stringify(t));
          return t;
        },
        90_000,
      );
      assert.equal(totals.completions, 1);
      assert.equal(totals.seeders, 1);
      assert.equal(totals.leechers, 1);
    } finally {
      await stopGateway(gw);
    }
  });

  it('refuses to start a gateway that does not speak TLS to the cluster, or does not trust its CA, or has no password, saying why', async () => {
    const { REDIS_TLS: _tls, REDIS_TLS_CA_FILE: _ca, REDIS_TLS_CERT_FILE: _cert, REDIS_TLS_KEY_FILE: _key, ...plain } = { ...clusterGatewayEnv(redis.nodes), ...redisEnv };
    await assert.rejects(startGateway(plain), /closed the connection unanswered: does it ask for TLS/);
    await assert.rejects(startGateway({ ...clusterGatewayEnv(redis.nodes), ...redisEnv, REDIS_TLS_CA_FILE: certs.otherCa }), /self-signed certificate/);
    await assert.rejects(startGateway({ ...clusterGatewayEnv(redis.nodes), ...redisEnv, REDIS_TLS_SERVERNAME: 'redis.example.com' }), /does not match certificate's altnames/);
    const { REDIS_PASSWORD: _pw, ...noPassword } = { ...clusterGatewayEnv(redis.nodes), ...redisEnv };
    await assert.rejects(startGateway(noPassword), /NOAUTH|Authentication required|WRONGPASS/i);
    // a setting that cannot work stops the start with the variable's name (exit 2)
    await assert.rejects(startGateway({ ...clusterGatewayEnv(redis.nodes), ...redisEnv, REDIS_TLS_CERT_FILE: certs.ca, REDIS_TLS_KEY_FILE: certs.serverKey }), /REDIS_TLS_CA_FILE, REDIS_TLS_CERT_FILE, REDIS_TLS_KEY_FILE: not usable for TLS/);
  });

  it('stops a stats worker and the API that do not trust the cluster, with the reason', async () => {
    const exitOf = async (child: ChildProcess & { output?: string[] }, output: () => string) => {
      const code = await new Promise<number | null>((r) => child.once('exit', r));
      return { code, output: output() };
    };
    const worker = startWorker({ ...redisEnv, ...kafkaTlsEnv, REDIS_TLS_CA_FILE: certs.otherCa, STATS_WORKER_HOST: '127.0.0.1', STATS_WORKER_PORT: '0' }, false);
    children.push(worker);
    const w = await exitOf(worker, () => worker.output.join(''));
    assert.equal(w.code, 1);
    assert.match(w.output, /cannot connect to Redis \(None of startup nodes is available: self-signed certificate in certificate chain\)/);
    const { REDIS_TLS_CERT_FILE: _c, REDIS_TLS_KEY_FILE: _k, ...noClientCert } = redisEnv;
    const api = spawn(process.execPath, [join(__dirname, 'api-main.js')], { env: { PATH: process.env.PATH ?? '', ...noClientCert, STATS_API_HOST: '127.0.0.1', STATS_API_PORT: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(api);
    let out = '';
    api.stdout.on('data', (d) => (out += d));
    api.stderr.on('data', (d) => (out += d));
    const a = await exitOf(api, () => out);
    assert.notEqual(a.code, 0);
    assert.match(a.output, /cannot connect to Redis .*(alert certificate required|does it ask for a client certificate)/);
  });

  it('a gateway and a stats worker with the wrong Kafka password say in their logs why (the gateway serves announces meanwhile)', async () => {
    let gw: GatewayProcess | undefined;
    try {
      gw = await startGateway({ ...gatewayEnv(), KAFKA_SASL_PASSWORD: 'wrong', TRACKER_LOG_LEVEL: 'warn' });
      const r = await httpGet(gw.httpPort, announcePath({ infoHash: randomBytes(20), peerId: randomBytes(20), port: 7003, compact: 1 }));
      assert.equal((bdecode(r.body) as Map<string, unknown>).get('failure reason'), undefined);
      await eventually('the reason logged', async () => assert.match(gw!.output.join(''), /SASL SCRAM SHA512 authentication failed/), 20_000);
      const worker = startWorker({ ...redisEnv, ...kafkaTlsEnv, KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'stats', KAFKA_SASL_PASSWORD: 'wrong', STATS_WORKER_HOST: '127.0.0.1', STATS_WORKER_PORT: '0' }, false);
      children.push(worker);
      await eventually('the worker logged the reason', async () => assert.match(worker.output.join(''), /cannot join the consumer group yet.*SASL PLAIN authentication failed/), 20_000);
      worker.kill('SIGKILL');
    } finally {
      await stopGateway(gw);
    }
  });

  it("keeps the statistics' state in the cluster over TLS, and nothing reaches Kafka's secured listener without a client certificate", async () => {
    const state = new StatsState({ clusterNodes: redis.nodes, password: PASSWORD, tls: { ca: readFileSync(certs.ca), cert: readFileSync(certs.clientCert), key: readFileSync(certs.clientKey) } }, `t${randomBytes(4).toString('hex')}:`);
    try {
      await state.connect();
      await state.client.set(`${state.prefix}tls-probe`, '1', 'EX', 60);
      assert.equal(await state.client.get(`${state.prefix}tls-probe`), '1');
    } finally {
      state.client.disconnect();
    }
    const admin = new Kafka({ brokers: kafka.secureBrokers, clientId: 'no-cert', logLevel: logLevel.NOTHING, ssl: { ca: readFileSync(certs.ca) }, sasl: { mechanism: 'plain', username: 'stats', password: USERS.stats }, retry: { retries: 0 } }).admin();
    await assert.rejects(
      (async () => {
        await admin.connect();
        await admin.listTopics();
      })(),
      /bad certificate|certificate required|ECONNRESET|Connection error/,
    );
    await admin.disconnect();
  });
});
