import type { AnnounceRequest } from '@peertracker/protocol';
import type { SpanContext } from '@peertracker/telemetry';

/** Where the frontends report each answered announce (the event publisher, with KAFKA_BROKERS). */
export interface EventSink {
  /**
   * protocol: PROTOCOL_CODES of @peertracker/events; seeders, leechers: the reply's counts;
   * traced: the announce's span, when it is traced (the send of its event links to it)
   */
  announced(req: AnnounceRequest, family: 4 | 6, protocol: number, seeders: number, leechers: number, traced?: SpanContext): void;
}
