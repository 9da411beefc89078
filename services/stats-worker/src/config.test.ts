import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { makeTestCertificates } from '@peertracker/redis-store/dist/testing';
import { ConfigError, apiConfig, workerConfig } from './config';

const base = { KAFKA_BROKERS: 'k1:9092,[::1]:9093', REDIS_CLUSTER_NODES: 'r1:7000' };

test('the worker configuration: defaults, and each bad value named', () => {
  const c = workerConfig(base);
  assert.deepEqual(c.brokers, ['k1:9092', '[::1]:9093']);
  assert.deepEqual(c.target, { clusterNodes: [{ host: 'r1', port: 7000 }], username: undefined, password: undefined });
  assert.deepEqual(workerConfig({ ...base, REDIS_USERNAME: 'stats', REDIS_PASSWORD: ' pw ' }).target, { clusterNodes: [{ host: 'r1', port: 7000 }], username: 'stats', password: ' pw ' });
  assert.equal(c.horizonMs, 3_600_000);
  assert.equal(c.retention.torrentDays, 30 * 86400);
  assert.equal(c.maxClockSkewMs, 600_000);
  for (const [env, name] of [
    [{ KAFKA_BROKERS: '' }, /KAFKA_BROKERS/],
    [{ KAFKA_BROKERS: 'k1' }, /KAFKA_BROKERS/],
    [{ KAFKA_TOPIC: 'a topic' }, /KAFKA_TOPIC/],
    [{ REDIS_URL: 'redis://x' }, /exactly one of REDIS_URL and REDIS_CLUSTER_NODES/],
    [{ STATS_KEY_PREFIX: 'a{b' }, /STATS_KEY_PREFIX/],
    [{ STATS_TOP_N: '0' }, /STATS_TOP_N/],
    [{ STATS_ROLLUP_EVERY_MS: 'soon' }, /STATS_ROLLUP_EVERY_MS/],
    [{ STATS_KEEP_WORKING_DAYS: '1' }, /STATS_KEEP_WORKING_DAYS/],
    [{ STATS_SEAL_HORIZON_S: String(2 * 86400) }, /STATS_SEAL_HORIZON_S plus a day/],
    [{ STATS_MAX_CLOCK_SKEW_S: '-1' }, /STATS_MAX_CLOCK_SKEW_S/],
  ] as const) {
    assert.throws(() => workerConfig({ ...base, ...env }), (e: Error) => e instanceof ConfigError && name.test(e.message), JSON.stringify(env));
  }
});

test('the API configuration', () => {
  assert.equal(apiConfig({ REDIS_URL: 'redis://r:6379' }).port, 8080);
  assert.equal(apiConfig({ REDIS_URL: 'redis://r:6379' }).maxInFlight, 32);
  assert.throws(() => apiConfig({ REDIS_URL: 'redis://r:6379', STATS_API_PORT: '70000' }), /STATS_API_PORT/);
  assert.throws(() => apiConfig({}), /REDIS_URL/);
  assert.throws(() => apiConfig({ REDIS_URL: 'redis://r:6379', REDIS_PASSWORD: 'pw' }), /REDIS_PASSWORD applies to REDIS_CLUSTER_NODES/);
});

test('TLS and SASL: the same variables as the gateway, each error named', () => {
  const certs = makeTestCertificates();
  try {
    const c = workerConfig({ ...base, REDIS_TLS: 'true', REDIS_TLS_CA_FILE: certs.ca, KAFKA_TLS: 'true', KAFKA_SASL_MECHANISM: 'scram-sha-256', KAFKA_SASL_USERNAME: 'stats', KAFKA_SASL_PASSWORD: 'pw' });
    assert.deepEqual(c.target, { clusterNodes: [{ host: 'r1', port: 7000 }], username: undefined, password: undefined, tls: { ca: readFileSync(certs.ca) } });
    assert.deepEqual(c.kafkaSecurity, { ssl: {}, sasl: { mechanism: 'scram-sha-256', username: 'stats', password: 'pw' } });
    assert.deepEqual(workerConfig(base).kafkaSecurity, {});
    assert.deepEqual(apiConfig({ REDIS_URL: 'rediss://r:6380', REDIS_TLS_CA_FILE: certs.ca }).target, { url: 'rediss://r:6380', tls: { ca: readFileSync(certs.ca) } });
    for (const [env, message] of [
      [{ REDIS_TLS_CERT_FILE: certs.clientCert }, /^REDIS_TLS_CERT_FILE is set but TLS is off/],
      [{ REDIS_TLS: 'true', REDIS_TLS_KEY_FILE: certs.clientKey }, /^REDIS_TLS_CERT_FILE is missing/],
      [{ KAFKA_TLS: 'true', KAFKA_TLS_CA_FILE: '/nonexistent' }, /^KAFKA_TLS_CA_FILE: cannot read/],
      [{ KAFKA_SASL_USERNAME: 'u' }, /^KAFKA_SASL_USERNAME is set without KAFKA_SASL_MECHANISM/],
    ] as const) {
      assert.throws(() => workerConfig({ ...base, ...env }), (e: Error) => e instanceof ConfigError && message.test(e.message), JSON.stringify(env));
    }
    assert.throws(() => apiConfig({ REDIS_URL: 'redis://r:6379', REDIS_TLS: 'true' }), /REDIS_TLS=true with a redis:\/\/ REDIS_URL/);
  } finally {
    certs.remove();
  }
});
