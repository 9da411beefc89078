/*
 * Real Redis servers for tests (DESIGN.md, "Real infrastructure in tests"), behind one small
 * interface so a test does not care where they come from:
 *   - REDIS_CLUSTER_NODES=host:port,host:port,… (cluster) or REDIS_URL (single): servers already
 *     running, used as they are and never stopped;
 *   - otherwise Debian's `redis-server`, started here on free 127.0.0.1 ports: one server, or a
 *     6-node cluster (3 masters, 3 replicas) made with `redis-cli --cluster create`.
 *   - or Docker, through testcontainers (redis-testcontainers.ts), when REDIS_TEST_PROVIDER=testcontainers,
 *     or when redis-server is not installed and a Docker engine answers (see selectRedisProvider).
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dockerEngineReachableSync } from './docker';
import type { TestCertificates } from './certificates';
import { freePort } from './ports';

export interface RedisNodeAddress {
  host: string;
  port: number;
}

export interface RedisTestServer {
  kind: 'single' | 'cluster';
  /** every node (single: the one server) */
  nodes: RedisNodeAddress[];
  /** redis://host:port of a single server */
  url?: string;
  /** Stops what this provider started (nothing for servers given by the environment). */
  stop(): Promise<void>;
  /**
   * Local clusters only (for outage tests): kills every node with SIGKILL, and starts them again
   * on the same ports with the same cluster configs (node ids, slots; the data is gone, as
   * nothing is saved), waiting for cluster_state:ok.
   */
  outage?: { killAll(): Promise<void>; startAll(): Promise<void> };
}

const HOST = '127.0.0.1';
const START_TIMEOUT_MS = 10_000;
const CLUSTER_TIMEOUT_MS = 30_000;

/**
 * Why Redis tests cannot run here, or undefined when they can. Under CI=true a missing server is
 * a failure, not a skip: then this is undefined too and startRedisTestServer throws.
 */
export function redisSkipReason(
  kind: 'single' | 'cluster',
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  if (selectRedisProvider(kind, env) !== 'local' || redisServerInstalled()) return undefined;
  if (env.CI === 'true') return undefined;
  return missingMessage(kind);
}

/** Where a test's Redis servers come from. */
export type RedisProvider = 'env' | 'testcontainers' | 'local';

/**
 * REDIS_URL (single) / REDIS_CLUSTER_NODES (cluster) set → 'env'; else REDIS_TEST_PROVIDER
 * (`testcontainers` or `local`) if set; else 'testcontainers' when redis-server is not installed
 * and a Docker engine answers; else 'local'. Docker is only probed when redis-server is missing,
 * and the probe is bounded (docker.ts).
 */
export function selectRedisProvider(kind: 'single' | 'cluster', env: NodeJS.ProcessEnv = process.env): RedisProvider {
  if (fromEnv(kind, env) !== undefined) return 'env';
  const forced = env.REDIS_TEST_PROVIDER?.trim();
  if (forced === 'testcontainers' || forced === 'local') return forced;
  if (forced) throw new Error(`REDIS_TEST_PROVIDER: "${forced}" is neither "testcontainers" nor "local"`);
  if (!redisServerInstalled() && dockerEngineReachableSync(env).reachable) return 'testcontainers';
  return 'local';
}

/** What the nodes of a secured local cluster ask of their clients. */
export interface ClusterSecurity {
  /** every node asks clients for it (AUTH), and replicas give it to their masters */
  password?: string;
  /**
   * TLS only (no plaintext port), between nodes too, with these certificates; clients must show
   * a certificate of the same CA (tls-auth-clients yes)
   */
  tls?: TestCertificates;
}

/**
 * A 6-node cluster started here with a password, TLS or both, for the tests of credentials and
 * encryption; always local, whatever the environment names.
 */
export async function startSecuredCluster(security: ClusterSecurity): Promise<RedisTestServer> {
  if (!redisServerInstalled()) throw new Error(missingMessage('cluster'));
  return startCluster(security);
}

/** Servers of the given kind: from the environment, in Docker, or started here. */
export async function startRedisTestServer(
  kind: 'single' | 'cluster',
  env: NodeJS.ProcessEnv = process.env,
): Promise<RedisTestServer> {
  const provider = selectRedisProvider(kind, env);
  if (provider === 'env') return fromEnv(kind, env)!;
  if (provider === 'testcontainers') return (await import('./redis-testcontainers')).startRedisContainer(kind, env);
  if (!redisServerInstalled()) throw new Error(missingMessage(kind));
  return kind === 'single' ? startSingle() : startCluster();
}

function missingMessage(kind: 'single' | 'cluster'): string {
  const env = kind === 'single' ? 'REDIS_URL' : 'REDIS_CLUSTER_NODES';
  return (
    `redis-server is not installed (apt-get install redis-server), no Docker engine answers` +
    ` (for REDIS_TEST_PROVIDER=testcontainers) and ${env} is not set`
  );
}

function fromEnv(kind: 'single' | 'cluster', env: NodeJS.ProcessEnv = process.env): RedisTestServer | undefined {
  const stop = async () => {};
  if (kind === 'cluster') {
    const list = env.REDIS_CLUSTER_NODES;
    if (list === undefined || list.trim() === '') return undefined;
    const nodes = list.split(',').map((s) => {
      const at = s.trim().lastIndexOf(':');
      const port = Number(s.trim().slice(at + 1));
      if (at <= 0 || !Number.isInteger(port)) throw new Error(`REDIS_CLUSTER_NODES: bad entry "${s}" (host:port)`);
      return { host: s.trim().slice(0, at), port };
    });
    return { kind, nodes, stop };
  }
  const url = env.REDIS_URL;
  if (url === undefined || url.trim() === '') return undefined;
  const u = new URL(url);
  return { kind, nodes: [{ host: u.hostname, port: Number(u.port || 6379) }], url, stop };
}

let installed: boolean | undefined;
function redisServerInstalled(): boolean {
  installed ??= spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
  return installed;
}

/** what each local server started secured asks of redis-cli (which reads a password from REDISCLI_AUTH) */
const secured = new Map<number, ClusterSecurity>();

function cli(port: number, ...args: string[]): Promise<string> {
  const { password, tls } = secured.get(port) ?? {};
  const env = password === undefined ? process.env : { ...process.env, REDISCLI_AUTH: password };
  const tlsArgs = tls === undefined ? [] : ['--tls', '--cacert', tls.ca, '--cert', tls.clientCert, '--key', tls.clientKey];
  return new Promise((resolve, reject) => {
    execFile('redis-cli', ['-h', HOST, '-p', String(port), ...tlsArgs, ...args], { timeout: 60_000, env }, (err, stdout, stderr) => {
      if (err) reject(new Error(`redis-cli ${args.join(' ')}: ${err.message} ${stderr}`));
      else resolve(stdout);
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns true or `timeoutMs` passes (then throws `what`). */
async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      if (await check()) return;
    } catch (e) {
      last = (e as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`${what} not reached within ${timeoutMs} ms${last ? `: ${last}` : ''}`);
    await sleep(100);
  }
}

/** Processes started by this module, killed if the test process exits without stop(). */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of running) p.kill('SIGKILL');
});

interface Started {
  proc: ChildProcess;
  port: number;
  output: string[];
}

async function launch(dir: string, extra: string[], onPort?: number, security: ClusterSecurity = {}): Promise<Started> {
  const port = onPort ?? (await freePort());
  // (a port freed by a stopped secured server may come back without security)
  secured.delete(port);
  const { password, tls } = security;
  if (password !== undefined || tls !== undefined) secured.set(port, security);
  if (password !== undefined) extra = [...extra, '--requirepass', password, '--masterauth', password];
  if (tls !== undefined) {
    extra = [
      ...extra,
      '--tls-port', String(port),
      '--tls-cert-file', tls.serverCert,
      '--tls-key-file', tls.serverKey,
      '--tls-ca-cert-file', tls.ca,
      '--tls-auth-clients', 'yes',
      '--tls-cluster', 'yes',
      '--tls-replication', 'yes',
    ];
  }
  const args = [
    // (with TLS, no plaintext port at all)
    '--port', tls === undefined ? String(port) : '0',
    '--bind', HOST,
    '--protected-mode', 'no',
    '--save', '',
    '--appendonly', 'no',
    // as the README asks of production Redis (store.ts, checkRedisSettings)
    '--lazyfree-lazy-expire', 'yes',
    '--dir', dir,
    ...extra.map((a) => a.replace('PORT', String(port))),
  ];
  const proc = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(proc);
  const output: string[] = [];
  const keep = (b: Buffer) => {
    output.push(b.toString());
    if (output.length > 50) output.shift();
  };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  proc.once('exit', () => running.delete(proc));
  try {
    // this very process answering, not another one that took the port first (test files run in
    // parallel, and a port can be taken between freePort() and the bind, or while a node is down)
    await waitFor(`redis-server on port ${port} (pid ${proc.pid}) answering`, START_TIMEOUT_MS, async () => {
      if (proc.exitCode !== null) throw new Error(`exited with ${proc.exitCode}: ${output.join('').slice(-500)}`);
      const info = await cli(port, 'info', 'server').catch(() => '');
      return new RegExp(`^process_id:${proc.pid}\\r?$`, 'm').test(info);
    });
  } catch (e) {
    await kill(proc);
    throw e;
  }
  return { proc, port, output };
}

/** Ends proc with `signal` (SIGKILL 3 s after a SIGTERM it ignores) and waits for its exit. */
async function kill(proc: ChildProcess, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  proc.kill(signal);
  const timer = setTimeout(() => proc.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}

function stopper(procs: ChildProcess[], dir: string): () => Promise<void> {
  return async () => {
    await Promise.all(procs.map((p) => kill(p)));
    rmSync(dir, { recursive: true, force: true });
  };
}

async function startSingle(): Promise<RedisTestServer> {
  const dir = mkdtempSync(join(tmpdir(), 'peertracker-redis-'));
  try {
    const s = await launch(dir, []);
    return {
      kind: 'single',
      nodes: [{ host: HOST, port: s.port }],
      url: `redis://${HOST}:${s.port}`,
      stop: stopper([s.proc], dir),
    };
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

async function startCluster(security: ClusterSecurity = {}): Promise<RedisTestServer> {
  const dir = mkdtempSync(join(tmpdir(), 'peertracker-redis-cluster-'));
  const started: Started[] = [];
  const extras: string[][] = [];
  const stop = () => stopper(started.map((s) => s.proc), dir)();
  const allOk = () =>
    waitFor('cluster_state:ok on all 6 nodes', CLUSTER_TIMEOUT_MS, async () => {
      const infos = await Promise.all(started.map((s) => cli(s.port, 'cluster', 'info').catch(() => '')));
      return infos.every((i) => /cluster_state:ok/.test(i) && /cluster_known_nodes:6/.test(i));
    });
  try {
    for (let i = 0; i < 6; i++) {
      // the bus port is chosen too: port + 10000 may be beyond 65535 for an ephemeral port
      const bus = await freePort();
      extras.push([
        '--cluster-enabled', 'yes',
        '--cluster-config-file', join(dir, 'nodes-PORT.conf'),
        '--cluster-node-timeout', '2000',
        '--cluster-port', String(bus),
        // replicas sync at once instead of after Redis 7's 5 s diskless-sync delay: a replica
        // that never synced cannot take over from a failed master
        '--repl-diskless-sync-delay', '0',
      ]);
      started.push(await launch(dir, extras[i], undefined, security));
    }
    const addrs = started.map((s) => `${HOST}:${s.port}`);
    await cli(started[0].port, '--cluster', 'create', ...addrs, '--cluster-replicas', '1', '--cluster-yes');
    await allOk();
    const outage = {
      killAll: async () => {
        await Promise.all(started.map((s) => kill(s.proc, 'SIGKILL')));
      },
      startAll: async () => {
        const again = await Promise.allSettled(started.map((s, i) => launch(dir, extras[i], s.port, security)));
        const up = again.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
        const failed = again.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failed !== undefined) {
          // none of this restart is left running: stop() then has nothing of it to miss
          await Promise.all(up.map((u) => kill(u.proc)));
          throw failed.reason;
        }
        started.splice(0, started.length, ...up);
        await allOk();
      },
    };
    return { kind: 'cluster', nodes: started.map((s) => ({ host: HOST, port: s.port })), stop, outage };
  } catch (e) {
    await stop();
    throw e;
  }
}
