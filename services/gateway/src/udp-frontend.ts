import type { RemoteInfo, Socket } from 'node:dgram';
import {
  encodeUdpAnnounce,
  encodeUdpConnect,
  encodeUdpError,
  encodeUdpScrape,
  parseUdpRequest,
  type ProtocolLimits,
} from '@peertracker/protocol';
import type { AnnounceRequest } from '@peertracker/protocol';
import type { AnnounceReply, PeerEndpoint, TrackerLogic } from '@peertracker/tracker';
import { PROTOCOL_CODES } from '@peertracker/events';
import { rootSampled, type Span } from '@peertracker/telemetry';
import { endpointOf, unmapIPv4 } from './client-address';
import type { ConnectionIds } from './connection-id';
import { throttled, type Logger } from './log';
import type { GatewayMetrics } from './metrics';
import type { EventSink } from './events/sink';
import { endWithError, inSpan, startUdpAnnounceSpan } from './tracing';

export interface UdpFrontendOptions {
  logic: TrackerLogic;
  connectionIds: ConnectionIds;
  metrics: GatewayMetrics;
  log: Logger;
  limits: ProtocolLimits;
  /** gets every answered announce (KAFKA_BROKERS) */
  events?: EventSink;
}

const INTERNAL_ERROR = 'tracker is temporarily unavailable, retry later';
const PROTOCOL_UDP = PROTOCOL_CODES.udp;

/**
 * BEP 15 over one dgram socket. Only a connect request, or a packet carrying a connection ID that
 * this client's IP earned, gets an answer: everything else is dropped silently, so the tracker
 * can't be used to reflect traffic at a spoofed address (a connect reply is no larger than the
 * connect request).
 */
export class UdpFrontend {
  private readonly reportServerError: (fields: Record<string, unknown>) => void;
  private readonly reportSendError: (fields: Record<string, unknown>) => void;
  private closed = false;
  /** announces and scrapes waiting for the store (a graceful shutdown waits for them) */
  pending = 0;

  constructor(
    private readonly socket: Socket,
    private readonly o: UdpFrontendOptions,
  ) {
    this.reportServerError = throttled(o.log, 'error', 'udp request failed');
    this.reportSendError = throttled(o.log, 'warn', 'udp reply not sent');
  }

  /**
   * Call before closing the socket: replies of store calls still in flight (Redis) are dropped
   * instead of being sent on a closed socket.
   */
  close(): void {
    this.closed = true;
  }

  readonly onMessage = (msg: Buffer, rinfo: RemoteInfo): void => {
    // Source port 0 is spoofed (no socket sends from it) and nothing can be sent back to it.
    if (rinfo.port === 0) return this.o.metrics.udpDroppedBadSourcePort.inc();
    const from = endpointOf(unmapIPv4(rinfo.address));
    if (from === null) return this.o.metrics.udpDroppedMalformed.inc();
    const parsed = parseUdpRequest(msg, this.o.limits);
    if (!parsed.ok) {
      if (parsed.drop) return this.o.metrics.udpDroppedMalformed.inc();
      if (!this.o.connectionIds.isValid(parsed.connectionId, from.ip)) {
        return this.o.metrics.udpDroppedBadConnectionId.inc();
      }
      this.o.metrics.clientErrorUdp.inc();
      return this.send(encodeUdpError(parsed.transactionId, parsed.message), rinfo);
    }
    const request = parsed.request;
    if (request.action === 'connect') {
      this.o.metrics.udpConnects.inc();
      return this.send(encodeUdpConnect(request.transactionId, this.o.connectionIds.issue(from.ip)), rinfo);
    }
    if (!this.o.connectionIds.isValid(request.connectionId, from.ip)) {
      return this.o.metrics.udpDroppedBadConnectionId.inc();
    }
    const tid = request.transactionId;
    if (request.action === 'announce') {
      // (one announce in 1/ratio is traced: drawn here, before anything of OpenTelemetry runs)
      if (rootSampled()) this.tracedAnnounce(tid, request.announce, from, rinfo);
      else this.announce(tid, request.announce, from, rinfo, undefined);
    } else {
      this.pending++;
      this.o.logic
        .scrape(request.infoHashes)
        .then(
          (entries) => {
            this.o.metrics.scrapeUdp.inc();
            this.send(encodeUdpScrape(tid, entries), rinfo);
          },
          (err: unknown) => this.serverError(tid, rinfo, err),
        )
        .finally(() => this.pending--);
    }
  };

  /** span: the announce's span when it is traced, else undefined */
  private announce(tid: number, announce: AnnounceRequest, from: PeerEndpoint, rinfo: RemoteInfo, span: Span | undefined): void {
    const started = this.o.metrics.latencyUdp.start();
    let reply: AnnounceReply | Promise<AnnounceReply>;
    try {
      reply = span === undefined ? this.o.logic.announce(announce, from) : inSpan(span, () => this.o.logic.announce(announce, from));
    } catch (err) {
      return this.serverError(tid, rinfo, err, span);
    }
    if (reply instanceof Promise) {
      // (counted down in both callbacks: a finally() would be one more promise per announce)
      this.pending++;
      reply.then(
        (r) => {
          this.pending--;
          this.answerAnnounce(tid, announce, r, rinfo, started, span);
        },
        (err: unknown) => {
          this.pending--;
          this.serverError(tid, rinfo, err, span);
        },
      );
    } else {
      this.answerAnnounce(tid, announce, reply, rinfo, started, span);
    }
  }

  private tracedAnnounce(tid: number, announce: AnnounceRequest, from: PeerEndpoint, rinfo: RemoteInfo): void {
    this.announce(tid, announce, from, rinfo, startUdpAnnounceSpan(announce.infoHash, announce.event));
  }

  private answerAnnounce(tid: number, request: AnnounceRequest, reply: AnnounceReply, rinfo: RemoteInfo, started: number, span: Span | undefined): void {
    let packet: Buffer;
    try {
      packet = encodeUdpAnnounce(tid, reply.interval, reply.incomplete, reply.complete, reply.peers);
    } catch (err) {
      return this.serverError(tid, rinfo, err, span);
    }
    (reply.family === 4 ? this.o.metrics.announceUdp4 : this.o.metrics.announceUdp6).inc();
    if (reply.refused !== undefined) this.o.metrics.refusal(reply.refused);
    this.o.events?.announced(request, reply.family, PROTOCOL_UDP, reply.complete, reply.incomplete, span?.spanContext());
    this.send(packet, rinfo);
    this.o.metrics.latencyUdp.end(started);
    span?.end();
  }

  private serverError(transactionId: number, rinfo: RemoteInfo, err: unknown, span?: Span): void {
    this.o.metrics.serverErrorUdp.inc();
    this.o.metrics.storeFailure(err);
    this.reportServerError({ err });
    this.send(encodeUdpError(transactionId, INTERNAL_ERROR), rinfo);
    if (span !== undefined) endWithError(span, err);
  }

  private send(reply: Buffer, rinfo: RemoteInfo): void {
    if (this.closed) return;
    // No callback: asynchronous send errors surface as the socket's error event (logged), and a
    // per-packet callback costs measurable CPU at this rate. What send throws synchronously (an
    // address or port it cannot send to) must not escape into the event loop: it would end the
    // process, for one datagram.
    try {
      this.socket.send(reply, rinfo.port, rinfo.address);
    } catch (err) {
      this.o.metrics.udpDroppedSendError.inc();
      this.reportSendError({ err, address: rinfo.address, port: rinfo.port });
    }
  }
}

