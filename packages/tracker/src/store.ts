import type { AnnounceEvent, ScrapeEntry } from '@peertracker/protocol';

/** Address family of a peer. IPv4 and IPv6 peers live in separate pools of one swarm. */
export type Family = 4 | 6;

/**
 * Default limits the tracker logic passes to the store (TRACKER_MAX_PEERS_PER_SWARM,
 * TRACKER_MAX_PEERS_PER_ADDRESS). The largest public swarms hold a few 10^5 peers; 64 peers of one
 * address in one swarm leaves room for a carrier-grade NAT while one host cannot grow a swarm.
 */
export const DEFAULT_MAX_PEERS_PER_SWARM = 1_000_000;
export const DEFAULT_MAX_PEERS_PER_ADDRESS = 64;

/**
 * How long a swarm without live peers is remembered after its last announce, by default: its
 * completed count (`downloaded`) outlives its peers for this long, then the swarm is forgotten.
 */
export const DEFAULT_SWARM_RETENTION_MS = 24 * 3600 * 1000;

/** One announce, after the logic has decided everything that does not need the swarm. */
export interface StoreAnnounce {
  infoHash: Buffer;
  peerId: Buffer;
  family: Family;
  /** compact address: 4-byte IPv4 + 2-byte port (6 bytes) or 16-byte IPv6 + port (18 bytes) */
  addr: Buffer;
  /**
   * BEP 3 `key` as the client sent it (HTTP `key`; UDP key as a decimal string), undefined when
   * absent; '' counts as absent. It lets a peer prove its identity when its IP changes (see the
   * rules on SwarmStore). Stores may keep only a fingerprint of it.
   */
  key: string | undefined;
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
  /**
   * Most peers (both families together) the swarm may hold; undefined: no limit. A peer id new to
   * the swarm that would go beyond it is answered (counts and peers, as any announce) but not
   * stored, and the result says `refused: 'swarm-full'`. Known peers are never refused.
   */
  maxPeersPerSwarm?: number;
  /**
   * Most peers one address may hold in the swarm, an address being an IPv4 address or an IPv6 /64
   * (one host holds a whole /64); undefined: no limit. A peer id new to the swarm from an address
   * that already holds this many live peers there is answered but not stored (`refused:
   * 'address-full'`). Known peers are never refused, also when they move to a full address.
   */
  maxPeersPerAddress?: number;
}

/** Why an announce of a new peer was answered but not stored (see StoreAnnounce's limits). */
export type RefusalReason = 'swarm-full' | 'address-full' | 'store-full';

export interface StoreAnnounceResult {
  /** live seeders of the swarm, both families, after this announce */
  complete: number;
  /** live leechers of the swarm, both families, after this announce */
  incomplete: number;
  /** times completed, all families */
  downloaded: number;
  /**
   * Selected peers, compact form concatenated (6 or 18 bytes each, the announcer's family only).
   * Never the announcer itself (no entry with its peer id); a seeder gets only leechers. Empty for
   * event=stopped.
   */
  peers: Buffer;
  /**
   * 20 bytes per selected peer, same order as `peers`; present exactly when withPeerIds (an empty
   * buffer when no peer is selected, event=stopped included).
   */
  peerIds?: Buffer;
  /**
   * Set when the announcer was a new peer that a limit kept out of the swarm: the reply is still a
   * normal one (counts without the announcer, peers), so a client is never left without peers;
   * 'store-full' is a store-wide limit (the memory store's), the others are StoreAnnounce's.
   */
  refused?: RefusalReason;
}

/**
 * The swarm-store contract. The in-memory store (embedded default) and the Redis store implement
 * it and pass one conformance suite (`runStoreConformance`).
 *
 * Rules every store keeps:
 * - a peer is keyed by (info_hash, family, peer_id); re-announcing updates it in place;
 * - an entry is changed or removed only by an announce from the IP it was stored with (any port),
 *   or by one carrying the same non-empty `key` the entry was stored with (BEP 3: the key lets a
 *   client prove its identity should its IP change). Any other announce for that entry (another
 *   IP, no key or another key) leaves the entry exactly as it is — address, key, seeder state,
 *   expiry — is not stored, and still gets an answer: the swarm's counts and peers, never the entry
 *   itself. An accepted announce stores the address and the key it carries (none included);
 * - event=stopped removes the peer (subject to the rule above);
 * - the completed count rises once when a known leecher (or new peer) announces event=completed
 *   with left=0, and never again for the same peer while it stays in the swarm (also if it goes
 *   back to leeching and completes again); a seeder announcing event=completed is not counted;
 * - a peer whose last announce is older than peerLifetimeMs is never returned nor counted; one
 *   exception, to keep every call's cost bounded: a Redis pool of more than 128 peers drops its
 *   expired peers a bounded step per call, so its counts (and the limits below) may include
 *   peers expired since the step last passed them (redis-store scripts.ts says for how long);
 *   they are still never returned;
 * - announce counts (complete/incomplete) and scrape count both families together; announce
 *   returns peers of the announcer's family only;
 * - the completed count outlives the peers for the retention period: a swarm without live peers
 *   is forgotten, completed count included, once swarmRetentionMs (a store option, default
 *   DEFAULT_SWARM_RETENTION_MS) has passed since its last announce (any event, stopped included):
 *   from then on scrape gives zeros, scrapeAll omits it, and a new announce starts from
 *   downloaded=0. Stores judge this against the `now` they are given (memory: lazily and on sweeps;
 *   Redis: also a key TTL so the memory goes). Scrapes do not extend the retention.
 */
export interface SwarmStore {
  /**
   * A store that can answer at once (memory) returns the result itself: answering in the same tick
   * instead of a microtask later measured 10–15% more HTTP announces/s (README, performance).
   * Remote stores return a promise. Callers handle both.
   */
  announce(req: StoreAnnounce): StoreAnnounceResult | Promise<StoreAnnounceResult>;
  /** One entry per requested hash, same order; unknown or forgotten swarms give zeros. */
  scrape(infoHashes: Buffer[], now: number): Promise<ScrapeEntry[]>;
  /**
   * Every swarm with at least one live peer or a retained completed count (full scrape), each
   * exactly once.
   */
  scrapeAll(now: number): Promise<ScrapeEntry[]>;
  /**
   * Number of peers and swarms holding peers, for metrics. Cheap (no walk over the swarms: it is
   * called on every metrics scrape); may be approximate (the memory store counts expired peers
   * until they are swept or touched; remote stores may estimate).
   */
  stats(): Promise<{ peers: number; swarms: number }>;
  close(): Promise<void>;
}
