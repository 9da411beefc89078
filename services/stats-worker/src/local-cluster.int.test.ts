/*
 * deploy/local-cluster.sh, as a user runs it: the Redis Cluster, Kafka, two gateways and the
 * stats worker come up; announces to both gateways are counted by the worker; `stop` leaves
 * nothing running.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { partitionOf } from '@peertracker/events';
import { redisSkipReason } from '@peertracker/redis-store/dist/testing';
import { httpGet, percentEncode } from '@peertracker/gateway/dist/testing/clients';
import { kafkaSkipReason, listening } from '@peertracker/gateway/dist/testing/kafka';
import { StatsState } from './state';

const SCRIPT = resolve(__dirname, '../../../deploy/local-cluster.sh');
const skip = kafkaSkipReason() ?? redisSkipReason('cluster') ?? false;


test('deploy/local-cluster.sh starts the cluster, whose worker counts announces to both gateways, and stops it all', { skip, timeout: 180_000 }, async () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'pt-local-')), 'cluster');
  // every port below Linux's ephemeral ports (32768 on), where other tests' free ports and
  // outgoing connections are: Redis on base … base+5 and their bus ports (+ 10,000), Kafka on
  // base+100 (its controller on the next), the gateways' HTTP and UDP on base+200 and base+201
  const base = 10_000 + Math.floor(Math.random() * 12_000);
  const kafkaPort = base + 100;
  const gatewayPort = base + 200;
  const env = { ...process.env, LOCAL_CLUSTER_DIR: dir, BASE_PORT: String(base), KAFKA_PORT: String(kafkaPort), GATEWAY_PORT: String(gatewayPort) };
  const run = (cmd: string) => spawnSync('bash', [SCRIPT, cmd], { env, encoding: 'utf8', timeout: 150_000 });
  const up = run('start');
  try {
    assert.equal(up.status, 0, `start failed: ${up.stderr}${up.stdout}`);
    const nodes = /^REDIS_CLUSTER_NODES=(.+)$/m.exec(up.stdout)?.[1];
    assert.ok(nodes, up.stdout);
    assert.match(up.stdout, new RegExp(`http://127.0.0.1:${gatewayPort + 1}/announce`));
    const infoHash = randomBytes(20);
    for (const [i, port] of [gatewayPort, gatewayPort + 1].entries()) {
      const r = await httpGet(port, `/announce?info_hash=${percentEncode(infoHash)}&peer_id=${percentEncode(randomBytes(20))}&port=${6881 + i}&uploaded=0&downloaded=0&left=${i}&event=started`);
      assert.equal(r.status, 200);
      assert.ok(!r.body.includes('failure reason'), r.body.toString());
    }
    // the worker's count of that torrent, in the cluster (6 partitions: kafka.sh's default)
    const state = new StatsState({ clusterNodes: nodes.split(',').map((n) => ({ host: '127.0.0.1', port: Number(n.split(':')[1]) })) });
    await state.connect();
    try {
      const key = `${state.stem(partitionOf(infoHash, 6))}t:${infoHash.toString('hex')}`;
      const deadline = Date.now() + 60_000;
      while ((await state.client.hget(key, 'a')) !== '2') {
        assert.ok(Date.now() < deadline, `the worker did not count both announces (${key})`);
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.deepEqual(await state.client.hmget(key, 's', 'l'), ['1', '1']);
    } finally {
      await state.close();
    }
  } finally {
    const down = run('stop');
    assert.equal(down.status, 0, `stop failed: ${down.stderr}${down.stdout}`);
  }
  assert.ok(!existsSync(dir), 'the data directory is still there');
  for (const port of [gatewayPort, gatewayPort + 1, kafkaPort, base, base + 5]) assert.equal(await listening(port), false, `something still listens on ${port}`);
});
