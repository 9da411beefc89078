/*
 * Test helpers for gateway processes (`node dist/main.js`, as deployed) and for the Redis servers
 * under them: start/stop a gateway with a given environment, classify its answers, find and kill
 * the redis-server behind a port, start a redis-server on a given port.
 */
import { execFile, execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bdecode } from '@peertracker/protocol';
import { freePort, startedTogether } from '@peertracker/redis-store/dist/testing';
import { httpGet } from './clients';

export const HOST = '127.0.0.1';
const MAIN = join(__dirname, '..', 'main.js');
const START_TIMEOUT_MS = 15_000;

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface GatewayProcess {
  proc: ChildProcess;
  httpPort: number;
  udpPort: number;
  output: string[];
}

// (below the ephemeral range, so that no outgoing connection takes it before the gateway binds it)
export { freePort };

export function alive(gw: GatewayProcess): boolean {
  return gw.proc.exitCode === null && gw.proc.signalCode === null;
}

/**
 * Starts `node dist/main.js` with only `env` (plus PATH and its ports) and waits for /health.
 * fdLimit: the open-file limit (soft and hard, `ulimit -n`) of the gateway process.
 */
export async function startGateway(env: Record<string, string>, opts: { fdLimit?: number } = {}): Promise<GatewayProcess> {
  const [httpPort, udpPort] = [await freePort(), await freePort()];
  const [command, args] =
    opts.fdLimit === undefined
      ? [process.execPath, [MAIN]]
      : ['/bin/sh', ['-c', `ulimit -n ${Math.trunc(opts.fdLimit)} && exec "$0" "$1"`, process.execPath, MAIN]];
  const proc = spawn(command, args, {
    env: { PATH: process.env.PATH ?? '', ...env, TRACKER_HTTP_PORT: String(httpPort), TRACKER_UDP_PORT: String(udpPort) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const keep = (b: Buffer) => {
    output.push(b.toString());
    if (output.length > 50) output.shift();
  };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  const gw = { proc, httpPort, udpPort, output };
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (!alive(gw)) {
      throw new Error(`gateway exited (${proc.exitCode ?? proc.signalCode}): ${output.join('').slice(-2000)}`);
    }
    const ok = await httpGet(httpPort, '/health').then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) return gw;
    if (Date.now() > deadline) {
      await stopGateway(gw);
      throw new Error(`gateway not healthy within ${START_TIMEOUT_MS} ms: ${output.join('').slice(-2000)}`);
    }
    await sleep(100);
  }
}

export async function stopGateway(gw: GatewayProcess | undefined): Promise<void> {
  if (gw === undefined || !alive(gw)) return;
  const { proc } = gw;
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/**
 * Environment for gateway replicas sharing one Redis Cluster: a shared connection secret and a
 * random key prefix, so test files using the same cluster never see each other's swarms.
 */
export function clusterGatewayEnv(nodes: ReadonlyArray<{ host: string; port: number }>): Record<string, string> {
  return {
    TRACKER_HOST: HOST,
    TRACKER_STORE: 'redis',
    REDIS_CLUSTER_NODES: nodes.map((n) => `${n.host}:${n.port}`).join(','),
    TRACKER_CONNECTION_SECRET: randomBytes(32).toString('hex'),
    TRACKER_REDIS_KEY_PREFIX: `t${randomBytes(4).toString('hex')}:`,
    TRACKER_LOG_LEVEL: 'warn',
  };
}

/** Starts `count` gateways with one environment; if any fails to start, stops the others. */
export function startGateways(count: number, env: Record<string, string>): Promise<GatewayProcess[]> {
  return startedTogether<GatewayProcess[]>(Array.from({ length: count }, () => startGateway(env)), stopGateway);
}

/** What a tracker answered to one announce. */
export type Outcome = 'success' | 'failure' | 'none';

/** An HTTP announce reply: a bencoded dictionary with peers, or with a failure reason. */
export function classifyHttp(status: number, body: Buffer): { outcome: Outcome; detail: string } {
  try {
    const v = bdecode(body);
    if (v instanceof Map) {
      const failure = v.get('failure reason');
      if (failure !== undefined) return { outcome: 'failure', detail: Buffer.isBuffer(failure) ? failure.toString() : String(failure) };
      if (v.has('peers') && status === 200) return { outcome: 'success', detail: '' };
    }
  } catch {
    /* not bencode */
  }
  return { outcome: 'none', detail: `HTTP ${status}: ${body.toString('latin1').slice(0, 200)}` };
}

/** A UDP announce reply (BEP 15): action 1 with our transaction ID, action 3 (error), or nothing. */
export function classifyUdp(reply: Buffer | null, transactionId: number): { outcome: Outcome; detail: string } {
  if (reply === null) return { outcome: 'none', detail: 'no UDP reply' };
  if (reply.length >= 8 && reply.readUInt32BE(4) === transactionId) {
    if (reply.readUInt32BE(0) === 1 && reply.length >= 20) return { outcome: 'success', detail: '' };
    if (reply.readUInt32BE(0) === 3) return { outcome: 'failure', detail: reply.subarray(8).toString() };
  }
  return { outcome: 'none', detail: `unexpected UDP reply ${reply.toString('hex').slice(0, 80)}` };
}

export function redisCli(port: number, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('redis-cli', ['-h', HOST, '-p', String(port), ...args], { timeout: 10_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`redis-cli -p ${port} ${args.join(' ')}: ${err.message} ${stderr}`));
      else resolve(stdout);
    });
  });
}

/** The pid of the redis-server answering on port (INFO server's process_id). */
export async function redisPid(port: number): Promise<number> {
  const info = await redisCli(port, 'info', 'server');
  const m = /process_id:(\d+)/.exec(info);
  if (m === null) throw new Error(`no process_id in INFO server of port ${port}`);
  return Number(m[1]);
}

/**
 * For tests that kill Redis servers: they always run on local redis-server processes of their
 * own, whatever REDIS_URL, REDIS_CLUSTER_NODES or REDIS_TEST_PROVIDER say (those servers are never
 * killed). The environment to start them with, and the reason to skip: only outside CI when
 * redis-server is not installed; under CI=true they run, and fail if it is missing.
 */
export const OWN_REDIS_ENV: NodeJS.ProcessEnv = { ...process.env, REDIS_URL: '', REDIS_CLUSTER_NODES: '', REDIS_TEST_PROVIDER: 'local' };

export function ownRedisSkip(): string | false {
  if (process.env.CI === 'true' || redisServerInstalled()) return false;
  return 'redis-server is not installed: this suite kills Redis servers, so it runs only on local redis-server processes it starts';
}

/** True when Debian's redis-server can be started here (what killRedis/startRedisOnPort need). */
export function redisServerInstalled(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

/**
 * SIGKILLs the redis-server process on port (a local process: its pid from INFO server is checked
 * to be a redis-server serving that port on this host, so a server in a container or elsewhere is
 * never mistaken for a local pid) and waits until it is gone (bounded).
 */
export async function killRedis(port: number): Promise<number> {
  const pid = await redisPid(port);
  let command = '';
  try {
    command = execFileSync('ps', ['-o', 'command=', '-p', String(pid)], { encoding: 'utf8' }).trim();
  } catch {
    /* no such process here */
  }
  if (!command.includes('redis-server') || !command.includes(`:${port}`)) {
    throw new Error(`port ${port} is not served by a local redis-server process (pid ${pid}: "${command}")`);
  }
  process.kill(pid, 'SIGKILL');
  const deadline = Date.now() + 5000;
  for (;;) {
    try {
      process.kill(pid, 0);
    } catch {
      return pid; // gone
    }
    if (Date.now() > deadline) throw new Error(`redis-server ${pid} still there 5 s after SIGKILL`);
    await sleep(20);
  }
}

/** The master owning the slot of `{<hex>}`, by its port (from CLUSTER SLOTS on any node). */
export async function masterPortOfHashTag(anyPort: number, hex: string): Promise<number> {
  const slot = Number((await redisCli(anyPort, 'cluster', 'keyslot', `{${hex}}`)).trim());
  const nodes = await redisCli(anyPort, 'cluster', 'nodes');
  for (const line of nodes.split('\n')) {
    const f = line.trim().split(' ');
    if (f.length < 9 || !f[2].split(',').includes('master') || f[2].includes('fail')) continue;
    const port = Number(f[1].split('@')[0].split(':').pop());
    for (const range of f.slice(8)) {
      if (range.startsWith('[')) continue;
      const [lo, hi] = range.split('-').map(Number);
      if (slot >= lo && slot <= (hi ?? lo)) return port;
    }
  }
  throw new Error(`no master found for slot ${slot}: ${nodes}`);
}

export interface OwnRedis {
  port: number;
  stop(): Promise<void>;
}

/** A plain redis-server on the given port (e.g. to bring one back where another was killed). */
export async function startRedisOnPort(port: number): Promise<OwnRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'peertracker-redis-again-'));
  const proc = spawn(
    'redis-server',
    ['--port', String(port), '--bind', HOST, '--protected-mode', 'no', '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: 'ignore' },
  );
  const killOnExit = () => proc.kill('SIGKILL');
  process.once('exit', killOnExit);
  const stop = async () => {
    process.removeListener('exit', killOnExit);
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise<void>((r) => proc.once('exit', () => r()));
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (proc.exitCode !== null) {
      await stop();
      throw new Error(`redis-server on port ${port} exited with ${proc.exitCode}`);
    }
    if ((await redisCli(port, 'ping').catch(() => '')).trim() === 'PONG') return { port, stop };
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`redis-server on port ${port} not answering PING within 10 s`);
    }
    await sleep(100);
  }
}

/**
 * Waits (bounded) until every replica of the master on masterPort reports master_link_status:up.
 * A fresh cluster's replicas are not in sync for a while (Redis 7 waits repl-diskless-sync-delay,
 * 5 s by default, before the first full sync), and a replica that never synced does not fail over.
 */
export async function waitReplicasInSync(anyPort: number, masterPort: number, ms: number): Promise<number[]> {
  const deadline = Date.now() + ms;
  let last = '';
  for (;;) {
    const nodes = await redisCli(anyPort, 'cluster', 'nodes');
    const lines = nodes.split('\n').map((l) => l.trim().split(' '));
    const master = lines.find((f) => f.length >= 8 && Number(f[1].split('@')[0].split(':').pop()) === masterPort);
    if (master === undefined) throw new Error(`no node on port ${masterPort}: ${nodes}`);
    const replicas = lines
      .filter((f) => f.length >= 8 && f[3] === master[0])
      .map((f) => Number(f[1].split('@')[0].split(':').pop()));
    const states = await Promise.all(
      replicas.map(async (p) => /master_link_status:up/.test(await redisCli(p, 'info', 'replication').catch(() => ''))),
    );
    if (replicas.length > 0 && states.every(Boolean)) return replicas;
    last = `replicas ${JSON.stringify(replicas)} in sync: ${JSON.stringify(states)}`;
    if (Date.now() > deadline) throw new Error(`replicas of ${masterPort} not in sync within ${ms} ms (${last})`);
    await sleep(200);
  }
}
