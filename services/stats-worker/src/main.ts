/*
 * The stats worker process. Configuration (environment):
 *   KAFKA_BROKERS        host:port,… (required)
 *   KAFKA_TOPIC          the gateways' topic (default announces)
 *   STATS_GROUP_ID       the consumer group of every worker replica (default peertracker-stats)
 *   REDIS_URL or REDIS_CLUSTER_NODES   where the statistics go (one of them, required)
 *   STATS_KEY_PREFIX     put before every key (default st:)
 *   STATS_WORKER_ID      this replica's name (default the host name)
 * SIGTERM or SIGINT: the consumer leaves the group (its partitions go to the others) and exits.
 */
import { hostname } from 'node:os';
import { StatsState, type RedisTarget } from './state';
import { StatsWorker } from './worker';

class ConfigError extends Error {}

function hostPorts(name: string, v: string): { host: string; port: number }[] {
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

function config(env: NodeJS.ProcessEnv) {
  const get = (k: string) => (env[k]?.trim() ? env[k]!.trim() : undefined);
  const brokers = get('KAFKA_BROKERS');
  if (brokers === undefined) throw new ConfigError('KAFKA_BROKERS is required (host:port,…)');
  const url = get('REDIS_URL');
  const nodes = get('REDIS_CLUSTER_NODES');
  if ((url === undefined) === (nodes === undefined)) throw new ConfigError('set exactly one of REDIS_URL and REDIS_CLUSTER_NODES');
  const target: RedisTarget = url !== undefined ? { url } : { clusterNodes: hostPorts('REDIS_CLUSTER_NODES', nodes!) };
  const prefix = get('STATS_KEY_PREFIX') ?? 'st:';
  if (/[{}\s]/.test(prefix)) throw new ConfigError('STATS_KEY_PREFIX must not contain {, } or whitespace');
  const topic = get('KAFKA_TOPIC') ?? 'announces';
  if (!/^[A-Za-z0-9._-]{1,249}$/.test(topic)) throw new ConfigError(`KAFKA_TOPIC must be a Kafka topic name (got ${JSON.stringify(topic)})`);
  return {
    brokers: hostPorts('KAFKA_BROKERS', brokers).map((b) => `${b.host.includes(':') ? `[${b.host}]` : b.host}:${b.port}`),
    topic,
    groupId: get('STATS_GROUP_ID') ?? 'peertracker-stats',
    clientId: get('STATS_WORKER_ID') ?? hostname(),
    target,
    prefix,
  };
}

function log(level: string, msg: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`);
}

async function main(): Promise<void> {
  let c: ReturnType<typeof config>;
  try {
    c = config(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`stats-worker: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const state = new StatsState(c.target, c.prefix);
  await state.connect();
  const worker = new StatsWorker({
    brokers: c.brokers,
    topic: c.topic,
    groupId: c.groupId,
    clientId: c.clientId,
    state,
    log: { info: (m, f) => log('info', m, f), warn: (m, f) => log('warn', m, f) },
  });
  // (Kafka may not be up yet, or its topic may be missing: try again until it is)
  for (let wait = 500; ; wait = Math.min(wait * 2, 10_000)) {
    try {
      await worker.start();
      break;
    } catch (err) {
      log('warn', 'cannot join the consumer group yet; trying again', { err: String(err), retryMs: wait });
      await worker.stop().catch(() => {});
      await new Promise((r) => setTimeout(r, wait));
    }
  }
  log('info', 'stats worker started', { topic: c.topic, group: c.groupId });
  const stop = async () => {
    await worker.stop().catch(() => {});
    await state.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop());
  process.once('SIGINT', () => void stop());
}

main().catch((err: unknown) => {
  log('error', 'stats worker failed', { err: String(err) });
  process.exit(1);
});
