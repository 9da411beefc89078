/*
 * How the Redis test provider is chosen (redis-server.ts, selectRedisProvider), and the bounded
 * Docker probe behind it (docker.ts). No Docker engine is needed: fake engines are Unix sockets.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dockerEndpoint, dockerEngineReachable, dockerEngineReachableSync } from './docker';
import { redisSkipReason, selectRedisProvider, startRedisTestServer } from './redis-server';

const dir = mkdtempSync(join(tmpdir(), 'peertracker-provider-'));
const servers: Server[] = [];
after(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  rmSync(dir, { recursive: true, force: true });
});

/** process.env without anything that would pick a provider */
function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of ['REDIS_URL', 'REDIS_CLUSTER_NODES', 'REDIS_TEST_PROVIDER', 'DOCKER_HOST', 'DOCKER_TLS_VERIFY']) delete env[k];
  return { ...env, ...extra };
}

const redisServerInstalled = spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;

/** a Unix socket that accepts connections and never answers */
async function silentSocket(): Promise<string> {
  const path = join(dir, `silent-${servers.length}.sock`);
  const srv = createServer(() => {});
  servers.push(srv);
  await new Promise<void>((r) => srv.listen(path, r));
  return path;
}

/** a Unix socket answering GET /_ping like a Docker engine */
async function fakeEngine(): Promise<string> {
  const path = join(dir, `engine-${servers.length}.sock`);
  const srv = createHttpServer((req, res) => res.end(req.url === '/_ping' ? 'OK' : ''));
  servers.push(srv);
  await new Promise<void>((r) => srv.listen(path, r));
  return path;
}

describe('redis test provider selection', () => {
  it('uses servers named by the environment first', () => {
    assert.equal(selectRedisProvider('cluster', cleanEnv({ REDIS_CLUSTER_NODES: '127.0.0.1:7000' })), 'env');
    assert.equal(selectRedisProvider('single', cleanEnv({ REDIS_URL: 'redis://127.0.0.1:6379' })), 'env');
    // even when testcontainers is asked for
    const forced = cleanEnv({ REDIS_URL: 'redis://127.0.0.1:6379', REDIS_TEST_PROVIDER: 'testcontainers' });
    assert.equal(selectRedisProvider('single', forced), 'env');
    // REDIS_URL does not name a cluster
    assert.notEqual(selectRedisProvider('cluster', cleanEnv({ REDIS_URL: 'redis://127.0.0.1:6379' })), 'env');
  });

  it('picks local redis-server processes on this machine, without probing Docker', { skip: !redisServerInstalled && process.env.CI !== 'true' ? 'redis-server is not installed' : false }, () => {
    assert.ok(redisServerInstalled, 'redis-server must be installed under CI=true');
    // a Docker engine that would answer must not change that: redis-server wins when installed
    const started = Date.now();
    for (const kind of ['single', 'cluster'] as const) {
      assert.equal(selectRedisProvider(kind, cleanEnv()), 'local');
      assert.equal(redisSkipReason(kind, cleanEnv()), undefined);
    }
    assert.ok(Date.now() - started < 500, 'selection should be cheap');
  });

  it('picks testcontainers when REDIS_TEST_PROVIDER=testcontainers, and local when =local', () => {
    for (const kind of ['single', 'cluster'] as const) {
      assert.equal(selectRedisProvider(kind, cleanEnv({ REDIS_TEST_PROVIDER: 'testcontainers' })), 'testcontainers');
      assert.equal(redisSkipReason(kind, cleanEnv({ REDIS_TEST_PROVIDER: 'testcontainers' })), undefined);
      assert.equal(selectRedisProvider(kind, cleanEnv({ REDIS_TEST_PROVIDER: 'local' })), 'local');
    }
    assert.throws(() => selectRedisProvider('single', cleanEnv({ REDIS_TEST_PROVIDER: 'docker' })), /REDIS_TEST_PROVIDER/);
  });

  it('forced testcontainers with no engine at DOCKER_HOST fails at once with a clear error, without loading testcontainers', async () => {
    const env = cleanEnv({ REDIS_TEST_PROVIDER: 'testcontainers', DOCKER_HOST: `unix://${join(dir, 'no-such.sock')}` });
    const started = Date.now();
    await assert.rejects(startRedisTestServer('cluster', env), (e: Error) => {
      assert.match(e.message, /no Docker engine answered at unix:\/\/.*no-such\.sock/);
      assert.match(e.message, /REDIS_TEST_PROVIDER/);
      return true;
    });
    assert.ok(Date.now() - started < 3000);
    assert.ok(!Object.keys(require.cache).some((k) => k.includes('node_modules/testcontainers/')), 'testcontainers was loaded');
  });

  it('forced testcontainers with an engine that never answers fails within the probe timeout', async () => {
    const env = cleanEnv({ REDIS_TEST_PROVIDER: 'testcontainers', DOCKER_HOST: `unix://${await silentSocket()}` });
    const started = Date.now();
    await assert.rejects(startRedisTestServer('single', env), /no Docker engine answered.*did not answer within 1000 ms/);
    assert.ok(Date.now() - started < 5000);
  });

  it('forced testcontainers on this machine (default Docker socket) fails in bounded time when no engine runs', async (t) => {
    const env = cleanEnv({ REDIS_TEST_PROVIDER: 'testcontainers' });
    if ((await dockerEngineReachable(env)).reachable) return t.skip('a Docker engine is running here');
    const started = Date.now();
    await assert.rejects(startRedisTestServer('single', env), /no Docker engine answered/);
    assert.ok(Date.now() - started < 5000);
  });
});

describe('docker engine probe', () => {
  it('finds an engine answering /_ping, async and sync', async () => {
    const env = cleanEnv({ DOCKER_HOST: `unix://${await fakeEngine()}` });
    assert.equal((await dockerEngineReachable(env)).reachable, true);
    // the sync probe blocks this process, so its fake engine runs in another one
    const path = join(dir, 'engine-child.sock');
    const child = spawn(
      process.execPath,
      ['-e', `require('node:http').createServer((q, s) => s.end('OK')).listen(process.argv[1], () => console.log('ready'))`, path],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      await new Promise((r) => child.stdout!.once('data', r));
      const r = dockerEngineReachableSync(cleanEnv({ DOCKER_HOST: `unix://${path}` }));
      assert.equal(r.reachable, true, r.reason);
    } finally {
      child.kill();
    }
    // and one that never answers
    const silent = dockerEngineReachableSync(cleanEnv({ DOCKER_HOST: `unix://${await silentSocket()}` }), 300);
    assert.equal(silent.reachable, false);
  });

  it('says no at once when nothing points at an engine', () => {
    const env = cleanEnv({ DOCKER_HOST: `unix://${join(dir, 'absent.sock')}` });
    const started = Date.now();
    const r = dockerEngineReachableSync(env, 300);
    assert.equal(r.reachable, false);
    assert.ok(Date.now() - started < 3000);
  });

  it('parses DOCKER_HOST forms', () => {
    assert.deepEqual(dockerEndpoint({ DOCKER_HOST: 'unix:///run/user/1000/docker.sock' }), {
      socketPath: '/run/user/1000/docker.sock',
      label: 'unix:///run/user/1000/docker.sock',
    });
    assert.deepEqual(dockerEndpoint({ DOCKER_HOST: 'tcp://10.0.0.5:2375' }), { host: '10.0.0.5', port: 2375, tls: false, label: 'tcp://10.0.0.5:2375' });
    assert.equal((dockerEndpoint({ DOCKER_HOST: 'tcp://docker:2376' }) as { tls: boolean }).tls, true);
    assert.equal((dockerEndpoint({ DOCKER_HOST: 'tcp://docker:2375', DOCKER_TLS_VERIFY: '1' }) as { tls: boolean }).tls, true);
  });
});
