/**
 * End-to-end across replicas: two real BitTorrent clients (aria2c) find each other through two
 * different gateway processes (`node dist/main.js`) sharing one Redis Cluster. The seeder announces
 * to gateway 1 only, the leecher to gateway 2 only (two torrents of the same content with different
 * announce URLs: the announce URL is outside the info dictionary, so both have one info hash, which
 * the helper checks), and the leecher downloads a random file whose SHA-256 is checked.
 *
 * Needs aria2c, mktorrent and a Redis Cluster (Debian redis-server started here, or
 * REDIS_CLUSTER_NODES). Without them the suite is skipped, except under CI=true, where it fails.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  redisSkipReason,
  startRedisTestServer,
  type RedisTestServer,
} from '@peertracker/redis-store/dist/testing';
import { HOST, clusterGatewayEnv, startGateways, stopGateway, type GatewayProcess } from '../testing/gateway-process';
import { missingBinaries, transferThroughTracker } from './aria2';

const CI = process.env.CI === 'true';
const missing = missingBinaries();
const missingMessage =
  missing.length > 0 ? `${missing.join(' and ')} not found on PATH (Debian: apt-get install -y aria2 mktorrent)` : '';
const redisSkip = redisSkipReason('cluster');

const TRANSFER_TIMEOUT_MS = 60_000;
const TEST_TIMEOUT_MS = TRANSFER_TIMEOUT_MS + 30_000;

const skip = CI ? false : (redisSkip ?? (missing.length > 0 ? missingMessage : false));

describe('real BitTorrent clients (aria2c) through two gateways over one Redis Cluster', { skip }, () => {
  let redis: RedisTestServer | undefined;
  const gateways: GatewayProcess[] = [];

  before(async () => {
    if (missing.length > 0) return; // under CI each test fails with the message below
    redis = await startRedisTestServer('cluster');
    const env = {
      ...clusterGatewayEnv(redis.nodes),
      TRACKER_ANNOUNCE_INTERVAL: '5',
      TRACKER_MIN_INTERVAL: '1',
      TRACKER_INTERVAL_JITTER: '0',
    };
    gateways.push(...(await startGateways(2, env)));
  });

  after(async () => {
    await Promise.all(gateways.map(stopGateway));
    await redis?.stop();
  });

  function two(): [GatewayProcess, GatewayProcess] {
    if (missing.length > 0) assert.fail(missingMessage);
    assert.equal(gateways.length, 2, 'the gateways did not start');
    return [gateways[0], gateways[1]];
  }

  it('HTTP: seeder on gateway 1, leecher on gateway 2', { timeout: TEST_TIMEOUT_MS }, async () => {
    const [g1, g2] = two();
    await transferThroughTracker({
      announceUrl: `http://${HOST}:${g1.httpPort}/announce`,
      leecherAnnounceUrl: `http://${HOST}:${g2.httpPort}/announce`,
      timeoutMs: TRANSFER_TIMEOUT_MS,
    });
  });

  it('UDP: seeder on gateway 1, leecher on gateway 2', { timeout: TEST_TIMEOUT_MS }, async () => {
    const [g1, g2] = two();
    await transferThroughTracker({
      announceUrl: `udp://${HOST}:${g1.udpPort}/announce`,
      leecherAnnounceUrl: `udp://${HOST}:${g2.udpPort}/announce`,
      timeoutMs: TRANSFER_TIMEOUT_MS,
    });
  });
});
