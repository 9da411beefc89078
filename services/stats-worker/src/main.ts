/*
 * The stats worker process. Configuration (environment; config.ts checks it):
 *   KAFKA_BROKERS        host:port,… (required)
 *   KAFKA_TOPIC          the gateways' topic (default announces)
 *   KAFKA_TLS*, KAFKA_SASL_*, REDIS_TLS*   TLS and authentication (@peertracker/events, connection.ts)
 *   STATS_GROUP_ID       the consumer group of every worker replica (default peertracker-stats)
 *   REDIS_URL or REDIS_CLUSTER_NODES   where the statistics go (one of them, required)
 *   STATS_KEY_PREFIX     put before every key (default st:)
 *   STATS_WORKER_ID      this replica's name (default the host name)
 *   STATS_WORKER_HOST, STATS_WORKER_PORT   GET /health and /metrics (default 0.0.0.0:9470)
 *   STATS_ROLLUP_EVERY_MS, STATS_TOP_EVERY_MS, STATS_SEAL_EVERY_MS, STATS_SEAL_HORIZON_S,
 *   STATS_TOP_N          the scheduled jobs (jobs.ts)
 *   STATS_MAX_CLOCK_SKEW_S  events timed further ahead of this clock are skipped (default 600)
 *   STATS_KEEP_MINUTES_DAYS, STATS_KEEP_HOURS_DAYS, STATS_KEEP_DAYS_DAYS, STATS_KEEP_WORKING_DAYS
 *                        retention per resolution (state.ts)
 * SIGTERM or SIGINT: /health answers 503, the batch being written is finished (its offsets are
 * written with it, so nothing is counted twice or lost), the consumer leaves the group (its
 * partitions go to the others), the jobs stop, and it exits; within STATS_SHUTDOWN_TIMEOUT_MS
 * (default 10 s) in any case.
 */
// (first: OpenTelemetry patches ioredis and kafkajs before they are required)
import './instrument';
import { createServer } from 'node:http';
import { hostname } from 'node:os';
import type { Cluster, Redis } from 'ioredis';
import { telemetry } from '@peertracker/telemetry';
import { configOrExit, workerConfig } from './config';
import { StatsJobs } from './jobs';
import { WorkerMetrics } from './metrics';
import { log } from './log';
import { redisClient, StatsState, type RedisTarget } from './state';
import { StatsWorker } from './worker';


/** BullMQ's own connection: it blocks on it, so no command may time out by retries. */
function queueConnection(target: RedisTarget): Redis | Cluster {
  return redisClient(target, { maxRetriesPerRequest: null });
}

async function main(): Promise<void> {
  const c = configOrExit('stats-worker', workerConfig);
  const wlog = { info: (m: string, f?: Record<string, unknown>) => log('info', m, f), warn: (m: string, f?: Record<string, unknown>) => log('warn', m, f) };
  const state = new StatsState(c.target, c.prefix, c.retention);
  await state.connect();
  // (the metrics read the topic's offsets through the worker, made next)
  const metrics: WorkerMetrics = new WorkerMetrics(state, () => worker.highWatermarks());
  telemetry().exportRegistry(metrics.registry);
  const worker: StatsWorker = new StatsWorker({
    brokers: c.brokers,
    security: c.kafkaSecurity,
    topic: c.topic,
    groupId: c.groupId,
    clientId: c.clientId ?? hostname(),
    state,
    log: wlog,
    observer: metrics,
    maxClockSkewMs: c.maxClockSkewMs,
  });
  const jobs = new StatsJobs({
    state,
    connection: queueConnection(c.target),
    highWatermarks: () => worker.highWatermarks(),
    rollupEveryMs: c.rollupEveryMs,
    topEveryMs: c.topEveryMs,
    sealEveryMs: c.sealEveryMs,
    horizonMs: c.horizonMs,
    topN: c.topN,
    log: wlog,
    observe: (job, ok, s) => metrics.job(job, ok, s),
  });
  let ready = false;
  const server = createServer((req, res) => {
    if (req.url === '/health/live') {
      // alive while it answers, joined or not: a Kafka outage must not restart every worker
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'ok' }));
    } else if (req.url === '/health') {
      res.writeHead(ready ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ status: ready ? 'ok' : 'starting' }));
    } else if (req.url === '/metrics') {
      metrics.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
        (err: unknown) => res.writeHead(500).end(String(err)),
      );
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(c.port, c.host, resolve));
  const addr = server.address();
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
  await jobs.start();
  ready = true;
  log('info', 'stats worker started', { topic: c.topic, group: c.groupId, port: typeof addr === 'object' && addr ? addr.port : c.port });
  const stop = async () => {
    // (whatever hangs, the process is gone by STATS_SHUTDOWN_TIMEOUT_MS)
    setTimeout(() => {
      log('error', 'shutdown took longer than STATS_SHUTDOWN_TIMEOUT_MS; exiting');
      process.exit(1);
    }, c.shutdownTimeoutMs).unref();
    ready = false;
    await worker.stop().catch(() => {});
    await jobs.stop().catch(() => {});
    await state.close();
    server.close();
    await telemetry().shutdown(2000);
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop());
  process.once('SIGINT', () => void stop());
}

main().catch((err: unknown) => {
  log('error', 'stats worker failed', { err: String(err) });
  process.exit(1);
});
