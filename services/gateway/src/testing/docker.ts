/**
 * The tests' own Docker engine (scripts/docker/engine.sh) with the base-image stand-ins built
 * (scripts/docker/standins.sh), and small wrappers around the docker CLI for the image and compose
 * tests. The engine needs root and Debian's docker.io; where it cannot start the tests skip with a
 * message, except under CI=true, where they fail.
 */
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const REPO_ROOT = resolve(__dirname, '../../../..');
const ENGINE = join(REPO_ROOT, 'scripts/docker/engine.sh');
const STANDINS = join(REPO_ROOT, 'scripts/docker/standins.sh');

function onPath(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Why the Docker tests cannot run here, or undefined when they can (always undefined under CI=true). */
export function dockerSkipReason(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.CI === 'true') return undefined;
  if (process.getuid?.() !== 0) return "the tests' own Docker engine needs root";
  for (const [cmd, pkg] of [['dockerd', 'docker.io'], ['docker', 'docker.io'], ['docker-compose', 'docker-compose'], ['mmdebstrap', 'mmdebstrap'], ['mvn', 'maven'], ['prometheus', 'prometheus']]) {
    if (!onPath(cmd)) return `${cmd} is not installed (Debian package ${pkg}; .ci/run installs it)`;
  }
  return undefined;
}

function run(cmd: string, args: string[], opts: SpawnSyncOptions = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  if (r.status !== 0) {
    const out = `${String(r.stdout ?? '').slice(-3000)}\n${String(r.stderr ?? '').slice(-3000)}`;
    throw new Error(`${cmd} ${args.join(' ')} failed (${r.error?.message ?? `exit ${r.status}`}):\n${out}`);
  }
  return String(r.stdout ?? '');
}

export interface TestEngine {
  /** the DOCKER_HOST of the engine */
  host: string;
  /** env for docker and docker-compose commands */
  env: NodeJS.ProcessEnv;
  docker(args: string[], opts?: SpawnSyncOptions): string;
  /** the docker command's result without throwing */
  tryDocker(args: string[]): { status: number | null; stdout: string; stderr: string };
  compose(args: string[], opts?: SpawnSyncOptions): string;
  /** docker build --network host from the repository root, as CI builds the images */
  build(dockerfile: string, tag: string, target?: string): void;
  /** stops every container, removes the networks made, stops the engine */
  stop(): void;
}

/** Starts the engine (or finds it running) and brings the stand-ins up to date (a no-op when current). */
export function startTestEngine(): TestEngine {
  const host = run('bash', [ENGINE, 'start'], { timeout: 60_000 }).trim();
  const env = { ...process.env, DOCKER_HOST: host, COMPOSE_DOCKER_CLI_BUILD: '0' };
  run('bash', [STANDINS], { env, timeout: 15 * 60_000, stdio: ['ignore', 'pipe', 'pipe'] });
  const docker = (args: string[], opts: SpawnSyncOptions = {}) => run('docker', args, { env, timeout: 10 * 60_000, ...opts });
  return {
    host,
    env,
    docker,
    tryDocker(args) {
      const r = spawnSync('docker', args, { env, encoding: 'utf8', timeout: 120_000 });
      return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
    },
    compose: (args, opts = {}) => run('docker-compose', args, { env, cwd: REPO_ROOT, timeout: 10 * 60_000, ...opts }),
    build(dockerfile, tag, target) {
      if (!existsSync(join(REPO_ROOT, dockerfile))) throw new Error(`no ${dockerfile}`);
      docker(['build', '--quiet', '--network', 'host', '-f', dockerfile, ...(target ? ['--target', target] : []), '-t', tag, '.'], { cwd: REPO_ROOT, timeout: 15 * 60_000 });
    },
    stop() {
      run('bash', [ENGINE, 'stop'], { timeout: 120_000 });
    },
  };
}

/** An image's size in bytes */
export function imageSize(engine: TestEngine, image: string): number {
  return Number(engine.docker(['image', 'inspect', '--format', '{{.Size}}', image]).trim());
}

/** The host port docker published for a container port, such as '6969/udp' */
export function publishedPort(engine: TestEngine, container: string, port: string): number {
  const out = engine.docker(['port', container, port]).trim().split('\n')[0];
  const m = /:(\d+)$/.exec(out);
  if (!m) throw new Error(`no published port for ${container} ${port}: ${out}`);
  return Number(m[1]);
}

/** Polls a container's health status until it is `want` (or the deadline passes) */
export async function waitHealth(engine: TestEngine, container: string, want: string, ms: number): Promise<string> {
  const deadline = Date.now() + ms;
  let status = '';
  while (Date.now() < deadline) {
    status = engine.docker(['inspect', '--format', '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}', container]).trim();
    if (status === want) return status;
    await new Promise((r) => setTimeout(r, 500));
  }
  return status;
}
