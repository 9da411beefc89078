/*
 * deploy/local-cluster.sh, as a user runs it: the Redis Cluster, Kafka, two gateways, the stats
 * worker and the stats API come up; known announces to both gateways are read back from the API
 * with exactly the expected numbers (JSON and CSV); `stop` leaves nothing running.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { redisSkipReason } from '@peertracker/redis-store/dist/testing';
import { httpGet, percentEncode } from '@peertracker/gateway/dist/testing/clients';
import { kafkaSkipReason, listening } from '@peertracker/gateway/dist/testing/kafka';
import { eventually } from './testing';

const SCRIPT = resolve(__dirname, '../../../deploy/local-cluster.sh');
const skip = kafkaSkipReason() ?? redisSkipReason('cluster') ?? false;


// the API's JSON, read field by field by the assertions
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

/** GET from the stats API, as JSON (or the text, for CSV) */
async function api(port: number, path: string): Promise<{ status: number; json: Json; text: string }> {
  const r = await httpGet(port, path);
  const text = r.body.toString();
  return { status: r.status, text, json: String(r.headers['content-type']).startsWith('application/json') ? JSON.parse(text) : undefined };
}

test('deploy/local-cluster.sh starts the cluster; announces to both gateways read back exactly from the stats API; stop ends it all', { skip, timeout: 180_000 }, async () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'pt-local-')), 'cluster');
  // every port below Linux's ephemeral ports (32768 on), where other tests' free ports and
  // outgoing connections are: Redis on base … base+5 and their bus ports (+ 10,000), Kafka on
  // base+100 (its controller on the next), the gateways' HTTP and UDP on base+200 and base+201,
  // the API and the worker's metrics on base+300 and base+301
  const base = 10_000 + Math.floor(Math.random() * 12_000);
  const kafkaPort = base + 100;
  const gatewayPort = base + 200;
  const apiPort = base + 300;
  const workerPort = base + 301;
  const env = {
    ...process.env,
    LOCAL_CLUSTER_DIR: dir,
    BASE_PORT: String(base),
    KAFKA_PORT: String(kafkaPort),
    GATEWAY_PORT: String(gatewayPort),
    API_PORT: String(apiPort),
    WORKER_PORT: String(workerPort),
    STATS_ROLLUP_EVERY_MS: '1000',
    STATS_TOP_EVERY_MS: '1000',
  };
  const run = (cmd: string) => spawnSync('bash', [SCRIPT, cmd], { env, encoding: 'utf8', timeout: 150_000 });
  const up = run('start');
  try {
    assert.equal(up.status, 0, `start failed: ${up.stderr}${up.stdout}`);
    assert.match(up.stdout, new RegExp(`http://127.0.0.1:${gatewayPort + 1}/announce`));
    assert.match(up.stdout, new RegExp(`http://127.0.0.1:${apiPort}/v1/series`));
    // one torrent; a qBittorrent leecher on gateway 1 that completes on gateway 2, and a
    // Transmission seeder on gateway 2
    const infoHash = randomBytes(20);
    const hex = infoHash.toString('hex');
    const qb = Buffer.concat([Buffer.from('-qB4650-'), randomBytes(12)]);
    const tr = Buffer.concat([Buffer.from('-TR4060-'), randomBytes(12)]);
    const day = new Date().toISOString().slice(0, 10);
    const announces: [number, Buffer, number, string][] = [
      [gatewayPort, qb, 1000, 'started'],
      [gatewayPort + 1, tr, 0, 'started'],
      [gatewayPort + 1, qb, 0, 'completed'],
    ];
    for (const [port, peerId, left, event] of announces) {
      const r = await httpGet(port, `/announce?info_hash=${percentEncode(infoHash)}&peer_id=${percentEncode(peerId)}&port=${6881 + port - gatewayPort}&uploaded=0&downloaded=0&left=${left}&event=${event}`);
      assert.equal(r.status, 200);
      assert.ok(!r.body.includes('failure reason'), r.body.toString());
    }
    await eventually('the torrent', async () => {
      const t = await api(apiPort, `/v1/torrents/${hex}`);
      assert.equal(t.status, 200, t.text);
      assert.deepEqual({ ...t.json, firstSeen: undefined, lastSeen: undefined }, { infoHash: hex, announces: 3, completions: 1, seeders: 2, leechers: 0, peakSeeders: 2, peakLeechers: 1, firstSeen: undefined, lastSeen: undefined });
    });
    // the day's series, rolled up by the scheduled job: exactly these announces
    await eventually('the day in the series', async () => {
      const r = await api(apiPort, `/v1/series?resolution=day&from=${day}T00:00:00Z&limit=1`);
      assert.equal(r.status, 200, r.text);
      const { time, ...point } = r.json.points[0];
      assert.equal(time, `${day}T00:00:00.000Z`);
      assert.deepEqual(point, { announces: 3, http: 3, udp: 0, ws: 0, started: 2, completed: 1, stopped: 0, paused: 0, none: 0, ipv4: 3, ipv6: 0, activeTorrents: 1, late: 0 });
    });
    const minutes = await api(apiPort, `/v1/series?from=${new Date(Date.now() - 5 * 60_000).toISOString()}&limit=10`);
    assert.equal(minutes.json.points.reduce((s: number, p: { announces: number }) => s + p.announces, 0), 3);
    const clients = await api(apiPort, `/v1/clients?day=${day}&format=csv`);
    assert.equal(clients.text, `client,announces,share\r\nqBittorrent 4.6.5,2,${2 / 3}\r\nTransmission 4.0.6,1,${1 / 3}\r\n`);
    await eventually('the top list', async () => {
      const top = await api(apiPort, `/v1/top?by=completions&day=${day}`);
      assert.deepEqual(top.json.torrents, [{ rank: 1, infoHash: hex, announces: 3, completions: 1 }]);
    });
    const history = await api(apiPort, `/v1/torrents/${hex}/history?from=${day}&to=${day}`);
    assert.deepEqual(history.json.days, [{ day, announces: 3, completions: 1, peakSeeders: 2, peakLeechers: 1, uniquePeers: 2 }]);
    // clear 400s that name the parameter
    for (const [query, name] of [
      ['resolution=hour', /from/],
      [`from=${day}T00:00:00Z&resolution=week`, /resolution/],
      [`from=${day}T00:00:00Z&limit=0`, /limit/],
    ] as const) {
      const bad = await api(apiPort, `/v1/series?${query}`);
      assert.equal(bad.status, 400, query);
      assert.match(bad.json.error.message, name, query);
    }
    const metrics = await httpGet(workerPort, '/metrics');
    assert.match(metrics.body.toString(), /^stats_events_written_total 3$/m);
    // the probes the Helm chart uses: readiness (joined the group) and liveness
    assert.equal((await httpGet(workerPort, '/health')).status, 200);
    assert.equal((await httpGet(workerPort, '/health/live')).status, 200);
    assert.equal((await httpGet(apiPort, '/health/live')).status, 200);
  } finally {
    const down = run('stop');
    assert.equal(down.status, 0, `stop failed: ${down.stderr}${down.stdout}`);
  }
  assert.ok(!existsSync(dir), 'the data directory is still there');
  for (const port of [gatewayPort, gatewayPort + 1, kafkaPort, base, base + 5, apiPort, workerPort]) assert.equal(await listening(port), false, `something still listens on ${port}`);
});
