/*
 * Configuration of the stats worker and the stats API, from the environment. Every error names
 * the variable and what it must be.
 */
import { kafkaSecurityFromEnv, redisTlsFromEnv, SettingError } from '@peertracker/events';
import type { Retention, RedisTarget } from './state';

export class ConfigError extends Error {}

/** a shared setting's check (TLS, SASL), its error as a ConfigError */
function setting<T>(read: () => T): T {
  try {
    return read();
  } catch (err) {
    throw err instanceof SettingError ? new ConfigError(err.message) : err;
  }
}

type Env = NodeJS.ProcessEnv;

function get(env: Env, k: string): string | undefined {
  const v = env[k]?.trim();
  return v ? v : undefined;
}

export function hostPorts(name: string, v: string): { host: string; port: number }[] {
  const list = v
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean);
  const parsed = list.map((e) => /^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):(\d{1,5})$/.exec(e));
  if (list.length === 0 || parsed.some((m) => m === null || Number(m[2]) < 1 || Number(m[2]) > 65535)) {
    throw new ConfigError(`${name} must be a comma-separated list of host:port (got ${JSON.stringify(v)})`);
  }
  return parsed.map((m) => ({ host: m![1].replace(/^\[|\]$/g, ''), port: Number(m![2]) }));
}

/** A whole number from min to max, or the default when unset. */
export function integer(env: Env, name: string, min: number, max: number, dflt: number): number {
  const v = get(env, name);
  if (v === undefined) return dflt;
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) throw new ConfigError(`${name} must be a whole number from ${min} to ${max} (got ${JSON.stringify(v)})`);
  return Number(v);
}

/** REDIS_URL or REDIS_CLUSTER_NODES, and STATS_KEY_PREFIX: where the statistics are. */
export function redisConfig(env: Env): { target: RedisTarget; prefix: string } {
  const url = get(env, 'REDIS_URL');
  const nodes = get(env, 'REDIS_CLUSTER_NODES');
  if ((url === undefined) === (nodes === undefined)) throw new ConfigError('set exactly one of REDIS_URL and REDIS_CLUSTER_NODES');
  const prefix = get(env, 'STATS_KEY_PREFIX') ?? 'st:';
  if (/[{}\s]/.test(prefix)) throw new ConfigError('STATS_KEY_PREFIX must not contain {, } or whitespace');
  const username = get(env, 'REDIS_USERNAME');
  const password = env.REDIS_PASSWORD || undefined; // (a password's spaces are its own)
  if (url !== undefined && (username !== undefined || password !== undefined)) {
    throw new ConfigError(`${username !== undefined ? 'REDIS_USERNAME' : 'REDIS_PASSWORD'} applies to REDIS_CLUSTER_NODES; a single server's credentials go in REDIS_URL (redis://user:password@host:6379)`);
  }
  const tls = setting(() => redisTlsFromEnv(env, url));
  const withTls = tls !== undefined ? { tls } : {};
  return { target: url !== undefined ? { url, ...withTls } : { clusterNodes: hostPorts('REDIS_CLUSTER_NODES', nodes!), username, password, ...withTls }, prefix };
}

const DAY_S = 86400;

/** How long each resolution is kept (STATS_KEEP_*_DAYS). */
export function retentionConfig(env: Env): Retention {
  return {
    minutes: integer(env, 'STATS_KEEP_MINUTES_DAYS', 1, 3660, 2) * DAY_S,
    hours: integer(env, 'STATS_KEEP_HOURS_DAYS', 1, 3660, 90) * DAY_S,
    days: integer(env, 'STATS_KEEP_DAYS_DAYS', 1, 36600, 400) * DAY_S,
    torrentDays: integer(env, 'STATS_KEEP_TORRENT_DAYS', 1, 36600, 30) * DAY_S,
    working: integer(env, 'STATS_KEEP_WORKING_DAYS', 2, 3660, 3) * DAY_S,
  };
}

/**
 * (a period stays open until the events pass its end by the horizon; its minutes and torrent sets
 * must outlive that, with a day to spare, or its roll-up and active count would lose them)
 */
function checkHorizon(horizonMs: number, r: Retention): void {
  if (horizonMs / 1000 + DAY_S >= Math.min(r.minutes, r.working)) {
    throw new ConfigError('STATS_SEAL_HORIZON_S plus a day must be shorter than STATS_KEEP_MINUTES_DAYS and STATS_KEEP_WORKING_DAYS');
  }
}

export function workerConfig(env: Env) {
  const brokers = get(env, 'KAFKA_BROKERS');
  if (brokers === undefined) throw new ConfigError('KAFKA_BROKERS is required (host:port,…)');
  const topic = get(env, 'KAFKA_TOPIC') ?? 'announces';
  if (!/^[A-Za-z0-9._-]{1,249}$/.test(topic)) throw new ConfigError(`KAFKA_TOPIC must be a Kafka topic name (got ${JSON.stringify(topic)})`);
  const retention = retentionConfig(env);
  const horizonMs = integer(env, 'STATS_SEAL_HORIZON_S', 60, 7 * DAY_S, 3600) * 1000;
  checkHorizon(horizonMs, retention);
  return {
    ...redisConfig(env),
    retention,
    brokers: hostPorts('KAFKA_BROKERS', brokers).map((b) => `${b.host.includes(':') ? `[${b.host}]` : b.host}:${b.port}`),
    kafkaSecurity: setting(() => kafkaSecurityFromEnv(env)),
    topic,
    groupId: get(env, 'STATS_GROUP_ID') ?? 'peertracker-stats',
    clientId: get(env, 'STATS_WORKER_ID'),
    host: get(env, 'STATS_WORKER_HOST') ?? '0.0.0.0',
    port: integer(env, 'STATS_WORKER_PORT', 0, 65535, 9470),
    rollupEveryMs: integer(env, 'STATS_ROLLUP_EVERY_MS', 1000, 3_600_000, 30_000),
    topEveryMs: integer(env, 'STATS_TOP_EVERY_MS', 1000, 3_600_000, 60_000),
    sealEveryMs: integer(env, 'STATS_SEAL_EVERY_MS', 1000, 3_600_000, 300_000),
    horizonMs,
    topN: integer(env, 'STATS_TOP_N', 1, 10_000, 100),
    maxClockSkewMs: integer(env, 'STATS_MAX_CLOCK_SKEW_S', 1, 86_400, 600) * 1000,
    shutdownTimeoutMs: integer(env, 'STATS_SHUTDOWN_TIMEOUT_MS', 100, 600_000, 10_000),
  };
}

export function apiConfig(env: Env) {
  return {
    ...redisConfig(env),
    host: get(env, 'STATS_API_HOST') ?? '0.0.0.0',
    port: integer(env, 'STATS_API_PORT', 0, 65535, 8080),
    maxInFlight: integer(env, 'STATS_API_MAX_INFLIGHT', 1, 100_000, 32),
    shutdownTimeoutMs: integer(env, 'STATS_SHUTDOWN_TIMEOUT_MS', 100, 600_000, 10_000),
  };
}

/** The configuration, or exit 2 with the error (which names the variable) on stderr. */
export function configOrExit<T>(process_: string, read: (env: Env) => T): T {
  try {
    return read(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${process_}: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}
