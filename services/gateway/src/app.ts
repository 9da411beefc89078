import { createSocket, type Socket } from 'node:dgram';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { MemoryStore, TrackerLogic, type SwarmStore } from '@peertracker/tracker';
import { ClientAddressResolver } from './client-address';
import type { GatewayConfig } from './config';
import { ConnectionIds } from './connection-id';
import { HttpFrontend } from './http-frontend';
import { silentLogger, type Logger } from './log';
import { GatewayMetrics } from './metrics';
import { UdpFrontend } from './udp-frontend';

export interface Gateway {
  readonly httpPort: number;
  readonly udpPort: number;
  readonly store: SwarmStore;
  readonly metrics: GatewayMetrics;
  close(): Promise<void>;
}

export interface GatewayDeps {
  /** defaults to a new in-memory store (TRACKER_STORE=memory) */
  store?: SwarmStore;
  log?: Logger;
  /** ms clock shared by the logic and connection IDs (tests) */
  now?: () => number;
}

/** How often the in-memory store drops expired peers and empty swarms. */
const SWEEP_INTERVAL_MS = 30_000;

/** Builds the express app for everything that is not announce/scrape. */
export function createAdminApp(metrics: GatewayMetrics, log: Logger = silentLogger): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.get('/health', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/metrics', async (_req, res, next) => {
    try {
      const body = await metrics.registry.metrics();
      res.set('Content-Type', metrics.registry.contentType).send(body);
    } catch (err) {
      next(err);
    }
  });
  app.use((_req, res) => {
    res.status(404).type('text/plain').send('not found: trackers serve /announce and /scrape\n');
  });
  // express's default handler would answer an HTML page with a stack trace (e.g. /metrics while
  // Redis is down); operators get a short plain-text 503 and the details go to the log.
  app.use((err: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    log.error('admin request failed', { err });
    res.status(503).type('text/plain').send('temporarily unavailable\n');
  });
  return app;
}

/**
 * Starts one gateway: HTTP (announce, scrape, health, metrics) and UDP (BEP 15) listeners over
 * one swarm store. Ports 0 pick free ports (tests); the chosen ones are on the returned object.
 */
export async function createGateway(config: GatewayConfig, deps: GatewayDeps = {}): Promise<Gateway> {
  const log = deps.log ?? silentLogger;
  const now = deps.now ?? Date.now;
  const store = deps.store ?? new MemoryStore({ swarmRetentionMs: config.swarmRetentionSec * 1000 });
  const metrics = new GatewayMetrics(store);
  const logic = new TrackerLogic(store, {
    announceIntervalSec: config.announceIntervalSec,
    minIntervalSec: config.minIntervalSec,
    intervalJitterSec: config.intervalJitterSec,
    peerLifetimeSec: config.peerLifetimeSec,
    defaultNumwant: config.defaultNumwant,
    maxNumwant: config.maxNumwant,
    now,
  });
  const limits = { maxScrapeHashes: config.maxScrapeHashes };
  const frontend = new HttpFrontend({
    logic,
    resolver: new ClientAddressResolver(config.trustedProxies),
    metrics,
    log,
    maxUrlLength: config.maxUrlLength,
    fullScrape: config.fullScrape,
    limits,
  });
  const admin = createAdminApp(metrics, log);
  const http = createServer((req, res) => {
    if (!frontend.handle(req, res)) admin(req, res);
  });
  // Slow or idle clients must not pin sockets forever; trackers get one request per interval.
  http.keepAliveTimeout = 65_000;
  http.headersTimeout = 10_000;
  http.requestTimeout = 15_000;
  http.on('clientError', (_err, socket) => {
    // Malformed HTTP (or headers over the size limit): answer 400 and close, never crash.
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    else socket.destroy();
  });

  // A full pass per interval, in small batches, so the event loop never stalls on a big store.
  const stopSweeper = store instanceof MemoryStore ? store.startSweeper(SWEEP_INTERVAL_MS, now) : undefined;

  let udp: Socket | undefined;
  try {
    const host = await listenHttp(http, config.host, config.httpPort, log);
    udp = await bindUdp(host, config.udpPort);
    // Bursts and event-loop pauses (GC, sweeps) must not overflow the small default buffer.
    udp.setRecvBufferSize(config.udpRecvBuffer);
    if (udp.getRecvBufferSize() < config.udpRecvBuffer) {
      log.warn('UDP receive buffer is smaller than TRACKER_UDP_RECV_BUFFER: raise net.core.rmem_max', {
        asked: config.udpRecvBuffer,
        got: udp.getRecvBufferSize(),
      });
    }
    const udpFrontend = new UdpFrontend(udp, {
      logic,
      connectionIds: new ConnectionIds(config.connectionSecret, now),
      metrics,
      log,
      limits,
    });
    udp.on('message', udpFrontend.onMessage);
    udp.on('error', (err) => log.error('udp socket error', { err }));
  } catch (err) {
    stopSweeper?.();
    http.close();
    udp?.close();
    throw err;
  }
  const udpSocket = udp;
  return {
    httpPort: (http.address() as AddressInfo).port,
    udpPort: udpSocket.address().port,
    store,
    metrics,
    async close() {
      stopSweeper?.();
      await new Promise<void>((resolve) => udpSocket.close(() => resolve()));
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
      if (!deps.store) await store.close();
    },
  };
}

/**
 * Listens on host, or, when host is '::' and this machine has no IPv6, on 0.0.0.0.
 * Returns the host actually bound, so UDP binds the same.
 */
async function listenHttp(http: Server, host: string, port: number, log: Logger): Promise<string> {
  const listen = (h: string) =>
    new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      http.once('error', onError);
      http.listen({ host: h, port }, () => {
        http.off('error', onError);
        resolve();
      });
    });
  try {
    await listen(host);
    return host;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (host !== '::' || (code !== 'EAFNOSUPPORT' && code !== 'EADDRNOTAVAIL')) throw err;
    log.warn('IPv6 is unavailable here; listening on 0.0.0.0 only', { code });
    await listen('0.0.0.0');
    return '0.0.0.0';
  }
}

function bindUdp(host: string, port: number): Promise<Socket> {
  const v6 = host.includes(':');
  // ipv6Only false: one '::' socket serves IPv4 clients too, as '::ffff:a.b.c.d'.
  const socket = createSocket({ type: v6 ? 'udp6' : 'udp4', ipv6Only: false, reuseAddr: false });
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ address: host, port, exclusive: true }, () => {
      socket.off('error', reject);
      resolve(socket);
    });
  });
}
