/*
 * A Redis Cluster whose nodes require a password (requirepass, masterauth): the gateway process
 * and the statistics' state reach it with REDIS_PASSWORD, and a gateway without it refuses to
 * start with Redis's own reason instead of answering announces with errors.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { bdecode } from '@peertracker/protocol';
import { announcePath, httpGet } from '@peertracker/gateway/dist/testing/clients';
import { clusterGatewayEnv, startGateway, stopGateway, type GatewayProcess } from '@peertracker/gateway/dist/testing/gateway-process';
import { redisSkipReason, startPasswordCluster, type RedisTestServer } from '@peertracker/redis-store/dist/testing';
import { StatsState } from './state';

const PASSWORD = `pw ${randomBytes(12).toString('hex')}`;
const skip = redisSkipReason('cluster') ?? false;

describe('a Redis Cluster with a password', { skip }, () => {
  let redis: RedisTestServer;
  before(async () => {
    redis = await startPasswordCluster(PASSWORD);
  });
  after(async () => {
    await redis?.stop();
  });

  it('serves announces through a gateway given REDIS_PASSWORD', async () => {
    let gw: GatewayProcess | undefined;
    try {
      gw = await startGateway({ ...clusterGatewayEnv(redis.nodes), REDIS_PASSWORD: PASSWORD });
      const infoHash = randomBytes(20);
      for (const port of [7001, 7002]) {
        const r = await httpGet(gw.httpPort, announcePath({ infoHash, peerId: randomBytes(20), port, compact: 1 }));
        const body = bdecode(r.body) as Map<string, unknown>;
        assert.equal(body.get('failure reason'), undefined, String(body.get('failure reason')));
        if (port === 7002) assert.equal(body.get('incomplete'), 2, 'the first peer was stored in the cluster');
      }
    } finally {
      await stopGateway(gw);
    }
  });

  it('refuses to start a gateway without it, saying why', async () => {
    await assert.rejects(startGateway(clusterGatewayEnv(redis.nodes)), /NOAUTH|Authentication required|WRONGPASS/i);
  });

  it("keeps the statistics' state there with it", async () => {
    const state = new StatsState({ clusterNodes: redis.nodes, password: PASSWORD }, `t${randomBytes(4).toString('hex')}:`);
    try {
      await state.connect();
      assert.equal(await state.client.ping(), 'PONG');
      await state.client.set(`${state.prefix}auth-probe`, '1', 'EX', 60);
      assert.equal(await state.client.get(`${state.prefix}auth-probe`), '1');
    } finally {
      state.client.disconnect();
    }
  });
});
