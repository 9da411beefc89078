/*
 * Redis test servers in Docker, through the `testcontainers` npm package (a devDependency, loaded
 * only when this provider is chosen — see selectRedisProvider in redis-server.ts).
 *
 *   - single: the official `redis` image (REDIS_TEST_IMAGE, default redis:7.2), port 6379 mapped to
 *     a free host port;
 *   - cluster: ONE container of the same image running six redis-server processes (3 masters,
 *     3 replicas) made into a cluster with `redis-cli --cluster create` inside the container.
 *     Each node listens inside the container on the same port number as on the host (free host
 *     ports chosen here, published 1:1) and announces 127.0.0.1, so the addresses the cluster hands
 *     out (CLUSTER SLOTS, MOVED) work both inside the container (node to node) and on the host
 *     (client to node) without host networking (which Docker Desktop lacks or limits) and without
 *     a NAT map in the client. The cluster bus stays inside the container (ports 17001–17006).
 *     The price: the engine must publish ports on this machine's loopback (Docker Engine on Linux,
 *     Docker Desktop); a remote DOCKER_HOST works for `single` only.
 */
import type { StartedTestContainer } from 'testcontainers';
import { dockerEngineReachable } from './docker';
import { freePort } from './ports';
import { type RedisTestServer } from './redis-server';

const STARTUP_TIMEOUT_MS = 120_000; // includes pulling the image the first time
const READY = 'PEERTRACKER-REDIS-CLUSTER-READY';

export function redisTestImage(env: NodeJS.ProcessEnv = process.env): string {
  return env.REDIS_TEST_IMAGE?.trim() || 'redis:7.2';
}

/** Fails fast, naming where it looked, when no Docker engine answers. */
export async function assertDockerEngine(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const probe = await dockerEngineReachable(env);
  if (!probe.reachable) {
    throw new Error(
      `Redis test provider "testcontainers" chosen, but no Docker engine answered at ${probe.endpoint}` +
        ` (${probe.reason}). Start Docker, set DOCKER_HOST, or unset REDIS_TEST_PROVIDER to use a local` +
        ` redis-server (apt-get install redis-server), or point REDIS_URL / REDIS_CLUSTER_NODES at running servers`,
    );
  }
}

export async function startRedisContainer(
  kind: 'single' | 'cluster',
  env: NodeJS.ProcessEnv = process.env,
): Promise<RedisTestServer> {
  await assertDockerEngine(env);
  const { GenericContainer, Wait } = await import('testcontainers');
  const image = redisTestImage(env);
  if (kind === 'single') {
    const c = await new GenericContainer(image)
      .withExposedPorts(6379)
      .withCommand(['redis-server', '--save', '', '--appendonly', 'no', '--protected-mode', 'no', '--lazyfree-lazy-expire', 'yes'])
      .withWaitStrategy(Wait.forLogMessage('Ready to accept connections'))
      .withStartupTimeout(STARTUP_TIMEOUT_MS)
      .start();
    const host = c.getHost();
    const port = c.getMappedPort(6379);
    return { kind, nodes: [{ host, port }], url: `redis://${host}:${port}`, stop: stopper(c) };
  }

  const ports: number[] = [];
  while (ports.length < 6) {
    const p = await freePort();
    if (!ports.includes(p)) ports.push(p);
  }
  const script = [
    'set -e',
    ...ports.map(
      (p, i) =>
        `redis-server --port ${p} --bind 0.0.0.0 --protected-mode no --save "" --appendonly no --lazyfree-lazy-expire yes --dir /data` +
        ` --cluster-enabled yes --cluster-config-file nodes-${p}.conf --cluster-node-timeout 2000` +
        ` --cluster-port ${17001 + i} --cluster-announce-ip 127.0.0.1 --daemonize yes`,
    ),
    `for p in ${ports.join(' ')}; do until redis-cli -p $p ping 2>/dev/null | grep -q PONG; do sleep 0.1; done; done`,
    `redis-cli --cluster create ${ports.map((p) => `127.0.0.1:${p}`).join(' ')} --cluster-replicas 1 --cluster-yes`,
    `for p in ${ports.join(' ')}; do until redis-cli -p $p cluster info | grep -q cluster_state:ok; do sleep 0.1; done; done`,
    `echo ${READY}`,
    'exec tail -f /dev/null',
  ].join('\n');
  const c = await new GenericContainer(image)
    .withExposedPorts(...ports.map((p) => ({ container: p, host: p })))
    .withCommand(['sh', '-c', script])
    .withWaitStrategy(Wait.forLogMessage(READY))
    .withStartupTimeout(STARTUP_TIMEOUT_MS)
    .start();
  const host = c.getHost();
  if (host !== 'localhost' && host !== '127.0.0.1' && host !== '::1') {
    await c.stop();
    throw new Error(
      `the Redis Cluster test container needs a Docker engine publishing ports on this machine (its nodes` +
        ` announce 127.0.0.1), but the engine is at ${host}; set REDIS_CLUSTER_NODES to a running cluster instead`,
    );
  }
  return { kind, nodes: ports.map((port) => ({ host: '127.0.0.1', port })), stop: stopper(c) };
}

function stopper(c: StartedTestContainer): () => Promise<void> {
  let stopped: Promise<void> | undefined;
  return () => (stopped ??= c.stop().then(() => undefined));
}
