/*
 * Redis failures under load, through a real gateway process (`node dist/main.js`):
 *   a. a Redis Cluster master is killed (SIGKILL) while HTTP and UDP announces for a swarm in its
 *      slots run at a steady rate: its replica takes over (cluster-node-timeout is 2000 ms in the
 *      test provider) and those announces succeed again within 5 s of the kill;
 *   b. the only Redis server is killed, then a new one started on the same port: announces fail
 *      while it is down and succeed again afterwards, without restarting the gateway;
 *   c. the same with every node of a Redis Cluster (all killed, then all started again on their
 *      ports with their cluster configs).
 * Throughout, every request gets a prompt answer (a bencoded failure reason, a BEP 15 error or a
 * success) within TRACKER_REDIS_TIMEOUT_MS plus a small margin, the gateway stays up, and its
 * /metrics counts every failure the clients saw.
 *
 * The servers come from @peertracker/redis-store's test provider, always as local redis-server
 * processes started here (they are killed): REDIS_CLUSTER_NODES / REDIS_URL and REDIS_TEST_PROVIDER
 * are ignored. Without redis-server the suite is skipped, except under CI=true, where it fails.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  startRedisTestServer,
  type RedisTestServer,
} from '@peertracker/redis-store/dist/testing';
import { announcePath, httpGet, udpAnnouncePacket, udpConnect, udpExchange } from './testing/clients';
import {
  HOST,
  alive,
  classifyHttp,
  classifyUdp,
  killRedis,
  masterPortOfHashTag,
  OWN_REDIS_ENV,
  ownRedisSkip,
  redisCli,
  sleep,
  startGateway,
  startRedisOnPort,
  stopGateway,
  waitReplicasInSync,
  type GatewayProcess,
  type OwnRedis,
  type Outcome,
} from './testing/gateway-process';

/** TRACKER_REDIS_TIMEOUT_MS given to the gateway, and how much later than that an answer may come. */
const REDIS_TIMEOUT_MS = 1000;
const MARGIN_MS = 500;
/** One HTTP and one UDP announce are sent every PERIOD_MS. */
const PERIOD_MS = 100;
/** The replica must have taken over, and announces succeed again, within this after the kill. */
const FAILOVER_LIMIT_MS = 5000;
/** cluster-node-timeout set on the cluster for this test (failure detection; failover follows it). */
const NODE_TIMEOUT_MS = 1000;
/** After a recovery, requests must keep succeeding; this long is watched. */
const STEADY_MS = 1500;

const startOwnRedis = (kind: 'single' | 'cluster') => startRedisTestServer(kind, OWN_REDIS_ENV);

interface Sample {
  proto: 'http' | 'udp';
  /** ms since the load started */
  start: number;
  latency: number;
  outcome: Outcome;
  detail: string;
}

/**
 * Announces for infoHash through gw over HTTP and UDP at a steady rate (one of each every PERIOD_MS,
 * each sent without waiting for earlier ones, as independent clients would), until stop() is called.
 * Every request is recorded with its latency and outcome.
 */
async function load(gw: GatewayProcess, infoHash: Buffer) {
  const t0 = Date.now();
  const samples: Sample[] = [];
  const pending = new Set<Promise<void>>();
  const track = (p: Promise<void>) => {
    pending.add(p);
    void p.finally(() => pending.delete(p));
  };
  const peerId = randomBytes(20);
  const udpPeer = randomBytes(20);
  // connection IDs are stateless and accepted for about two minutes: one is enough here
  const connectionId = await udpConnect(gw.udpPort);
  let tid = 1;
  const tick = () => {
    const start = Date.now();
    track(
      httpGet(gw.httpPort, announcePath({ infoHash, peerId, port: 45001 })).then(
        (reply) => {
          samples.push({ proto: 'http', start: start - t0, latency: Date.now() - start, ...classifyHttp(reply.status, reply.body) });
        },
        (err: Error) => {
          samples.push({ proto: 'http', start: start - t0, latency: Date.now() - start, outcome: 'none', detail: err.message });
        },
      ),
    );
    const id = ++tid;
    track(
      udpExchange(
        gw.udpPort,
        udpAnnouncePacket({ connectionId, transactionId: id, infoHash, peerId: udpPeer, port: 45002 }),
        HOST,
        REDIS_TIMEOUT_MS + 3000,
      )
        .catch(() => null)
        .then((reply) => {
          samples.push({ proto: 'udp', start: start - t0, latency: Date.now() - start, ...classifyUdp(reply, id) });
        }),
    );
  };
  const timer = setInterval(tick, PERIOD_MS);
  tick();
  return {
    samples,
    now: () => Date.now() - t0,
    stop: async () => {
      clearInterval(timer);
      await Promise.all([...pending]);
      samples.sort((a, b) => a.start - b.start);
    },
  };
}

/** Lets the load run a second, then asserts HTTP and UDP announces both succeeded. */
async function succeedsBeforeTheFault(samples: Sample[]): Promise<void> {
  await sleep(1000);
  assert.ok(
    samples.some((s) => s.outcome === 'success' && s.proto === 'http') &&
      samples.some((s) => s.outcome === 'success' && s.proto === 'udp'),
    `announces did not succeed before the kill: ${summary(samples)}`,
  );
}

/** "http: 40 success, 12 failure; udp: …" plus the slowest answer, for messages. */
function summary(samples: Sample[]): string {
  const parts = (['http', 'udp'] as const).map((p) => {
    const mine = samples.filter((s) => s.proto === p);
    const count = (o: Outcome) => mine.filter((s) => s.outcome === o).length;
    return `${p}: ${count('success')} success, ${count('failure')} failure, ${count('none')} unanswered`;
  });
  const slowest = Math.max(0, ...samples.map((s) => s.latency));
  const failures = [...new Set(samples.filter((s) => s.outcome !== 'success').map((s) => s.detail))].slice(0, 5);
  return `${parts.join('; ')}; slowest ${slowest} ms; failure details: ${JSON.stringify(failures)}`;
}

function assertPromptAndAnswered(samples: Sample[], gw: GatewayProcess): void {
  const limit = REDIS_TIMEOUT_MS + MARGIN_MS;
  const late = samples.filter((s) => s.latency > limit || s.outcome === 'none');
  assert.deepEqual(
    late.map((s) => `${s.proto} at ${s.start} ms: ${s.outcome} after ${s.latency} ms ${s.detail}`),
    [],
    `every request must be answered within ${limit} ms (${summary(samples)})`,
  );
  assert.ok(alive(gw), `the gateway exited: ${gw.output.join('').slice(-2000)}`);
}

/**
 * Every failure a client saw is on the gateway's /metrics: as a server error of its transport and
 * as a store failure (timeout or error).
 */
async function assertFailuresCounted(samples: Sample[], gw: GatewayProcess): Promise<void> {
  const text = (await httpGet(gw.httpPort, '/metrics')).body.toString();
  const value = (series: string) => {
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    assert.ok(line !== undefined, `${series} missing from /metrics`);
    return Number(line.slice(series.length + 1));
  };
  const failed = (proto?: 'http' | 'udp') => samples.filter((s) => s.outcome === 'failure' && (proto === undefined || s.proto === proto)).length;
  for (const proto of ['http', 'udp'] as const) {
    assert.equal(value(`tracker_server_errors_total{transport="${proto}"}`), failed(proto), `${proto} server errors`);
  }
  const store = value('tracker_store_failures_total{kind="timeout"}') + value('tracker_store_failures_total{kind="error"}');
  assert.equal(store, failed(), 'store failures (timeout + error)');
}

/** Time (ms since the load started) of the first success of proto started at or after `from`. */
function firstSuccess(samples: Sample[], proto: 'http' | 'udp', from: number): number | undefined {
  const done = samples
    .filter((x) => x.proto === proto && x.start >= from && x.outcome === 'success')
    .map((x) => x.start + x.latency);
  return done.length === 0 ? undefined : Math.min(...done);
}

async function waitUntil(what: string, ms: number, check: () => boolean, context: () => Promise<string>): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what} not reached within ${ms} ms: ${await context()}`);
    await sleep(50);
  }
}

const gatewayEnv = (redis: Record<string, string>) => ({
  TRACKER_HOST: HOST,
  TRACKER_STORE: 'redis',
  ...redis,
  TRACKER_REDIS_TIMEOUT_MS: String(REDIS_TIMEOUT_MS),
  TRACKER_CONNECTION_SECRET: randomBytes(32).toString('hex'),
  TRACKER_REDIS_KEY_PREFIX: `rf${randomBytes(4).toString('hex')}:`,
  TRACKER_LOG_LEVEL: 'warn',
});

/**
 * Inside a describe: a local Redis Cluster of this suite's own and a gateway on it, started before
 * its tests and stopped after. The getters throw until they are up.
 */
function clusterAndGateway(): { redis: () => RedisTestServer; gw: () => GatewayProcess } {
  let redis: RedisTestServer | undefined;
  let gw: GatewayProcess | undefined;
  before(async () => {
    redis = await startOwnRedis('cluster');
    gw = await startGateway(
      gatewayEnv({ REDIS_CLUSTER_NODES: redis.nodes.map((n) => `${n.host}:${n.port}`).join(',') }),
    );
  });
  after(async () => {
    await stopGateway(gw);
    await redis?.stop();
  });
  const up = <T>(v: T | undefined, what: string): T => {
    if (v === undefined) throw new Error(`${what} did not start`);
    return v;
  };
  return { redis: () => up(redis, 'the Redis Cluster'), gw: () => up(gw, 'the gateway') };
}

describe('a Redis Cluster master killed under load', { skip: ownRedisSkip(), timeout: 120_000 }, () => {
  const servers = clusterAndGateway();

  it(`its replica takes over; announces succeed again within ${FAILOVER_LIMIT_MS} ms, every answer prompt`, async () => {
    const redis = servers.redis();
    const gw = servers.gw();
    const infoHash = randomBytes(20);
    const victim = await masterPortOfHashTag(redis.nodes[0].port, infoHash.toString('hex'));
    // The provider runs the cluster with cluster-node-timeout 2000 ms; Redis alone then needs 3.8 to
    // 4.5 s (measured on a loaded 2-core machine) to promote the replica, too close to the 5 s bound.
    // This cluster is this suite's own, so its node timeout is lowered at runtime.
    for (const n of redis.nodes) await redisCli(n.port, 'config', 'set', 'cluster-node-timeout', String(NODE_TIMEOUT_MS));
    // a replica that never synced with its master does not take over
    const replicas = await waitReplicasInSync(redis.nodes.find((n) => n.port !== victim)!.port, victim, 20_000);
    const l = await load(gw, infoHash);
    let killAt = 0;
    let promotedAt: number | undefined;
    let watching = true;
    try {
      await succeedsBeforeTheFault(l.samples);
      killAt = l.now();
      await killRedis(victim);
      void (async () => {
        // when the replica reports itself master (for the message only)
        while (watching && promotedAt === undefined) {
          const info = await redisCli(replicas[0], 'info', 'replication').catch(() => '');
          if (/role:master/.test(info)) promotedAt = l.now();
          else await sleep(50);
        }
      })();
      // both protocols succeed again (requests started after the kill), then a steady while more
      await waitUntil('recovery after the kill', FAILOVER_LIMIT_MS + 7000, () => {
        const h = firstSuccess(l.samples, 'http', killAt + 100);
        const u = firstSuccess(l.samples, 'udp', killAt + 100);
        return h !== undefined && u !== undefined && l.now() > Math.max(h, u) + STEADY_MS;
      }, async () => {
        const nodes = await redisCli(redis.nodes.find((n) => n.port !== victim)!.port, 'cluster', 'nodes').catch((e: Error) => e.message);
        return `master ${victim} killed at ${killAt} ms; ${summary(l.samples)}\ncluster nodes:\n${nodes}\ngateway output: ${gw.output.join('').slice(-1500)}`;
      });
    } finally {
      watching = false;
      await l.stop();
    }
    const { samples } = l;
    const recovered = Math.max(firstSuccess(samples, 'http', killAt + 100)!, firstSuccess(samples, 'udp', killAt + 100)!);
    const context = `master on port ${victim} (replicas ${replicas.join(',')}) killed at ${killAt} ms, replica promoted at ${promotedAt ?? '?'} ms, announces recovered at ${recovered} ms (${recovered - killAt} ms after the kill); ${summary(samples)}`;
    process.stdout.write(`# ${context}\n`);
    assertPromptAndAnswered(samples, gw);
    await assertFailuresCounted(samples, gw);
    assert.ok(
      samples.some((s) => s.start > killAt + 100 && s.outcome === 'failure'),
      `no failure after the kill: was the right master killed? ${context}`,
    );
    assert.ok(recovered - killAt <= FAILOVER_LIMIT_MS, `announces succeeded again only ${recovered - killAt} ms after the kill: ${context}`);
    const afterRecovery = samples.filter((s) => s.start > recovered + 500 && s.outcome !== 'success');
    assert.deepEqual(afterRecovery.map((s) => `${s.proto} at ${s.start}: ${s.detail}`), [], `failures after recovery: ${context}`);
  });
});

/**
 * Runs the load against gw, takes all of Redis down for 3 s (down()), brings it back (up()), and
 * asserts: successes before, only prompt failures while down (HTTP and UDP: requests answered
 * before up() was called), successes again within 15 s of up() returning, and nothing but
 * successes after that; the gateway never exits.
 */
async function downAndBack(gw: GatewayProcess, down: () => Promise<void>, up: () => Promise<void>): Promise<void> {
  const infoHash = randomBytes(20);
  const l = await load(gw, infoHash);
  let killAt = 0;
  let restartAt = 0;
  try {
    await succeedsBeforeTheFault(l.samples);
    killAt = l.now();
    await down();
    await sleep(3000); // down: every answer a failure, and prompt
    // taken before up(): a restarted node may serve requests before up() has seen all of it ready
    restartAt = l.now();
    await up();
    await waitUntil('recovery after the restart', 15_000, () => {
      const h = firstSuccess(l.samples, 'http', restartAt);
      const u = firstSuccess(l.samples, 'udp', restartAt);
      return h !== undefined && u !== undefined && l.now() > Math.max(h, u) + STEADY_MS;
    }, async () => `killed at ${killAt} ms, restarted at ${restartAt} ms; ${summary(l.samples)}\ngateway output: ${gw.output.join('').slice(-1500)}`);
  } finally {
    await l.stop();
  }
  const { samples } = l;
  const recovered = Math.max(firstSuccess(samples, 'http', restartAt)!, firstSuccess(samples, 'udp', restartAt)!);
  const context = `killed at ${killAt} ms, restarted at ${restartAt} ms, recovered at ${recovered} ms; ${summary(samples)}`;
  process.stdout.write(`# ${context}\n`);
  assertPromptAndAnswered(samples, gw);
  await assertFailuresCounted(samples, gw);
  const downSamples = samples.filter((s) => s.start > killAt + 100 && s.start + s.latency < restartAt);
  for (const proto of ['http', 'udp'] as const) {
    assert.ok(downSamples.some((s) => s.proto === proto && s.outcome === 'failure'), `no ${proto} failure while Redis was down: ${context}`);
  }
  assert.deepEqual(
    downSamples.filter((s) => s.outcome === 'success').map((s) => `${s.proto} at ${s.start}`),
    [],
    `success while Redis was down: ${context}`,
  );
  const afterRecovery = samples.filter((s) => s.start > recovered + 500 && s.outcome !== 'success');
  assert.deepEqual(afterRecovery.map((s) => `${s.proto} at ${s.start}: ${s.detail}`), [], `failures after recovery: ${context}`);
}

describe('the only Redis server killed, then started again', { skip: ownRedisSkip(), timeout: 90_000 }, () => {
  let redis: RedisTestServer | undefined;
  let again: OwnRedis | undefined;
  let gw: GatewayProcess | undefined;

  before(async () => {
    redis = await startOwnRedis('single');
    gw = await startGateway(gatewayEnv({ REDIS_URL: redis.url! }));
  });

  after(async () => {
    await stopGateway(gw);
    await again?.stop();
    await redis?.stop();
  });

  it('fails promptly over HTTP and UDP while down, and recovers without a gateway restart', async () => {
    assert.ok(redis && gw);
    const port = redis.nodes[0].port;
    await downAndBack(
      gw,
      async () => void (await killRedis(port)),
      async () => void (again = await startRedisOnPort(port)),
    );
  });
});

describe('every node of the Redis Cluster killed, then started again', { skip: ownRedisSkip(), timeout: 120_000 }, () => {
  const servers = clusterAndGateway();

  it('fails promptly over HTTP and UDP while down, and recovers without a gateway restart', async () => {
    const redis = servers.redis();
    const gw = servers.gw();
    const outage = redis.outage;
    assert.ok(outage, 'the local cluster provider can take its cluster down and up');
    await downAndBack(gw, outage.killAll, outage.startAll);
  });
});
