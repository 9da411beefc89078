import { test } from 'node:test';
import assert from 'node:assert/strict';
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
