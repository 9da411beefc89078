import type { AnnounceRequest, ScrapeEntry } from '@peertracker/protocol';
import {
  DEFAULT_MAX_PEERS_PER_ADDRESS,
  DEFAULT_MAX_PEERS_PER_SWARM,
  type Family,
  type RefusalReason,
  type StoreAnnounceResult,
  type SwarmStore,
} from './store';

export interface TrackerOptions {
  /** seconds a client should wait between announces, e.g. 1800 */
  announceIntervalSec: number;
  /** seconds a client must wait at least, e.g. 60 */
  minIntervalSec: number;
  /** random 0..jitter seconds added to the interval so clients spread out */
  intervalJitterSec: number;
  /** peers not re-announced for this long are gone; must exceed interval + jitter */
  peerLifetimeSec: number;
  /** peers returned when the client does not say, e.g. 50 */
  defaultNumwant: number;
  /** most peers returned, whatever the client asks */
  maxNumwant: number;
  /** most peers one swarm holds (see StoreAnnounce); default DEFAULT_MAX_PEERS_PER_SWARM; 0: no limit */
  maxPeersPerSwarm?: number;
  /** most peers one address (IPv6: /64) holds in one swarm; default DEFAULT_MAX_PEERS_PER_ADDRESS; 0: no limit */
  maxPeersPerAddress?: number;
  /** ms clock, default Date.now */
  now?: () => number;
  /** uniform in [0, 1), default Math.random */
  random?: () => number;
}

/** Where an announce came from: the address the transport saw. */
export interface PeerEndpoint {
  family: Family;
  /** 4 or 16 raw bytes */
  ip: Buffer;
}

export interface AnnounceReply {
  interval: number;
  minInterval: number;
  complete: number;
  incomplete: number;
  downloaded: number;
  /** family of `peers` (an IPv4-mapped IPv6 endpoint is served as IPv4) */
  family: Family;
  /** compact, 6 or 18 bytes each */
  peers: Buffer;
  /** 20 bytes per peer, same order as `peers`; only for non-compact replies that want ids */
  peerIds?: Buffer;
  /** the announcer was a new peer kept out of the swarm by a limit (answered all the same) */
  refused?: RefusalReason;
}

/** Upper bound on peerLifetimeSec: a week is far beyond any sane announce interval. */
const MAX_PEER_LIFETIME_SEC = 7 * 24 * 3600;
const V4_MAPPED_PREFIX = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);

/**
 * Decides everything about an announce or scrape that is not parsing or writing: which peer
 * this is, how many peers it gets, the intervals. Frontends parse, call this, and encode.
 */
export class TrackerLogic {
  private readonly store: SwarmStore;
  private readonly options: Readonly<TrackerOptions>;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly peerLifetimeMs: number;
  private readonly maxPeersPerSwarm: number | undefined;
  private readonly maxPeersPerAddress: number | undefined;

  constructor(store: SwarmStore, options: TrackerOptions) {
    validateOptions(options);
    this.store = store;
    this.options = { ...options };
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    this.peerLifetimeMs = options.peerLifetimeSec * 1000;
    const limit = (v: number | undefined, fallback: number) => ((v ?? fallback) === 0 ? undefined : (v ?? fallback));
    this.maxPeersPerSwarm = limit(options.maxPeersPerSwarm, DEFAULT_MAX_PEERS_PER_SWARM);
    this.maxPeersPerAddress = limit(options.maxPeersPerAddress, DEFAULT_MAX_PEERS_PER_ADDRESS);
  }

  /**
   * Synchronous when the store is (memory), a promise when it is remote. Invalid endpoints throw
   * synchronously either way.
   */
  announce(req: AnnounceRequest, from: PeerEndpoint): AnnounceReply | Promise<AnnounceReply> {
    let family = from.family;
    let ip = from.ip;
    const ipLength = family === 4 ? 4 : 16;
    if (ip.length !== ipLength) {
      throw new TypeError(`PeerEndpoint: an IPv${family} address has ${ipLength} bytes, got ${ip.length}`);
    }
    if (family === 6 && ip.compare(V4_MAPPED_PREFIX, 0, 12, 0, 12) === 0) {
      // a dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d; they belong with IPv4 peers
      family = 4;
      ip = ip.subarray(12);
    }
    const addr = Buffer.allocUnsafe(ip.length + 2);
    ip.copy(addr, 0);
    addr.writeUInt16BE(req.port, ip.length);

    const o = this.options;
    const stopped = req.event === 'stopped';
    const numWant = stopped ? 0 : Math.min(req.numwant ?? o.defaultNumwant, o.maxNumwant);
    const withPeerIds = !req.compact && !req.noPeerId;
    const result = this.store.announce({
      infoHash: req.infoHash,
      peerId: req.peerId,
      family,
      addr,
      key: req.key,
      seeder: req.left === 0,
      event: req.event,
      numWant,
      withPeerIds,
      now: this.now(),
      peerLifetimeMs: this.peerLifetimeMs,
      maxPeersPerSwarm: this.maxPeersPerSwarm,
      maxPeersPerAddress: this.maxPeersPerAddress,
    });
    return result instanceof Promise
      ? result.then((r) => this.reply(r, family, withPeerIds))
      : this.reply(result, family, withPeerIds);
  }

  private reply(result: StoreAnnounceResult, family: Family, withPeerIds: boolean): AnnounceReply {
    const o = this.options;
    const reply: AnnounceReply = {
      interval: o.announceIntervalSec + this.jitter(),
      minInterval: o.minIntervalSec,
      complete: result.complete,
      incomplete: result.incomplete,
      downloaded: result.downloaded,
      family,
      peers: result.peers,
    };
    if (withPeerIds) reply.peerIds = result.peerIds ?? Buffer.alloc(0);
    if (result.refused !== undefined) reply.refused = result.refused;
    return reply;
  }

  scrape(infoHashes: Buffer[]): Promise<ScrapeEntry[]> {
    return this.store.scrape(infoHashes, this.now());
  }

  scrapeAll(): Promise<ScrapeEntry[]> {
    return this.store.scrapeAll(this.now());
  }

  /** Whole seconds in [0, intervalJitterSec]. */
  private jitter(): number {
    const j = this.options.intervalJitterSec;
    return Math.min(Math.floor(this.random() * (j + 1)), j);
  }
}

function validateOptions(o: TrackerOptions): void {
  const integer = (name: keyof TrackerOptions, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    const v = o[name];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      throw new Error(`TrackerOptions.${name} must be an integer in [${min}, ${max}], got ${String(v)}`);
    }
    return v;
  };
  const interval = integer('announceIntervalSec', 1);
  integer('minIntervalSec', 0, interval);
  const jitter = integer('intervalJitterSec', 0);
  // a client announcing as late as interval + jitter must still be in the swarm
  integer('peerLifetimeSec', interval + jitter + 1, MAX_PEER_LIFETIME_SEC);
  const max = integer('maxNumwant', 0);
  integer('defaultNumwant', 0, max);
  if (o.maxPeersPerSwarm !== undefined) integer('maxPeersPerSwarm', 0);
  if (o.maxPeersPerAddress !== undefined) integer('maxPeersPerAddress', 0);
  for (const name of ['now', 'random'] as const) {
    if (o[name] !== undefined && typeof o[name] !== 'function') {
      throw new Error(`TrackerOptions.${name} must be a function`);
    }
  }
}
