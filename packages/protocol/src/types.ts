/** Announce `event`. `paused` is BEP 21's partial seed, sent by clients as event=paused. */
export type AnnounceEvent = 'none' | 'started' | 'stopped' | 'completed' | 'paused';

/** An announce as the tracker logic sees it, whichever transport it came over. */
export interface AnnounceRequest {
  /** exactly 20 raw bytes */
  infoHash: Buffer;
  /** exactly 20 raw bytes */
  peerId: Buffer;
  /** 1..65535 (0 is rejected by the parsers) */
  port: number;
  uploaded: number;
  downloaded: number;
  left: number;
  event: AnnounceEvent;
  /** HTTP `compact=1`, always true over UDP */
  compact: boolean;
  /** HTTP `no_peer_id=1` */
  noPeerId: boolean;
  /** undefined when the client did not say (the logic applies its default); never negative */
  numwant: number | undefined;
  /** HTTP `key` / UDP key (as decimal string): lets a peer prove it is the same peer from a new IP (BEP 3) */
  key: string | undefined;
  /** HTTP `trackerid` */
  trackerId: string | undefined;
}

export interface ScrapeEntry {
  infoHash: Buffer;
  /** seeders */
  complete: number;
  /** times completed */
  downloaded: number;
  /** leechers */
  incomplete: number;
}

/** Limits on what a client controls; the parsers enforce them. */
export interface ProtocolLimits {
  /** most info hashes in one scrape (HTTP and UDP) */
  maxScrapeHashes: number;
}

export const DEFAULT_LIMITS: ProtocolLimits = { maxScrapeHashes: 74 };
