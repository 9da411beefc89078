/*
 * Is a Docker engine reachable? Cheap and bounded: the endpoint is DOCKER_HOST, or the first
 * Docker socket file that exists (none → "no" at once, without any I/O beyond a stat); then one
 * `GET /_ping` (a TCP connect for TLS endpoints) that gives up after `timeoutMs`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const DOCKER_PROBE_TIMEOUT_MS = 1000;

export type DockerEndpoint =
  | { socketPath: string; label: string }
  | { host: string; port: number; tls: boolean; label: string };

export interface DockerProbe {
  reachable: boolean;
  /** where the engine was looked for ("none" when no DOCKER_HOST and no socket file) */
  endpoint: string;
  /** why it is not reachable */
  reason?: string;
}

/** Where the Docker engine should be, or undefined when nothing points at one. */
export function dockerEndpoint(env: NodeJS.ProcessEnv = process.env): DockerEndpoint | undefined {
  const dh = env.DOCKER_HOST?.trim();
  if (dh) {
    if (dh.startsWith('unix://')) return { socketPath: dh.slice('unix://'.length), label: dh };
    if (dh.startsWith('npipe://')) return { socketPath: dh.slice('npipe://'.length).replace(/\//g, '\\'), label: dh };
    const u = new URL(dh.replace(/^tcp:/, 'http:'));
    const tls = (env.DOCKER_TLS_VERIFY ?? '') !== '' && env.DOCKER_TLS_VERIFY !== '0';
    const port = Number(u.port || (tls ? 2376 : 2375));
    return { host: u.hostname.replace(/^\[|\]$/g, ''), port, tls: tls || port === 2376, label: dh };
  }
  const candidates = [
    '/var/run/docker.sock',
    join(homedir(), '.docker', 'run', 'docker.sock'), // Docker Desktop (macOS)
    join(homedir(), '.docker', 'desktop', 'docker.sock'), // Docker Desktop (Linux)
    ...(env.XDG_RUNTIME_DIR ? [join(env.XDG_RUNTIME_DIR, 'docker.sock')] : []), // rootless
  ];
  const found = candidates.find((p) => existsSync(p));
  return found === undefined ? undefined : { socketPath: found, label: `unix://${found}` };
}

/** Asks the engine for /_ping; resolves (never rejects) within about `timeoutMs`. */
export function dockerEngineReachable(
  env: NodeJS.ProcessEnv = process.env,
  timeoutMs = DOCKER_PROBE_TIMEOUT_MS,
): Promise<DockerProbe> {
  let ep: DockerEndpoint | undefined;
  try {
    ep = dockerEndpoint(env);
  } catch (e) {
    return Promise.resolve({ reachable: false, endpoint: String(env.DOCKER_HOST), reason: `bad DOCKER_HOST: ${(e as Error).message}` });
  }
  if (ep === undefined) {
    return Promise.resolve({ reachable: false, endpoint: 'none', reason: 'DOCKER_HOST is not set and no Docker socket file exists' });
  }
  const endpoint = ep.label;
  return new Promise((resolve) => {
    let done = false;
    const finish = (reachable: boolean, reason?: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ reachable, endpoint, ...(reason === undefined ? {} : { reason }) });
    };
    const timer = setTimeout(() => {
      cleanup();
      finish(false, `the engine did not answer within ${timeoutMs} ms`);
    }, timeoutMs);
    let cleanup = () => {};
    if ('host' in ep && ep.tls) {
      const sock = connect({ host: ep.host, port: ep.port });
      cleanup = () => sock.destroy();
      sock.once('connect', () => {
        sock.destroy();
        finish(true);
      });
      sock.once('error', (e) => finish(false, e.message));
      return;
    }
    const req = request(
      { method: 'GET', path: '/_ping', ...('socketPath' in ep ? { socketPath: ep.socketPath } : { host: ep.host, port: ep.port }) },
      (res) => {
        res.resume();
        finish(true);
      },
    );
    cleanup = () => req.destroy();
    req.once('error', (e) => finish(false, e.message));
    req.end();
  });
}

/**
 * The same probe, synchronously (for the synchronous skip decision of a test file): runs it in a
 * child Node process, killed if it outlives the timeout.
 */
export function dockerEngineReachableSync(
  env: NodeJS.ProcessEnv = process.env,
  timeoutMs = DOCKER_PROBE_TIMEOUT_MS,
): DockerProbe {
  let ep: DockerEndpoint | undefined;
  try {
    ep = dockerEndpoint(env);
  } catch {
    ep = { socketPath: '', label: String(env.DOCKER_HOST) }; // let the child report the error
  }
  // nothing to ask: answer without starting a process
  if (ep === undefined) return { reachable: false, endpoint: 'none', reason: 'DOCKER_HOST is not set and no Docker socket file exists' };
  const script =
    `require(${JSON.stringify(__filename)}).dockerEngineReachable(JSON.parse(process.argv[1]), ${timeoutMs})` +
    `.then((r) => process.stdout.write(JSON.stringify(r)))`;
  const pick = { DOCKER_HOST: env.DOCKER_HOST, DOCKER_TLS_VERIFY: env.DOCKER_TLS_VERIFY, XDG_RUNTIME_DIR: env.XDG_RUNTIME_DIR };
  const r = spawnSync(process.execPath, ['-e', script, JSON.stringify(pick)], {
    encoding: 'utf8',
    timeout: timeoutMs + 5000,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    return JSON.parse(r.stdout) as DockerProbe;
  } catch {
    return { reachable: false, endpoint: ep.label, reason: `probe failed: ${r.error?.message ?? r.stderr.slice(-300)}` };
  }
}
