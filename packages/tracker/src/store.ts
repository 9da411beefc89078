import type { AnnounceEvent, ScrapeEntry } from '@peertracker/protocol';

/** Address family of a peer. IPv4 and IPv6 peers live in separate pools of one swarm. */
export type Family = 4 | 6;

/** One announce, after the logic has decided everything that does not need the swarm. */
export interface StoreAnnounce {
  infoHash: Buffer;
  peerId: Buffer;
  family: Family;
  /** compact address: 4-byte IPv4 + 2-byte port (6 bytes) or 16-byte IPv6 + port (18 bytes) */
  addr: Buffer;
  /** left === 0 */
  seeder: boolean;
  event: AnnounceEvent;
  /** how many peers to return (already clamped by the logic; may be 0) */
  numWant: number;
  /** also return the selected peers' ids (for non-compact dictionary responses) */
  withPeerIds: boolean;
  /** current time in milliseconds (injected so stores and tests share a clock) */
  now: number;
  /** a peer not re-announced for this many milliseconds is gone */
  peerLifetimeMs: number;
}

export interface StoreAnnounceResult {
  /** seeders in the announcer's family pool, after this announce */
  complete: number;
  /** leechers in the announcer's family pool, after this announce */
  incomplete: number;
  /** times completed, all families */
  downloaded: number;
  /**
   * Selected peers, compact form concatenated (6 or 18 bytes each, the announcer's family).
   * Never the announcer itself; a seeder gets only leechers. Empty for event=stopped.
   */
  peers: Buffer;
  /** 20 bytes per selected peer, same order as `peers`; present only when withPeerIds */
  peerIds?: Buffer;
}

/**
 * The swarm-store contract. The in-memory store (embedded default) and the Redis store implement
 * it and pass one conformance suite (`runStoreConformance`).
 *
 * Rules every store keeps:
 * - a peer is keyed by (info_hash, family, peer_id); re-announcing updates it in place;
 * - event=stopped removes the peer;
 * - the completed count rises once when a known leecher (or new peer) announces event=completed
 *   with left=0, and never again for the same peer while it stays in the swarm; it outlives peers;
 * - a peer whose last announce is older than peerLifetimeMs is never returned nor counted;
 * - scrape counts both families together.
 */
export interface SwarmStore {
  /**
   * A store that can answer at once (memory) returns the result itself: answering in the same tick
   * instead of a microtask later measured 10–15% more HTTP announces/s (README, performance).
   * Remote stores return a promise. Callers handle both.
   */
  announce(req: StoreAnnounce): StoreAnnounceResult | Promise<StoreAnnounceResult>;
  /** One entry per requested hash, same order; unknown swarms give zeros. */
  scrape(infoHashes: Buffer[], now: number): Promise<ScrapeEntry[]>;
  /** Every swarm with at least one live peer or a completed count (full scrape). */
  scrapeAll(now: number): Promise<ScrapeEntry[]>;
  /** Number of live peers and swarms, for metrics (may be approximate for remote stores). */
  stats(): Promise<{ peers: number; swarms: number }>;
  close(): Promise<void>;
}
