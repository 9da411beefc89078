import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  ClientError,
  decodeCompactPeers,
  encodeAnnounce,
  encodeAnnounceDict,
  encodeFailure,
  encodeScrape,
  parseAnnounceQuery,
  parseScrapeQuery,
  type AnnounceRequest,
  type ProtocolLimits,
} from '@peertracker/protocol';
import type { AnnounceReply, TrackerLogic } from '@peertracker/tracker';
import { PROTOCOL_CODES } from '@peertracker/events';
import { recordingSpan, telemetry, type SpanContext } from '@peertracker/telemetry';
import { ClientAddressResolver, endpointOf } from './client-address';
import { throttled, type Logger } from './log';
import type { GatewayMetrics } from './metrics';
import type { EventSink } from './events/sink';

export interface HttpFrontendOptions {
  logic: TrackerLogic;
  resolver: ClientAddressResolver;
  metrics: GatewayMetrics;
  log: Logger;
  maxUrlLength: number;
  fullScrape: boolean;
  limits: ProtocolLimits;
  /** gets every answered announce (KAFKA_BROKERS) */
  events?: EventSink;
}

const INTERNAL_ERROR = 'tracker is temporarily unavailable, retry later';
const PROTOCOL_HTTP = PROTOCOL_CODES.http;

/**
 * Serves /announce and /scrape straight off node:http, before express: the express router costs
 * more per request than the announce itself (see the README's performance section). Returns false
 * for any other path so the caller hands the request to express.
 *
 * Failures are answered with HTTP 200 and a bencoded `failure reason`: BitTorrent clients show the
 * reason only on a 200 (libtorrent treats other statuses as transport errors).
 */
export class HttpFrontend {
  private readonly reportServerError: (fields: Record<string, unknown>) => void;
  /** traces on: the HTTP instrumentation makes the span of a traced request, the event links to it */
  private readonly tracing = telemetry().tracing;

  constructor(private readonly o: HttpFrontendOptions) {
    this.reportServerError = throttled(o.log, 'error', 'announce/scrape failed');
  }

  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const url = req.url ?? '';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const isAnnounce = path === '/announce';
    if (!isAnnounce && path !== '/scrape') return false;
    if (url.length > this.o.maxUrlLength) {
      this.clientError(res, `request URL too long (max ${this.o.maxUrlLength} bytes)`);
    } else if (req.method !== 'GET' && req.method !== 'HEAD') {
      this.clientError(res, 'use GET');
    } else {
      const query = q === -1 ? '' : url.slice(q + 1);
      if (isAnnounce) this.announce(req, res, query);
      else this.scrape(res, query);
    }
    return true;
  }

  private announce(req: IncomingMessage, res: ServerResponse, query: string): void {
    const started = this.o.metrics.latencyHttp.start();
    let request: AnnounceRequest;
    try {
      request = parseAnnounceQuery(query);
    } catch (err) {
      return this.rejected(res, err);
    }
    const address = this.o.resolver.resolve(req.socket.remoteAddress, req.headers['x-forwarded-for']);
    const from = address === undefined ? null : endpointOf(address);
    if (from === null) return this.clientError(res, 'cannot determine your IP address');
    // (taken now: the context is the request's only until the store call returns)
    const traced = this.tracing ? recordingSpan()?.spanContext() : undefined;
    let reply: AnnounceReply | Promise<AnnounceReply>;
    try {
      reply = this.o.logic.announce(request, from);
    } catch (err) {
      return this.serverError(res, err);
    }
    // The in-memory store answers synchronously; replying in the same tick is measurably faster.
    if (reply instanceof Promise) {
      reply.then(
        (r) => this.answer(res, request, r, started, traced),
        (err: unknown) => this.serverError(res, err),
      );
    } else {
      this.answer(res, request, reply, started, traced);
    }
  }

  /** traced: the request's span, when it is traced */
  private answer(res: ServerResponse, request: AnnounceRequest, reply: AnnounceReply, started: number, traced: SpanContext | undefined): void {
    let body: Buffer;
    try {
      body = encodeReply(request, reply);
    } catch (err) {
      return this.serverError(res, err);
    }
    (reply.family === 4 ? this.o.metrics.announceHttp4 : this.o.metrics.announceHttp6).inc();
    if (reply.refused !== undefined) this.o.metrics.refusal(reply.refused);
    this.o.events?.announced(request, reply.family, PROTOCOL_HTTP, reply.complete, reply.incomplete, traced);
    send(res, body);
    this.o.metrics.latencyHttp.end(started);
  }

  private scrape(res: ServerResponse, query: string): void {
    let hashes: Buffer[];
    try {
      hashes = parseScrapeQuery(query, this.o.limits);
    } catch (err) {
      return this.rejected(res, err);
    }
    if (hashes.length === 0 && !this.o.fullScrape) {
      return this.clientError(res, 'full scrape is disabled: name at least one info_hash');
    }
    const entries = hashes.length === 0 ? this.o.logic.scrapeAll() : this.o.logic.scrape(hashes);
    entries.then(
      (files) => {
        this.o.metrics.scrapeHttp.inc();
        send(res, encodeScrape(files));
      },
      (err: unknown) => this.serverError(res, err),
    );
  }

  private rejected(res: ServerResponse, err: unknown): void {
    if (err instanceof ClientError) return this.clientError(res, err.message);
    this.serverError(res, err);
  }

  private clientError(res: ServerResponse, reason: string): void {
    this.o.metrics.clientErrorHttp.inc();
    send(res, encodeFailure(reason));
  }

  private serverError(res: ServerResponse, err: unknown): void {
    this.o.metrics.serverErrorHttp.inc();
    this.o.metrics.storeFailure(err);
    this.reportServerError({ err });
    send(res, encodeFailure(INTERNAL_ERROR));
  }
}

function encodeReply(request: AnnounceRequest, reply: AnnounceReply): Buffer {
  if (request.compact) {
    return encodeAnnounce({
      interval: reply.interval,
      minInterval: reply.minInterval,
      complete: reply.complete,
      incomplete: reply.incomplete,
      peers: reply.family === 4 ? reply.peers : undefined,
      peers6: reply.family === 6 ? reply.peers : undefined,
    });
  }
  const ids = reply.peerIds;
  const peers = decodeCompactPeers(reply.peers, reply.family).map((p, i) =>
    ids === undefined ? p : { ...p, peerId: ids.subarray(i * 20, i * 20 + 20) },
  );
  return encodeAnnounceDict({
    interval: reply.interval,
    minInterval: reply.minInterval,
    complete: reply.complete,
    incomplete: reply.incomplete,
    peers,
  });
}

function send(res: ServerResponse, body: Buffer): void {
  if (res.writableEnded || res.destroyed) return;
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': body.length });
  res.end(body);
}
