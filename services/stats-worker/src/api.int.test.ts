/*
 * The stats API on a real Redis Cluster, over statistics written by the worker's own script and
 * rolled up by its jobs (BullMQ's schedulers among them): exact numbers, pagination, CSV, clear
 * 400s and 404s, and a property-based fuzzer (schemathesis) that must find no 5xx and no answer
 * outside the OpenAPI document.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { connect, type AddressInfo, type Server } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Cluster } from 'ioredis';
import { decodeClient, type AnnounceEvent } from '@peertracker/events';
import { redisSkipReason, startRedisTestServer, type RedisTestServer } from '@peertracker/redis-store/dist/testing';
import { httpGet } from '@peertracker/gateway/dist/testing/clients';
import { addEvents, emptyDelta } from './aggregate';
import { createApi } from './api';
import { StatsJobs } from './jobs';
import { StatsReader } from './read';
import { StatsState } from './state';
import { announceEvent } from './testing';

const skip = redisSkipReason('cluster') ?? false;
const DAY = Date.UTC(2026, 10, 30);
const H = 3_600_000;

/** schemathesis's command: SCHEMATHESIS, or where .ci/run installs it */
function schemathesis(): string | undefined {
  const given = process.env.SCHEMATHESIS?.trim();
  if (given) return given;
  const cache = process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache');
  const installed = join(cache, 'peertracker', 'venv', 'bin', 'st');
  return existsSync(installed) ? installed : undefined;
}

const event = announceEvent;

describe('stats API', { skip }, () => {
  let redis: RedisTestServer;
  let state: StatsState;
  let jobs: StatsJobs;
  let queueConnection: Cluster;
  let server: Server;
  let port: number;
  let highWatermarks = new Map<number, bigint>();
  const torrents = Array.from({ length: 5 }, () => randomBytes(20));
  const hex = torrents.map((t) => t.toString('hex'));

  before(async () => {
    redis = await startRedisTestServer('cluster');
    state = new StatsState({ clusterNodes: redis.nodes }, `a${randomBytes(3).toString('hex')}:`);
    await state.connect();
    jobs = new StatsJobs({
      state,
      connection: (queueConnection = new Cluster(redis.nodes, { redisOptions: { maxRetriesPerRequest: null } })),
      highWatermarks: async () => highWatermarks,
      rollupEveryMs: 500,
      topEveryMs: 500,
      sealEveryMs: 3_600_000,
      horizonMs: H,
      topN: 3,
      log: { info: () => {}, warn: () => {} },
    });
    // torrent i: i + 1 announces on 2026-11-30 at 10:00, 10:01, …, and i completions; two
    // partitions; a Transmission announce; an IPv6 one over HTTP at 11:00
    const byPartition = new Map<number, AnnounceEvent[]>();
    torrents.forEach((t, i) => {
      const list = byPartition.get(i % 2) ?? [];
      for (let k = 0; k <= i; k++) list.push(event(t, DAY + 10 * H + k * 60_000, { event: k < i ? 'completed' : 'started' }));
      byPartition.set(i % 2, list);
    });
    byPartition.get(0)!.push(event(torrents[0], DAY + 11 * H, { protocol: 'http', family: 6, client: decodeClient(Buffer.from('-TR4060-abcdefghijkl')) }));
    for (const [p, events] of byPartition) {
      const { epoch } = await state.claim(p);
      assert.deepEqual(await state.apply(p, epoch, '0', '1', addEvents(emptyDelta(), events)), { status: 'ok' });
    }
    const app = createApi({ reader: new StatsReader(state), now: () => DAY + 12 * H });
    server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    await jobs?.stop();
    queueConnection?.disconnect();
    server?.close();
    await state?.close();
    await redis?.stop();
  });

  const get = async (path: string) => {
    const r = await httpGet(port, path);
    const text = r.body.toString();
    return { status: r.status, type: String(r.headers['content-type']), text, json: text.startsWith('{') ? JSON.parse(text) : undefined };
  };

  it('rolls up and ranks with BullMQ job schedulers on the Redis Cluster', async () => {
    await jobs.start();
    const deadline = Date.now() + 30_000;
    while ((await state.client.get(`${state.prefix}{top}:announces:2026-11-30`)) === null) {
      assert.ok(Date.now() < deadline, 'no top list was made by the scheduled job');
      await new Promise((r) => setTimeout(r, 100));
    }
    while ((await state.client.hget(`${state.stem(0)}d:${DAY}`, 'announces')) === null) {
      assert.ok(Date.now() < deadline, 'the day was not rolled up by the scheduled job');
      await new Promise((r) => setTimeout(r, 100));
    }
    await jobs.stop();
  });

  it('answers the series at each resolution, exactly, page by page', async () => {
    const day = await get('/v1/series?resolution=day&from=2026-11-30T00:00:00Z&to=2026-12-01T00:00:00Z');
    assert.equal(day.status, 200, day.text);
    assert.deepEqual(day.json, {
      resolution: 'day',
      next: null,
      points: [{ time: '2026-11-30T00:00:00.000Z', announces: 16, http: 1, udp: 15, ws: 0, started: 5, completed: 10, stopped: 0, paused: 0, none: 1, ipv4: 15, ipv6: 1, activeTorrents: 5, late: 0 }],
    });
    const hours = await get('/v1/series?resolution=hour&from=2026-11-30T10:30:00Z&limit=2');
    assert.deepEqual(
      hours.json.points.map((p: { time: string; announces: number; activeTorrents: number }) => [p.time, p.announces, p.activeTorrents]),
      [
        ['2026-11-30T10:00:00.000Z', 15, 5],
        ['2026-11-30T11:00:00.000Z', 1, 1],
      ],
    );
    assert.equal(hours.json.next, null, 'the API time is 12:00: no page after 11:00');
    // minutes 10:00 … 10:04: 5, 4, 3, 2, 1 announces; two per page
    const seen: number[] = [];
    let from: string | null = '2026-11-30T10:00:00Z';
    while (from !== null) {
      const page = await get(`/v1/series?from=${from}&to=2026-11-30T10:05:00Z&limit=2`);
      assert.equal(page.status, 200, page.text);
      seen.push(...page.json.points.map((p: { announces: number }) => p.announces));
      from = page.json.next;
    }
    assert.deepEqual(seen, [5, 4, 3, 2, 1]);
    const csv = await get('/v1/series?resolution=hour&from=2026-11-30T11:00:00Z&limit=1&format=csv');
    assert.match(csv.type, /^text\/csv/);
    assert.equal(csv.text, 'time,announces,http,udp,ws,started,completed,stopped,paused,none,ipv4,ipv6,activeTorrents,late\r\n2026-11-30T11:00:00.000Z,1,1,0,0,0,0,0,0,1,0,1,1,0\r\n');
  });

  it('answers the top torrents, a torrent, its history and the client mix', async () => {
    const top = await get('/v1/top?by=completions&day=2026-11-30&limit=2');
    assert.equal(top.status, 200, top.text);
    assert.deepEqual(
      { ...top.json, updatedAt: typeof top.json.updatedAt },
      {
        day: '2026-11-30',
        by: 'completions',
        updatedAt: 'string',
        final: false,
        total: 3,
        next: 2,
        torrents: [
          { rank: 1, infoHash: hex[4], announces: 5, completions: 4 },
          { rank: 2, infoHash: hex[3], announces: 4, completions: 3 },
        ],
      },
    );
    const page2 = await get('/v1/top?by=completions&day=2026-11-30&limit=2&offset=2');
    assert.deepEqual(page2.json.torrents, [{ rank: 3, infoHash: hex[2], announces: 3, completions: 2 }]);
    const t = await get(`/v1/torrents/${hex[0].toUpperCase()}`);
    assert.deepEqual(t.json, {
      infoHash: hex[0],
      announces: 2,
      completions: 0,
      seeders: 1,
      leechers: 1,
      peakSeeders: 1,
      peakLeechers: 1,
      firstSeen: '2026-11-30T10:00:00.000Z',
      lastSeen: '2026-11-30T11:00:00.000Z',
    });
    const missing = await get(`/v1/torrents/${'0'.repeat(40)}`);
    assert.equal(missing.status, 404);
    assert.match(missing.json.error.message, /no announce of this torrent/);
    const history = await get(`/v1/torrents/${hex[4]}/history?from=2026-11-29&to=2026-12-01`);
    assert.deepEqual(history.json, {
      infoHash: hex[4],
      next: null,
      days: [
        { day: '2026-11-29', announces: 0, completions: 0, peakSeeders: 0, peakLeechers: 0, uniquePeers: 0 },
        { day: '2026-11-30', announces: 5, completions: 4, peakSeeders: 1, peakLeechers: 1, uniquePeers: 5 },
        { day: '2026-12-01', announces: 0, completions: 0, peakSeeders: 0, peakLeechers: 0, uniquePeers: 0 },
      ],
    });
    const clients = await get('/v1/clients?day=2026-11-30');
    assert.deepEqual(clients.json, {
      day: '2026-11-30',
      total: 16,
      next: null,
      clients: [
        { client: 'qBittorrent 4.6.5', announces: 15, share: 15 / 16 },
        { client: 'Transmission 4.0.6', announces: 1, share: 1 / 16 },
      ],
    });
  });

  it('refuses what the document does not allow with a 400 that names it', async () => {
    const trace = await httpGet(port, '/v1/top', { method: 'POST' });
    assert.equal(trace.status, 405);
    assert.equal(trace.headers.allow, 'GET, HEAD');
    for (const [path, name] of [
      ['/v1/series', /from/],
      ['/v1/series?from=yesterday', /from/],
      ['/v1/series?from=2026-11-30T00:00:00Z&limit=100000', /limit/],
      ['/v1/series?from=2026-11-30T00:00:00Z&colour=red', /colour/],
      ['/v1/top?by=seeders', /by/],
      ['/v1/top?day=2026-02-30', /day/],
      ['/v1/torrents/xyz', /infoHash/],
      ['/v1/clients?offset=-1', /offset/],
      ['/v1/clients?format=xml', /format/],
    ] as const) {
      const r = await get(path);
      assert.equal(r.status, 400, `${path}: ${r.text}`);
      assert.match(r.json.error.message, name, path);
    }
    assert.equal((await get('/v1/nothing')).status, 404);
    // a range that ends before it starts is empty, not an error
    assert.deepEqual((await get('/v1/series?from=2026-11-30T00:00:00Z&to=2026-11-29T00:00:00Z')).json, { resolution: 'minute', points: [], next: null });
    assert.deepEqual((await get(`/v1/torrents/${hex[0]}/history?from=2026-12-01&to=2026-11-01`)).json, { infoHash: hex[0], days: [], next: null });
  });

  it('answers 503 with Retry-After beyond STATS_API_MAX_INFLIGHT requests at once, and serves again after', async () => {
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const real = new StatsReader(state);
    const slow = Object.assign(Object.create(real) as StatsReader, {
      series: async (...args: Parameters<StatsReader['series']>) => {
        await gate;
        return real.series(...args);
      },
    });
    const busy = createApi({ reader: slow, maxInFlight: 2, now: () => DAY + 12 * H }).listen(0, '127.0.0.1');
    await new Promise((r) => busy.once('listening', r));
    const busyPort = (busy.address() as AddressInfo).port;
    try {
      const path = '/v1/series?from=2026-11-30T10:00:00Z&limit=3';
      const held = [httpGet(busyPort, path), httpGet(busyPort, path)];
      await new Promise((r) => setTimeout(r, 200));
      const refused = await httpGet(busyPort, path);
      assert.equal(refused.status, 503);
      assert.equal(refused.headers['retry-after'], '1');
      assert.match(JSON.parse(refused.body.toString()).error.message, /busy/);
      open();
      assert.deepEqual((await Promise.all(held)).map((r) => r.status), [200, 200]);
      assert.equal((await httpGet(busyPort, path)).status, 200);
    } finally {
      busy.close();
    }
  });

  it('a sealed day gets a final top list, which later runs do not change', async () => {
    // partition 0's events pass the day's end by the horizon; partition 1 has nothing left to
    // consume, so the others' progress seals it too
    const { epoch } = await state.claim(0);
    assert.deepEqual(await state.apply(0, epoch, '1', '2', addEvents(emptyDelta(), [event(torrents[0], DAY + 26 * H)])), { status: 'ok' });
    await jobs.run('seal');
    assert.equal((await get('/v1/top?day=2026-11-30')).json.final, false, 'sealed although partition 1 may have events to come');
    highWatermarks = new Map([
      [0, 2n],
      [1, 1n],
    ]);
    await jobs.run('seal');
    const top = await get('/v1/top?day=2026-11-30');
    assert.equal(top.json.final, true);
    assert.deepEqual(
      top.json.torrents.map((t: { infoHash: string }) => t.infoHash),
      [hex[4], hex[3], hex[2]],
    );
    await jobs.makeTop('2026-11-30', false);
    assert.equal((await get('/v1/top?day=2026-11-30')).json.final, true);
  });

  it('has no 5xx and no answer outside its OpenAPI document for any request schemathesis makes', { timeout: 600_000 }, async (t) => {
    const st = schemathesis();
    if (st === undefined) {
      if (process.env.CI === 'true') assert.fail('schemathesis is not installed (.ci/run installs it; or set SCHEMATHESIS)');
      t.skip('schemathesis is not installed (pip install schemathesis, or set SCHEMATHESIS)');
      return;
    }
    // (not spawnSync: the API answering it runs in this process)
    const child = spawn(st, ['run', `http://127.0.0.1:${port}/openapi.json`, '--checks', 'all', '--max-examples', '60', '--seed', '1'], {
      env: { ...process.env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
      // (ended with the test, should it time out)
      signal: t.signal,
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    assert.equal(code, 0, `schemathesis found problems:\n${out.slice(-8000)}`);
  });

  it('the process: SIGTERM closes a silent connection and exits 0 well before its timeout', async () => {
    const proc = spawn(process.execPath, [join(__dirname, 'api-main.js')], {
      env: { ...process.env, REDIS_CLUSTER_NODES: redis.nodes.map((n) => `${n.host}:${n.port}`).join(','), STATS_API_HOST: '127.0.0.1', STATS_API_PORT: '0', STATS_SHUTDOWN_TIMEOUT_MS: '8000' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    proc.stdout.on('data', (d) => (output += d));
    proc.stderr.on('data', (d) => (output += d));
    const apiPort = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`stats API did not start: ${output}`)), 15_000);
      proc.stdout.on('data', () => {
        const m = /"port":(\d+)/.exec(output);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
    });
    assert.equal((await httpGet(apiPort, '/health')).status, 200);
    assert.equal((await httpGet(apiPort, '/health/live')).status, 200);
    // (a balancer's pre-opened connection: Node's close() leaves it open)
    const silent = connect(apiPort, '127.0.0.1');
    await new Promise((r) => silent.once('connect', r));
    const exited = new Promise<[number | null, number]>((r) => proc.once('exit', (code) => r([code, Date.now()])));
    const sent = Date.now();
    proc.kill('SIGTERM');
    const [code, at] = await exited;
    silent.destroy();
    assert.equal(code, 0, output);
    assert.ok(at - sent < 3000, `exited ${at - sent} ms after SIGTERM`);
  });
});
