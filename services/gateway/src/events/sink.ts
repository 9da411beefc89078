import type { AnnounceRequest } from '@peertracker/protocol';

/** Where the frontends report each answered announce (the event publisher, with KAFKA_BROKERS). */
export interface EventSink {
  /** protocol: PROTOCOL_CODES of @peertracker/events; seeders, leechers: the reply's counts */
  announced(req: AnnounceRequest, family: 4 | 6, protocol: number, seeders: number, leechers: number): void;
}
