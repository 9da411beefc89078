/*
 * docker-compose.yml, checked and run for real on the tests' Docker engine (stand-ins of the base
 * images it names, scripts/docker/standins.sh): the file is valid and everything it names exists;
 * the cluster comes up in order (Redis Cluster formed by its init, Kafka, three gateways behind
 * nginx, the stats worker and API, Prometheus); announces sent through the balancer's one port,
 * over HTTP and UDP, are spread over the gateways and read back exactly from the stats API;
 * Prometheus scrapes every service; `down` leaves nothing behind. Grafana (profile grafana) has no
 * stand-in and stays out.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { parse } from 'yaml';
import { freePort } from '@peertracker/redis-store/dist/testing';
import { announcePath, httpGet, udpAnnouncePacket, udpConnect, udpExchange } from '@peertracker/gateway/dist/testing/clients';
import { dockerSkipReason, REPO_ROOT, startTestEngine, type TestEngine } from '@peertracker/gateway/dist/testing/docker';
import { eventually } from './testing';

const skip = dockerSkipReason() ?? false;
const TAG = 'ci';
const COMPOSE_FILE = join(REPO_ROOT, 'docker-compose.yml');
/** profiles CI leaves out: their images have no stand-in here */
const PROFILES_LEFT_OUT = new Set(['grafana']);

/** The stand-in images scripts/docker/standins.sh builds, by name */
function standInImages(): Set<string> {
  const script = readFileSync(join(REPO_ROOT, 'scripts/docker/standins.sh'), 'utf8');
  const vars = Object.fromEntries([...script.matchAll(/^([A-Z_]+)=(\S+)$/gm)].map((m) => [m[1], m[2]]));
  const names = [...script.matchAll(/^\s+\[\w+\]="?([^"\s]+)"?$/gm)].map((m) => m[1].replace(/\$(\w+)/g, (_, v: string) => vars[v] ?? `$${v}`));
  return new Set(names);
}

describe('docker-compose.yml', { skip, timeout: 30 * 60_000 }, () => {
  let engine: TestEngine;
  const project = `ptcompose${process.pid}`;
  const dir = mkdtempSync(join(tmpdir(), 'pt-compose-'));
  const envFile = join(dir, 'test.env');
  const ports = { tracker: 0, api: 0, prometheus: 0 };
  const compose = (...args: string[]) => engine.compose(['-p', project, '-f', COMPOSE_FILE, '--env-file', envFile, ...args]);

  before(async () => {
    ports.tracker = await freePort();
    ports.api = await freePort();
    ports.prometheus = await freePort();
    writeFileSync(
      envFile,
      [
        `TRACKER_CONNECTION_SECRET=${randomBytes(32).toString('hex')}`,
        `PEERTRACKER_PORT=${ports.tracker}`,
        `STATS_API_PUBLISHED_PORT=${ports.api}`,
        `PROMETHEUS_PORT=${ports.prometheus}`,
        `PEERTRACKER_TAG=${TAG}`,
      ].join('\n') + '\n',
    );
    engine = startTestEngine();
  });
  after(() => {
    if (engine) {
      try {
        compose('down', '-v', '--remove-orphans', '-t', '20');
      } finally {
        engine.stop();
      }
    }
  });

  it('is valid, and every build context, Dockerfile target, mounted file, image and variable it names exists', () => {
    compose('config', '-q');
    // without the connection secret it refuses to start, and says which variable
    const noSecret = join(dir, 'no-secret.env');
    writeFileSync(noSecret, `PEERTRACKER_TAG=${TAG}\n`);
    const { TRACKER_CONNECTION_SECRET: _unset, ...env } = engine.env;
    assert.throws(() => engine.compose(['-f', COMPOSE_FILE, '--env-file', noSecret, 'config', '-q'], { env }), /TRACKER_CONNECTION_SECRET/);

    const resolved = parse(compose('config')) as { services: Record<string, Record<string, any>> }; // eslint-disable-line @typescript-eslint/no-explicit-any
    const standIns = standInImages();
    const problems: string[] = [];
    for (const [name, svc] of Object.entries(resolved.services)) {
      const inProfileLeftOut = (svc.profiles ?? []).some((p: string) => PROFILES_LEFT_OUT.has(p));
      if (svc.build) {
        const context = isAbsolute(svc.build.context) ? svc.build.context : join(REPO_ROOT, svc.build.context);
        const dockerfile = join(context, svc.build.dockerfile ?? 'Dockerfile');
        if (!existsSync(dockerfile)) problems.push(`${name}: no ${dockerfile}`);
        else if (svc.build.target && !new RegExp(`^FROM .* AS ${svc.build.target}$`, 'm').test(readFileSync(dockerfile, 'utf8'))) {
          problems.push(`${name}: no stage ${svc.build.target} in ${dockerfile}`);
        }
        if (!String(svc.image).startsWith('peertracker/')) problems.push(`${name}: built here but named ${svc.image}`);
      } else if (!standIns.has(svc.image) && !inProfileLeftOut) {
        problems.push(`${name}: image ${svc.image} has no stand-in (scripts/docker/standins.sh) and is not in a profile CI leaves out`);
      }
      for (const v of svc.volumes ?? []) {
        if (v.type === 'bind' && !existsSync(v.source)) problems.push(`${name}: mounts ${v.source}, which does not exist`);
      }
    }
    // the base images the Dockerfiles name have stand-ins too
    for (const file of ['services/gateway/Dockerfile', 'services/stats-worker/Dockerfile']) {
      for (const m of readFileSync(join(REPO_ROOT, file), 'utf8').matchAll(/^ARG NODE_IMAGE=(\S+)$/gm)) {
        if (!standIns.has(m[1])) problems.push(`${file}: base ${m[1]} has no stand-in`);
      }
    }
    // every variable the file reads is documented in .env.example, and every documented one is read
    const raw = readFileSync(COMPOSE_FILE, 'utf8');
    const used = new Set([...raw.matchAll(/\$\{(\w+)/g)].map((m) => m[1]));
    const documented = new Set([...readFileSync(join(REPO_ROOT, '.env.example'), 'utf8').matchAll(/^(\w+)=/gm)].map((m) => m[1]));
    for (const v of used) if (!documented.has(v)) problems.push(`\${${v}} is not in .env.example`);
    for (const v of documented) if (!used.has(v)) problems.push(`.env.example documents ${v}, which docker-compose.yml does not read`);
    assert.deepEqual(problems, []);
  });

  it('comes up in order; announces through the balancer over HTTP and UDP reach every gateway and read back exactly from the stats API', async () => {
    engine.build('services/gateway/Dockerfile', `peertracker/gateway:${TAG}`);
    engine.build('services/stats-worker/Dockerfile', `peertracker/stats-worker:${TAG}`, 'worker');
    engine.build('services/stats-worker/Dockerfile', `peertracker/stats-api:${TAG}`, 'api');
    // (up waits for each depends_on condition: healthy nodes, the cluster formed, Kafka healthy,
    // healthy gateways before the balancer)
    compose('up', '-d', '--no-build');
    const states = compose('ps', '--all');
    assert.match(states, /redis-init.*Exit 0/, states);
    for (const svc of ['gateway-1', 'gateway-2', 'gateway-3', 'stats-worker', 'stats-api', 'kafka']) {
      assert.match(states, new RegExp(`_${svc}_1 .*Up \\(healthy\\)`), states);
    }

    // torrent A over HTTP: two leechers and a seeder, one leecher completes (4 announces, 1 completion)
    const a = randomBytes(20);
    const peers = [randomBytes(20), randomBytes(20), randomBytes(20)];
    const http = (peerId: Buffer, port: number, left: number, event: string) =>
      eventually('HTTP announce through the balancer', async () => {
        const r = await httpGet(ports.tracker, announcePath({ infoHash: a, peerId, port, left, event, compact: 1 }));
        assert.equal(r.status, 200);
        assert.doesNotMatch(r.body.toString('latin1'), /failure reason/);
        return r.body.toString('latin1');
      });
    await http(peers[0], 6001, 100, 'started');
    await http(peers[1], 6002, 100, 'started');
    const third = await http(peers[2], 6003, 0, 'started');
    // the swarm is shared: whichever gateway answered, the third peer sees the other two
    assert.match(third, /5:peers12:/, 'two compact peers');
    await http(peers[0], 6001, 0, 'completed');

    // torrent B over UDP: a leecher and a seeder (2 announces), connect and announce may reach
    // different gateways (the connection secret is shared)
    const b = randomBytes(20);
    for (const [i, left] of [100n, 0n].entries()) {
      const reply = await eventually('UDP announce through the balancer', async () => {
        const connectionId = await udpConnect(ports.tracker);
        const r = await udpExchange(ports.tracker, udpAnnouncePacket({ connectionId, transactionId: 10 + i, infoHash: b, peerId: randomBytes(20), port: 7001 + i, left, event: 2 }), '127.0.0.1', 2000);
        assert.ok(r !== null && r.readUInt32BE(0) === 1, `announce answered: ${r?.toString('hex')}`);
        return r;
      });
      assert.equal(reply.readUInt32BE(12) + reply.readUInt32BE(16), i + 1, 'leechers + seeders');
    }

    // the stats worker consumed the gateways' events: the API reads exactly what was announced
    const api = async (path: string) => {
      const r = await httpGet(ports.api, path);
      assert.equal(r.status, 200, r.body.toString());
      return JSON.parse(r.body.toString());
    };
    await eventually('torrent A in the stats API', async () => {
      const t = await api(`/v1/torrents/${a.toString('hex')}`);
      assert.deepEqual([t.announces, t.completions, t.peakSeeders, t.peakLeechers], [4, 1, 2, 2]);
    }, 90_000);
    await eventually('torrent B in the stats API', async () => {
      const t = await api(`/v1/torrents/${b.toString('hex')}`);
      assert.deepEqual([t.announces, t.completions], [2, 0]);
    });

    // the balancer spread them: each gateway's own count, read inside its container
    const counts = ['gateway-1', 'gateway-2', 'gateway-3'].map((svc) => {
      const id = compose('ps', '-q', svc).trim();
      const text = engine.docker(['exec', id, 'node', '-e', "fetch('http://127.0.0.1:9469/metrics').then((r) => r.text()).then((t) => process.stdout.write(t))"]);
      return [...text.matchAll(/^tracker_announces_total\{[^}]*\} (\d+)/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
    });
    assert.equal(counts.reduce((x, y) => x + y, 0), 6, `announces per gateway: ${counts}`);
    // and none of it on the published port
    assert.equal((await httpGet(ports.tracker, '/metrics')).status, 404, 'the metrics are not on the public port');
    assert.ok(counts.filter((c) => c > 0).length >= 2, `more than one gateway answered: ${counts}`);

    // Prometheus finds and scrapes every replica of every service
    await eventually('Prometheus scraping every service', async () => {
      const r = await httpGet(ports.prometheus, '/api/v1/targets?state=active');
      const targets = JSON.parse(r.body.toString()).data.activeTargets as { labels: { job: string }; health: string }[];
      const up = (job: string) => targets.filter((t) => t.labels.job === job && t.health === 'up').length;
      assert.deepEqual([up('gateway'), up('stats-worker'), up('stats-api')], [3, 1, 1], JSON.stringify(targets.map((t) => [t.labels.job, t.health])));
    }, 90_000);

    compose('down', '-v', '-t', '20');
    assert.equal(engine.docker(['ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`]).trim(), '', 'nothing left running');
  });
});
