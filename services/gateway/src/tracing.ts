/*
 * The gateway's own spans (the instrumentations make the HTTP server, Redis and Kafka ones): a
 * span per traced UDP announce, a span per store call of a traced request, and a span per send of
 * announce events (events/kafka-producer.ts). With telemetry off the API's tracer is a no-op and
 * none of this runs: the frontends draw first (rootSampled) and the store is wrapped only when
 * traces are on.
 */
import type { ScrapeEntry } from '@peertracker/protocol';
import type { StoreAnnounce, StoreAnnounceResult, SwarmStore } from '@peertracker/tracker';
import { SAMPLING_PRIORITY, SpanKind, SpanStatusCode, context, recordingSpan, trace, type Span } from '@peertracker/telemetry';

export const tracer = trace.getTracer('@peertracker/gateway');

/** Ends a span with an error status (the error recorded as an exception event). */
export function endWithError(span: Span, err: unknown): void {
  span.recordException(err instanceof Error ? err : String(err));
  span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
  span.end();
}

/**
 * Runs work in span's context and ends the span when work's value (or promise) is settled, after
 * describe(value) has added to it.
 */
function within<T>(span: Span, work: () => T | Promise<T>, describe?: (value: T) => void): T | Promise<T> {
  let out: T | Promise<T>;
  try {
    out = context.with(trace.setSpan(context.active(), span), work);
  } catch (err) {
    endWithError(span, err);
    throw err;
  }
  if (!(out instanceof Promise)) {
    describe?.(out);
    span.end();
    return out;
  }
  return out.then(
    (value) => {
      describe?.(value);
      span.end();
      return value;
    },
    (err: unknown) => {
      endWithError(span, err);
      throw err;
    },
  );
}

/**
 * The store with a span around each announce and scrape made within a traced request (its span
 * recording): `store.announce` / `store.scrape`, with `db.system` the store (memory or redis).
 * Calls of requests not traced pass straight through (one look at the active context).
 */
export function tracedStore(store: SwarmStore, system: 'memory' | 'redis'): SwarmStore {
  const traced = () => recordingSpan() !== undefined;
  return {
    announce(req: StoreAnnounce): StoreAnnounceResult | Promise<StoreAnnounceResult> {
      if (!traced()) return store.announce(req);
      const span = tracer.startSpan('store.announce', {
        kind: SpanKind.INTERNAL,
        attributes: {
          'db.system': system,
          'db.operation.name': 'announce',
          'peertracker.info_hash': req.infoHash.toString('hex'),
          'peertracker.event': req.event,
          'peertracker.numwant': req.numWant,
        },
      });
      return within(
        span,
        () => store.announce(req),
        (r) => {
          span.setAttribute('peertracker.complete', r.complete);
          span.setAttribute('peertracker.incomplete', r.incomplete);
          span.setAttribute('peertracker.peers_returned', r.peers.length / (req.family === 4 ? 6 : 18));
          if (r.refused !== undefined) span.setAttribute('peertracker.refused', r.refused);
        },
      );
    },
    scrape(infoHashes: Buffer[], now: number): Promise<ScrapeEntry[]> {
      if (!traced()) return store.scrape(infoHashes, now);
      const span = tracer.startSpan('store.scrape', {
        kind: SpanKind.INTERNAL,
        attributes: { 'db.system': system, 'db.operation.name': 'scrape', 'peertracker.info_hashes': infoHashes.length },
      });
      return within(span, () => store.scrape(infoHashes, now)) as Promise<ScrapeEntry[]>;
    },
    scrapeAll: (now: number) => store.scrapeAll(now),
    stats: () => store.stats(),
    close: () => store.close(),
  };
}

/** The span of a UDP announce drawn for tracing (udp-frontend.ts), kept by the sampler (SAMPLING_PRIORITY). */
export function startUdpAnnounceSpan(infoHash: Buffer, event: string): Span {
  return tracer.startSpan('udp announce', {
    kind: SpanKind.SERVER,
    attributes: {
      [SAMPLING_PRIORITY]: 1,
      'network.transport': 'udp',
      'rpc.system': 'bittorrent-udp',
      'peertracker.info_hash': infoHash.toString('hex'),
      'peertracker.event': event,
    },
  });
}

/** Runs work (the announce's store call) with span as the active span. */
export function inSpan<T>(span: Span, work: () => T): T {
  return context.with(trace.setSpan(context.active(), span), work);
}
