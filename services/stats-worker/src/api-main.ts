/*
 * The stats API process (api.ts). Configuration (environment; config.ts checks it):
 *   REDIS_URL or REDIS_CLUSTER_NODES   where the statistics are (one of them, required)
 *   STATS_KEY_PREFIX     as the workers' (default st:)
 *   STATS_API_HOST, STATS_API_PORT     where it listens (default 0.0.0.0:8080)
 *   STATS_API_MAX_INFLIGHT   requests answered at once; more get a 503 (default 32)
 * GET /openapi.json documents the routes; /health and /metrics are for operators.
 * SIGTERM or SIGINT: /health answers 503, the server stops taking connections, answers what it
 * has, and exits; within STATS_SHUTDOWN_TIMEOUT_MS (default 10 s) in any case.
 */
// (first: OpenTelemetry patches express and ioredis before they are required)
import './instrument-api';
import { telemetry } from '@peertracker/telemetry';
import { createApi } from './api';
import { configOrExit, apiConfig } from './config';
import { StatsReader } from './read';
import { log } from './log';
import { ApiMetrics } from './metrics';
import { StatsState } from './state';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';

/** How long a connection accepted before the stop may take to send its request */
const SILENT_GRACE_MS = 1000;

async function main(): Promise<void> {
  const c = configOrExit('stats-api', apiConfig);
  const state = new StatsState(c.target, c.prefix);
  await state.connect();
  const metrics = new ApiMetrics();
  telemetry().exportRegistry(metrics.registry);
  let ready = true;
  const app = createApi({
    reader: new StatsReader(state),
    maxInFlight: c.maxInFlight,
    ready: () => ready,
    metrics: async () => ({ contentType: metrics.registry.contentType, text: await metrics.registry.metrics() }),
    answered: (route, status) => metrics.answered(route, status),
  });
  const server = app.listen(c.port, c.host);
  await new Promise<void>((resolve, reject) => server.once('listening', resolve).once('error', reject));
  // Connections that have not sent a request yet: close() and closeIdleConnections() leave them
  // open, so one silent client would hold the stop to STATS_SHUTDOWN_TIMEOUT_MS
  const silent = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    silent.add(socket);
    socket.once('close', () => silent.delete(socket));
  });
  server.on('request', (req: IncomingMessage) => silent.delete(req.socket));
  const addr = server.address();
  log('info', 'stats API started', { port: typeof addr === 'object' && addr ? addr.port : c.port });
  const stop = () => {
    ready = false;
    server.close(() => {
      void state
        .close()
        .then(() => telemetry().shutdown(2000))
        .then(() => process.exit(0));
    });
    server.closeIdleConnections();
    // (a request may still be on its way on a connection accepted a moment ago: a short grace)
    setTimeout(() => {
      for (const socket of silent) socket.destroy();
    }, Math.min(SILENT_GRACE_MS, c.shutdownTimeoutMs / 2)).unref();
    setTimeout(() => process.exit(1), c.shutdownTimeoutMs).unref();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((err: unknown) => {
  log('error', 'stats API failed', { err: String(err) });
  process.exit(1);
});
