import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { makeTestCertificates, type TestCertificates } from '@peertracker/redis-store/dist/testing';
import { ConfigError, loadConfig } from './config';

describe('loadConfig', () => {
  it('has documented defaults', () => {
    const c = loadConfig({});
    assert.equal(c.host, '::');
    assert.equal(c.httpPort, 6969);
    assert.equal(c.udpPort, 6969);
    assert.equal(c.store, 'memory');
    assert.equal(c.defaultNumwant, 50);
    assert.equal(c.fullScrape, false);
    assert.equal(c.connectionSecretGenerated, true);
    assert.equal(c.connectionSecret.length, 32);
    assert.ok(c.peerLifetimeSec > c.announceIntervalSec + c.intervalJitterSec);
    assert.equal(c.httpMaxConnections, 10000);
    assert.equal(c.httpMaxConnectionsPerIp, 256);
    assert.equal(c.maxPeersPerSwarm, 1_000_000);
    assert.equal(c.maxPeersPerAddress, 64);
    assert.equal(c.memoryMaxPeers, 5_000_000);
    assert.equal(c.memoryMaxSwarms, 500_000);
    assert.equal(c.httpHeadersTimeoutMs, 10000);
    assert.equal(c.httpRequestTimeoutMs, 15000);
    assert.equal(c.httpKeepAliveTimeoutMs, 5000);
    assert.equal(c.httpIdleTimeoutMs, 30000);
    // no KAFKA_BROKERS: no events
    assert.equal(c.events, undefined);
  });

  it('reads the announce-event settings, with defaults', () => {
    const c = loadConfig({ KAFKA_BROKERS: ' kafka-1:9092, 10.0.0.3:9093 ' });
    assert.deepEqual({ ...c.events, gatewayId: undefined }, {
      brokers: ['kafka-1:9092', '10.0.0.3:9093'],
      security: {},
      topic: 'announces',
      gatewayId: undefined,
      flushMs: 100,
      maxBufferedEvents: 200_000,
      sendTimeoutMs: 10_000,
    });
    // the host name by default (a pod's name), cut to a valid id
    assert.match(c.events!.gatewayId, /^[A-Za-z0-9._:-]{1,64}$/);
    const d = loadConfig({
      KAFKA_BROKERS: 'k:1',
      KAFKA_TOPIC: 'tracker.events',
      TRACKER_GATEWAY_ID: 'gw-7',
      TRACKER_EVENTS_FLUSH_MS: '50',
      TRACKER_EVENTS_BUFFER: '5000',
      TRACKER_EVENTS_SEND_TIMEOUT_MS: '2000',
    });
    assert.deepEqual(d.events, { brokers: ['k:1'], security: {}, topic: 'tracker.events', gatewayId: 'gw-7', flushMs: 50, maxBufferedEvents: 5000, sendTimeoutMs: 2000 });
  });

  it('reads every variable', () => {
    const c = loadConfig({
      TRACKER_HOST: '127.0.0.1',
      TRACKER_HTTP_PORT: '8080',
      TRACKER_UDP_PORT: '8081',
      TRACKER_CONNECTION_SECRET: 'x'.repeat(40),
      TRACKER_CONNECTION_SECRET_ACCEPTED: 'y'.repeat(32),
      TRACKER_ANNOUNCE_INTERVAL: '900',
      TRACKER_MIN_INTERVAL: '30',
      TRACKER_INTERVAL_JITTER: '10',
      TRACKER_PEER_LIFETIME: '2000',
      TRACKER_DEFAULT_NUMWANT: '30',
      TRACKER_MAX_NUMWANT: '80',
      TRACKER_TRUSTED_PROXIES: '10.0.0.0/8, ::1',
      TRACKER_FULL_SCRAPE: 'true',
      TRACKER_SWARM_RETENTION: '3600',
      TRACKER_MAX_URL_LENGTH: '4096',
      TRACKER_MAX_SCRAPE_HASHES: '10',
      TRACKER_REDIS_BATCH_MAX: '3',
      TRACKER_UDP_RECV_BUFFER: '1048576',
      TRACKER_HTTP_MAX_CONNECTIONS: '500',
      TRACKER_HTTP_MAX_CONNECTIONS_PER_IP: '20',
      TRACKER_MAX_PEERS_PER_SWARM: '200000',
      TRACKER_MAX_PEERS_PER_ADDRESS: '0',
      TRACKER_MEMORY_MAX_PEERS: '1000000',
      TRACKER_MEMORY_MAX_SWARMS: '100000',
      TRACKER_HTTP_HEADERS_TIMEOUT_MS: '2000',
      TRACKER_HTTP_REQUEST_TIMEOUT_MS: '3000',
      TRACKER_HTTP_KEEP_ALIVE_TIMEOUT_MS: '1000',
      TRACKER_SHUTDOWN_DELAY_MS: '2500',
      TRACKER_SHUTDOWN_TIMEOUT_MS: '20000',
      TRACKER_HTTP_IDLE_TIMEOUT_MS: '4000',
      TRACKER_LOG_LEVEL: 'warn',
    });
    assert.deepEqual(
      { ...c, connectionSecret: c.connectionSecret.toString() },
      {
        host: '127.0.0.1',
        httpPort: 8080,
        udpPort: 8081,
        connectionSecret: 'x'.repeat(40),
        connectionSecretGenerated: false,
        connectionSecretAccepted: Buffer.from('y'.repeat(32)),
        announceIntervalSec: 900,
        minIntervalSec: 30,
        intervalJitterSec: 10,
        peerLifetimeSec: 2000,
        defaultNumwant: 30,
        maxNumwant: 80,
        trustedProxies: ['10.0.0.0/8', '::1'],
        store: 'memory',
        redisUrl: undefined,
        redisClusterNodes: undefined,
        redisUsername: undefined,
        redisPassword: undefined,
        redisTls: undefined,
        redisKeyPrefix: 'pt:',
        redisTimeoutMs: 1000,
        redisBatchMax: 3,
        redisAllowEviction: false,
        swarmRetentionSec: 3600,
        fullScrape: true,
        maxUrlLength: 4096,
        maxScrapeHashes: 10,
        udpRecvBuffer: 1048576,
        httpMaxConnections: 500,
        httpMaxConnectionsPerIp: 20,
        maxPeersPerSwarm: 200000,
        maxPeersPerAddress: 0,
        memoryMaxPeers: 1000000,
        memoryMaxSwarms: 100000,
        httpHeadersTimeoutMs: 2000,
        httpRequestTimeoutMs: 3000,
        httpKeepAliveTimeoutMs: 1000,
        shutdownDelayMs: 2500,
        shutdownTimeoutMs: 20000,
        httpIdleTimeoutMs: 4000,
        logLevel: 'warn',
        metricsPort: undefined,
        events: undefined,
      },
    );
  });

  it('has Redis defaults', () => {
    const c = loadConfig({ TRACKER_STORE: 'redis', REDIS_URL: 'redis://redis:6379' });
    assert.equal(c.store, 'redis');
    assert.equal(c.redisUrl, 'redis://redis:6379');
    assert.equal(c.redisClusterNodes, undefined);
    assert.equal(c.redisKeyPrefix, 'pt:');
    assert.equal(c.redisTimeoutMs, 1000);
    assert.equal(c.redisBatchMax, 64);
    assert.equal(c.redisAllowEviction, false);
  });

  it('reads a single Redis server', () => {
    const c = loadConfig({
      TRACKER_STORE: 'redis',
      REDIS_URL: 'rediss://user:pw@redis.example:6380/2',
      TRACKER_REDIS_KEY_PREFIX: 'tracker-a:',
      TRACKER_REDIS_TIMEOUT_MS: '250',
      TRACKER_REDIS_ALLOW_EVICTION: 'true',
      TRACKER_REDIS_BATCH_MAX: '1',
    });
    assert.equal(c.redisBatchMax, 1);
    assert.equal(c.redisUrl, 'rediss://user:pw@redis.example:6380/2');
    assert.equal(c.redisAllowEviction, true);
    assert.equal(c.redisKeyPrefix, 'tracker-a:');
    assert.equal(c.redisTimeoutMs, 250);
  });

  it('reads Redis Cluster nodes', () => {
    const c = loadConfig({ TRACKER_STORE: 'redis', REDIS_CLUSTER_NODES: ' redis-1:7000, 10.0.0.2:7001,[::1]:7002,' });
    assert.equal(c.redisUrl, undefined);
    assert.deepEqual(c.redisClusterNodes, [
      { host: 'redis-1', port: 7000 },
      { host: '10.0.0.2', port: 7001 },
      { host: '::1', port: 7002 },
    ]);
  });

  it("reads a Redis Cluster's credentials", () => {
    const c = loadConfig({ TRACKER_STORE: 'redis', REDIS_CLUSTER_NODES: 'r:7000', REDIS_USERNAME: 'tracker', REDIS_PASSWORD: 'p@ss word' });
    assert.deepEqual([c.redisUsername, c.redisPassword], ['tracker', 'p@ss word']);
  });

  describe('TLS and SASL (REDIS_TLS*, KAFKA_TLS*, KAFKA_SASL_*)', () => {
    let certs: TestCertificates;
    before(() => {
      certs = makeTestCertificates();
    });
    after(() => certs?.remove());
    const cluster = { TRACKER_STORE: 'redis', REDIS_CLUSTER_NODES: 'r:7000' };

    it('reads the files once, at start, and keeps the server name', () => {
      const c = loadConfig({ ...cluster, REDIS_TLS: 'true', REDIS_TLS_CA_FILE: certs.ca, REDIS_TLS_CERT_FILE: certs.clientCert, REDIS_TLS_KEY_FILE: certs.clientKey, REDIS_TLS_SERVERNAME: 'redis.internal' });
      assert.deepEqual(c.redisTls, { ca: readFileSync(certs.ca), cert: readFileSync(certs.clientCert), key: readFileSync(certs.clientKey), servername: 'redis.internal' });
      // TLS with the system's CAs: an empty set of options, not undefined
      assert.deepEqual(loadConfig({ ...cluster, REDIS_TLS: 'yes' }).redisTls, {});
      assert.deepEqual(loadConfig({ TRACKER_STORE: 'redis', REDIS_URL: 'rediss://r:6380' }).redisTls, {});
      assert.deepEqual(loadConfig({ TRACKER_STORE: 'redis', REDIS_URL: 'rediss://r:6380', REDIS_TLS_CA_FILE: certs.ca }).redisTls, { ca: readFileSync(certs.ca) });
      assert.equal(loadConfig(cluster).redisTls, undefined);
      const k = loadConfig({ KAFKA_BROKERS: 'k:9093', KAFKA_TLS: 'true', KAFKA_TLS_CA_FILE: certs.ca, KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512', KAFKA_SASL_USERNAME: 'gw', KAFKA_SASL_PASSWORD: ' pw ' });
      assert.deepEqual(k.events!.security, { ssl: { ca: readFileSync(certs.ca) }, sasl: { mechanism: 'scram-sha-512', username: 'gw', password: ' pw ' } });
      assert.deepEqual(loadConfig({ KAFKA_BROKERS: 'k:9092', KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'gw', KAFKA_SASL_PASSWORD: 'pw' }).events!.security, { sasl: { mechanism: 'plain', username: 'gw', password: 'pw' } });
    });

    it('names the variable of a setting that cannot work', () => {
      for (const [env, message] of [
        [{ REDIS_TLS: 'maybe' }, /^REDIS_TLS must be true or false/],
        [{ REDIS_TLS_CA_FILE: certs.ca }, /^REDIS_TLS_CA_FILE is set but TLS is off: set REDIS_TLS=true/],
        [{ REDIS_TLS: 'true', REDIS_TLS_CA_FILE: '/nonexistent/ca.pem' }, /^REDIS_TLS_CA_FILE: cannot read \/nonexistent\/ca.pem \(ENOENT\)/],
        [{ REDIS_TLS: 'true', REDIS_TLS_CA_FILE: certs.clientKey }, /^REDIS_TLS_CA_FILE: .* holds no PEM certificate/],
        [{ REDIS_TLS: 'true', REDIS_TLS_KEY_FILE: certs.ca }, /^REDIS_TLS_KEY_FILE: .* holds no PEM private key/],
        [{ REDIS_TLS: 'true', REDIS_TLS_CERT_FILE: certs.clientCert }, /^REDIS_TLS_KEY_FILE is missing: a client certificate needs both/],
        [{ REDIS_TLS: 'true', REDIS_TLS_CERT_FILE: certs.clientCert, REDIS_TLS_KEY_FILE: certs.serverKey }, /^REDIS_TLS_CERT_FILE, REDIS_TLS_KEY_FILE: not usable for TLS \(.*key values mismatch/],
        [{ REDIS_TLS: 'true', REDIS_TLS_SERVERNAME: 'a b' }, /^REDIS_TLS_SERVERNAME must be a host name/],
        [{ TRACKER_STORE: 'redis', REDIS_CLUSTER_NODES: '', REDIS_URL: 'redis://r:6379', REDIS_TLS: 'true' }, /^REDIS_TLS=true with a redis:\/\/ REDIS_URL: write rediss:\/\//],
        [{ TRACKER_STORE: 'redis', REDIS_CLUSTER_NODES: '', REDIS_URL: 'rediss://r:6379', REDIS_TLS: 'false' }, /^REDIS_TLS=false contradicts a rediss:\/\/ REDIS_URL/],
        [{ KAFKA_BROKERS: 'k:1', KAFKA_TLS_CERT_FILE: certs.clientCert }, /^KAFKA_TLS_CERT_FILE is set but TLS is off: set KAFKA_TLS=true/],
        [{ KAFKA_BROKERS: 'k:1', KAFKA_SASL_MECHANISM: 'gssapi', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p' }, /^KAFKA_SASL_MECHANISM must be one of plain, scram-sha-256, scram-sha-512/],
        [{ KAFKA_BROKERS: 'k:1', KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_PASSWORD: 'p' }, /^KAFKA_SASL_MECHANISM=plain needs KAFKA_SASL_USERNAME/],
        [{ KAFKA_BROKERS: 'k:1', KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'u' }, /^KAFKA_SASL_MECHANISM=plain needs KAFKA_SASL_PASSWORD/],
        [{ KAFKA_BROKERS: 'k:1', KAFKA_SASL_PASSWORD: 'p' }, /^KAFKA_SASL_PASSWORD is set without KAFKA_SASL_MECHANISM/],
      ] as const) {
        assert.throws(() => loadConfig({ ...cluster, ...env }), (e: Error) => e instanceof ConfigError && message.test(e.message), `${JSON.stringify(env)}`);
      }
    });

    it('never shows a key or a SASL password in a message', () => {
      const key = readFileSync(certs.clientKey, 'utf8');
      const body = key.split('\n')[1];
      assert.throws(() => loadConfig({ ...cluster, REDIS_TLS: 'true', REDIS_TLS_CERT_FILE: certs.clientKey, REDIS_TLS_KEY_FILE: certs.clientKey }), (e: Error) => !e.message.includes(body));
      assert.throws(() => loadConfig({ KAFKA_BROKERS: 'k:1', KAFKA_SASL_MECHANISM: 'nope', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'hunter2-secret' }), (e: Error) => !e.message.includes('hunter2-secret'));
    });
  });

  it('never puts a secret in its error messages', () => {
    for (const [env, value] of [
      [{ TRACKER_CONNECTION_SECRET: 'too-short-secret' }, 'too-short-secret'],
      [{ TRACKER_STORE: 'redis', REDIS_URL: 'http://user:hunter2-pw@r:6379' }, 'hunter2-pw'],
    ] as const) {
      assert.throws(
        () => loadConfig(env),
        (e: Error) => !e.message.includes(value) && /\(got \d+ characters\)$/.test(e.message),
      );
    }
  });

  it('ignores the Redis variables for the memory store', () => {
    const c = loadConfig({ TRACKER_STORE: 'memory', REDIS_URL: 'redis://a:6379', REDIS_CLUSTER_NODES: 'b:7000' });
    assert.equal(c.store, 'memory');
    assert.equal(c.redisUrl, undefined);
    assert.equal(c.redisClusterNodes, undefined);
  });

  it('treats empty values as unset', () => {
    assert.equal(loadConfig({ TRACKER_HTTP_PORT: '' }).httpPort, 6969);
  });

  const bad: Array<[Record<string, string>, RegExp]> = [
    [{ TRACKER_HTTP_PORT: 'http' }, /^TRACKER_HTTP_PORT must be a whole number from 0 to 65535 \(got "http"\)$/],
    [{ TRACKER_UDP_PORT: '70000' }, /^TRACKER_UDP_PORT must be a whole number/],
    [{ TRACKER_HOST: 'localhost' }, /^TRACKER_HOST must be an IP address/],
    [{ TRACKER_CONNECTION_SECRET: 'short' }, /^TRACKER_CONNECTION_SECRET must be at least 32 characters/],
    [{ TRACKER_CONNECTION_SECRET_ACCEPTED: 'short' }, /^TRACKER_CONNECTION_SECRET_ACCEPTED must be at least 32 characters/],
    [{ TRACKER_STORE: 'redis', REDIS_URL: 'redis://a:6379', REDIS_PASSWORD: 'pw' }, /^REDIS_PASSWORD applies to REDIS_CLUSTER_NODES; a single server's credentials go in REDIS_URL/],
    [{ TRACKER_STORE: 'postgres' }, /^TRACKER_STORE must be "memory" or "redis"/],
    [{ TRACKER_STORE: 'redis' }, /^TRACKER_STORE=redis needs REDIS_URL .* or REDIS_CLUSTER_NODES .*neither is set$/],
    [
      { TRACKER_STORE: 'redis', REDIS_URL: 'redis://a:6379', REDIS_CLUSTER_NODES: 'b:7000' },
      /^TRACKER_STORE=redis takes REDIS_URL .* or REDIS_CLUSTER_NODES .*not both$/,
    ],
    [{ TRACKER_STORE: 'redis', REDIS_URL: 'http://redis:6379' }, /^REDIS_URL must be a redis:\/\/ or rediss:\/\/ URL/],
    [{ TRACKER_STORE: 'redis', REDIS_URL: 'redis:6379' }, /^REDIS_URL must be a redis:\/\//],
    [{ TRACKER_STORE: 'redis', REDIS_CLUSTER_NODES: 'a:7000,b' }, /^REDIS_CLUSTER_NODES must be a comma-separated list of host:port/],
    [{ TRACKER_STORE: 'redis', REDIS_CLUSTER_NODES: 'a:70000' }, /^REDIS_CLUSTER_NODES must be/],
    [{ TRACKER_STORE: 'redis', REDIS_CLUSTER_NODES: '[not-ip]:7000' }, /^REDIS_CLUSTER_NODES must be/],
    [{ TRACKER_STORE: 'redis', REDIS_CLUSTER_NODES: ' , ' }, /^REDIS_CLUSTER_NODES must be/],
    [{ TRACKER_REDIS_KEY_PREFIX: 'pt:{x}:' }, /^TRACKER_REDIS_KEY_PREFIX must not contain \{, \} or whitespace/],
    [{ TRACKER_REDIS_TIMEOUT_MS: '0' }, /^TRACKER_REDIS_TIMEOUT_MS must be a whole number from 1 to 60000/],
    [{ TRACKER_REDIS_TIMEOUT_MS: '1.5' }, /^TRACKER_REDIS_TIMEOUT_MS must be a whole number/],
    [{ TRACKER_REDIS_BATCH_MAX: '0' }, /^TRACKER_REDIS_BATCH_MAX must be a whole number from 1 to 1024/],
    [{ TRACKER_REDIS_BATCH_MAX: '2000' }, /^TRACKER_REDIS_BATCH_MAX must be a whole number from 1 to 1024/],
    [{ TRACKER_FULL_SCRAPE: 'maybe' }, /^TRACKER_FULL_SCRAPE must be true or false/],
    [{ TRACKER_TRUSTED_PROXIES: '10.0.0.0/33' }, /^TRACKER_TRUSTED_PROXIES must be a comma-separated list/],
    [{ TRACKER_TRUSTED_PROXIES: 'proxy.local' }, /^TRACKER_TRUSTED_PROXIES must be/],
    [{ TRACKER_LOG_LEVEL: 'loud' }, /^TRACKER_LOG_LEVEL /],
    [{ TRACKER_MIN_INTERVAL: '4000' }, /^TRACKER_MIN_INTERVAL \(4000\) must not exceed TRACKER_ANNOUNCE_INTERVAL/],
    [{ TRACKER_PEER_LIFETIME: '1800' }, /^TRACKER_PEER_LIFETIME \(1800\) must exceed/],
    [{ TRACKER_DEFAULT_NUMWANT: '200' }, /^TRACKER_DEFAULT_NUMWANT \(200\) must not exceed TRACKER_MAX_NUMWANT/],
    [{ TRACKER_ANNOUNCE_INTERVAL: '-5' }, /^TRACKER_ANNOUNCE_INTERVAL must be a whole number/],
    [{ TRACKER_HTTP_MAX_CONNECTIONS: '0' }, /^TRACKER_HTTP_MAX_CONNECTIONS must be a whole number from 1 to 1000000 \(got "0"\)$/],
    [{ TRACKER_HTTP_MAX_CONNECTIONS: 'lots' }, /^TRACKER_HTTP_MAX_CONNECTIONS must be a whole number/],
    [{ TRACKER_MAX_PEERS_PER_SWARM: '-1' }, /^TRACKER_MAX_PEERS_PER_SWARM must be a whole number from 0 to 10000000 \(got "-1"\)$/],
    [{ TRACKER_MAX_PEERS_PER_SWARM: '20000000' }, /^TRACKER_MAX_PEERS_PER_SWARM must be a whole number from 0 to 10000000/],
    [{ TRACKER_HTTP_MAX_CONNECTIONS_PER_IP: '-3' }, /^TRACKER_HTTP_MAX_CONNECTIONS_PER_IP must be a whole number/],
    [{ TRACKER_MAX_PEERS_PER_ADDRESS: 'many' }, /^TRACKER_MAX_PEERS_PER_ADDRESS must be a whole number/],
    [{ TRACKER_MEMORY_MAX_PEERS: '1.5' }, /^TRACKER_MEMORY_MAX_PEERS must be a whole number/],
    [{ TRACKER_MEMORY_MAX_SWARMS: '1e6' }, /^TRACKER_MEMORY_MAX_SWARMS must be a whole number/],
    [{ TRACKER_HTTP_HEADERS_TIMEOUT_MS: '10' }, /^TRACKER_HTTP_HEADERS_TIMEOUT_MS must be a whole number from 100 to 600000/],
    [{ TRACKER_HTTP_REQUEST_TIMEOUT_MS: '1e4' }, /^TRACKER_HTTP_REQUEST_TIMEOUT_MS must be a whole number/],
    [{ TRACKER_HTTP_KEEP_ALIVE_TIMEOUT_MS: '-1' }, /^TRACKER_HTTP_KEEP_ALIVE_TIMEOUT_MS must be a whole number/],
    [{ TRACKER_HTTP_IDLE_TIMEOUT_MS: '700000' }, /^TRACKER_HTTP_IDLE_TIMEOUT_MS must be a whole number/],
    [
      { TRACKER_HTTP_IDLE_TIMEOUT_MS: '2000', TRACKER_REDIS_TIMEOUT_MS: '2000' },
      /^TRACKER_HTTP_IDLE_TIMEOUT_MS \(2000\) must exceed TRACKER_REDIS_TIMEOUT_MS \(2000\)$/,
    ],
    [
      { TRACKER_HTTP_HEADERS_TIMEOUT_MS: '20000' },
      /^TRACKER_HTTP_HEADERS_TIMEOUT_MS \(20000\) must not exceed TRACKER_HTTP_REQUEST_TIMEOUT_MS \(15000\)$/,
    ],
    [{ TRACKER_SHUTDOWN_DELAY_MS: '10000' }, /^TRACKER_SHUTDOWN_DELAY_MS \(10000\) must be less than TRACKER_SHUTDOWN_TIMEOUT_MS \(10000\)$/],
    [{ TRACKER_SHUTDOWN_TIMEOUT_MS: '50' }, /^TRACKER_SHUTDOWN_TIMEOUT_MS must be a whole number from 100/],
    [{ KAFKA_BROKERS: 'kafka' }, /^KAFKA_BROKERS must be a comma-separated list of host:port/],
    [{ KAFKA_BROKERS: 'k:9092', KAFKA_TOPIC: 'a topic' }, /^KAFKA_TOPIC must be a Kafka topic name/],
    [{ KAFKA_BROKERS: 'k:9092', TRACKER_GATEWAY_ID: 'gw 1' }, /^TRACKER_GATEWAY_ID must be 1-64 of/],
    [{ KAFKA_BROKERS: 'k:9092', TRACKER_EVENTS_BUFFER: '10' }, /^TRACKER_EVENTS_BUFFER must be a whole number from 1000/],
    [{ KAFKA_BROKERS: 'k:9092', TRACKER_EVENTS_FLUSH_MS: '0' }, /^TRACKER_EVENTS_FLUSH_MS must be a whole number from 1/],
  ];
  for (const [env, message] of bad) {
    it(`names the bad variable: ${JSON.stringify(env)}`, () => {
      assert.throws(() => loadConfig(env), (err: unknown) => err instanceof ConfigError && message.test(err.message));
    });
  }
});
