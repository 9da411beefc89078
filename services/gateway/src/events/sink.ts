import type { AnnounceRequest } from '@peertracker/protocol';

/** Where the frontends report each answered announce (the event publisher, with KAFKA_BROKERS). */
export interface EventSink {
  /** protocol: PROTOCOL_CODES of @peertracker/events */
  announced(req: AnnounceRequest, family: 4 | 6, protocol: number): void;
}
