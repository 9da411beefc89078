// BEP 15 (UDP tracker protocol) packets, with BEP 41 announce options. All integers big-endian.
import { DEFAULT_LIMITS, type AnnounceEvent, type AnnounceRequest, type ProtocolLimits, type ScrapeEntry } from './types';

/** The magic constant a connect request starts with (0x41727101980). */
export const UDP_PROTOCOL_ID = 0x41727101980;
const PROTOCOL_ID_HI = 0x417;
const PROTOCOL_ID_LO = 0x27101980;

export const UDP_ACTION_CONNECT = 0;
export const UDP_ACTION_ANNOUNCE = 1;
export const UDP_ACTION_SCRAPE = 2;
export const UDP_ACTION_ERROR = 3;

/** Announce request size without BEP 41 options. */
export const UDP_ANNOUNCE_MIN_LENGTH = 98;

/** BEP 15 event codes, by index. */
const EVENTS: readonly AnnounceEvent[] = ['none', 'completed', 'started', 'stopped'];

/** An announce over UDP; `urlData` is the BEP 41 URL data (path and query), if the client sent any. */
export interface UdpAnnounceRequest extends AnnounceRequest {
  urlData?: string;
}

export type UdpRequest =
  | { action: 'connect'; transactionId: number }
  | { action: 'announce'; connectionId: Buffer; transactionId: number; announce: UdpAnnounceRequest }
  | { action: 'scrape'; connectionId: Buffer; transactionId: number; infoHashes: Buffer[] };

export type UdpParseResult =
  | { ok: true; request: UdpRequest }
  /** not answerable: send nothing */
  | { ok: false; drop: true }
  /** answer with a BEP 15 error (encodeUdpError), but ONLY if the gateway finds connectionId valid */
  | { ok: false; drop: false; connectionId: Buffer; transactionId: number; message: string };

const DROP: UdpParseResult = Object.freeze({ ok: false, drop: true }) as UdpParseResult;

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

function u64(msg: Buffer, off: number): number {
  const hi = msg.readUInt32BE(off);
  // 0x1fffff·2³² + 0xffffffff is MAX_SAFE_INTEGER; above that, clamp (clients send left = -1).
  if (hi > 0x1fffff) return MAX_SAFE;
  return hi * 0x100000000 + msg.readUInt32BE(off + 4);
}

/**
 * Classifies and parses one datagram. Never throws:
 * - shorter than 16 bytes, or a connect without the protocol id → `{ drop: true }`;
 * - a malformed announce/scrape or an unknown action → an answerable error, to be sent only
 *   after the gateway has checked `connectionId` (otherwise it would answer spoofed sources);
 * - otherwise the request. `connectionId` is a view into `msg`; info hashes and peer id are copies.
 * Announce: port 0 and unknown event codes are errors; negative num_want means "default"
 * (undefined); u64 counters above MAX_SAFE_INTEGER are clamped; key becomes its decimal text, and
 * key 0 (what clients without a key send) becomes undefined;
 * the IP field is ignored. Bytes after the 98-byte announce are BEP 41 options: URL data is
 * collected into `urlData`, anything malformed there is ignored.
 * Scrape: 16 + 20·n bytes, a trailing partial hash ignored; n must be 1..maxScrapeHashes.
 */
export function parseUdpRequest(msg: Buffer, limits: ProtocolLimits = DEFAULT_LIMITS): UdpParseResult {
  if (msg.length < 16) return DROP;
  const action = msg.readUInt32BE(8);
  const transactionId = msg.readUInt32BE(12);
  if (action === UDP_ACTION_CONNECT) {
    if (msg.readUInt32BE(0) !== PROTOCOL_ID_HI || msg.readUInt32BE(4) !== PROTOCOL_ID_LO) return DROP;
    return { ok: true, request: { action: 'connect', transactionId } };
  }
  const connectionId = msg.subarray(0, 8);
  const error = (message: string): UdpParseResult => ({ ok: false, drop: false, connectionId, transactionId, message });

  if (action === UDP_ACTION_ANNOUNCE) {
    if (msg.length < UDP_ANNOUNCE_MIN_LENGTH) return error('invalid announce: packet too short');
    const eventCode = msg.readUInt32BE(80);
    if (eventCode >= EVENTS.length) return error('invalid event');
    const port = msg.readUInt16BE(96);
    if (port === 0) return error('invalid port');
    const numWant = msg.readInt32BE(92);
    // BEP 15 has no "absent": clients without a key send 0, which must not act as one
    const key = msg.readUInt32BE(88);
    const ids = Buffer.from(msg.subarray(16, 56)); // info_hash and peer_id in one copy
    const announce: UdpAnnounceRequest = {
      infoHash: ids.subarray(0, 20),
      peerId: ids.subarray(20, 40),
      port,
      uploaded: u64(msg, 72),
      downloaded: u64(msg, 56),
      left: u64(msg, 64),
      event: EVENTS[eventCode],
      compact: true,
      noPeerId: true,
      numwant: numWant < 0 ? undefined : numWant,
      key: key === 0 ? undefined : String(key),
      trackerId: undefined,
    };
    if (msg.length > UDP_ANNOUNCE_MIN_LENGTH) {
      const urlData = parseUrlData(msg, UDP_ANNOUNCE_MIN_LENGTH);
      if (urlData !== undefined) announce.urlData = urlData;
    }
    return { ok: true, request: { action: 'announce', connectionId, transactionId, announce } };
  }

  if (action === UDP_ACTION_SCRAPE) {
    const n = Math.floor((msg.length - 16) / 20);
    if (n === 0) return error('invalid scrape: no info_hash');
    if (n > limits.maxScrapeHashes) return error(`too many info_hash values (max ${limits.maxScrapeHashes})`);
    const all = Buffer.from(msg.subarray(16, 16 + 20 * n));
    const infoHashes: Buffer[] = [];
    for (let i = 0; i < n; i++) infoHashes.push(all.subarray(20 * i, 20 * i + 20));
    return { ok: true, request: { action: 'scrape', connectionId, transactionId, infoHashes } };
  }

  return error('unknown action');
}

/**
 * BEP 41 options from `off`: 0 = end, 1 = no-op, 2 = URL data (length byte, then bytes; several
 * are concatenated). Returns the URL data as latin1 (one char per byte, like an HTTP query), or
 * undefined if there was none. A truncated option ends the parse with what was collected.
 */
function parseUrlData(msg: Buffer, off: number): string | undefined {
  let url: string | undefined;
  while (off < msg.length) {
    const type = msg[off++];
    if (type === 0) break;
    if (type === 1) continue;
    if (off >= msg.length) break;
    const len = msg[off++];
    if (off + len > msg.length) break;
    if (type === 2) url = (url ?? '') + msg.toString('latin1', off, off + len);
    off += len;
  }
  return url;
}

/** Clamps a counter to u32: negative and NaN → 0, above 2³²−1 → 2³²−1, fractions truncated. */
function u32(n: number): number {
  if (!(n > 0)) return 0;
  return n >= 0xffffffff ? 0xffffffff : Math.trunc(n);
}

function header(size: number, action: number, transactionId: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  out.writeUInt32BE(action, 0);
  out.writeUInt32BE(transactionId >>> 0, 4);
  return out;
}

/** Connect response: action 0, transaction id, 8-byte connection id (16 bytes). */
export function encodeUdpConnect(transactionId: number, connectionId: Uint8Array): Buffer {
  const out = header(16, UDP_ACTION_CONNECT, transactionId);
  out.fill(0, 8, 16);
  out.set(connectionId.subarray(0, 8), 8);
  return out;
}

/**
 * Announce response: action 1, transaction id, interval, leechers, seeders, then compact peers
 * (6 bytes each for IPv4; an IPv6 reply has the same layout with 18-byte peers).
 */
export function encodeUdpAnnounce(
  transactionId: number,
  interval: number,
  leechers: number,
  seeders: number,
  peers: Uint8Array,
): Buffer {
  const out = header(20 + peers.length, UDP_ACTION_ANNOUNCE, transactionId);
  out.writeUInt32BE(u32(interval), 8);
  out.writeUInt32BE(u32(leechers), 12);
  out.writeUInt32BE(u32(seeders), 16);
  out.set(peers, 20);
  return out;
}

/** Scrape response: action 2, transaction id, then seeders, completed, leechers per hash, in request order. */
export function encodeUdpScrape(transactionId: number, entries: readonly ScrapeEntry[]): Buffer {
  const out = header(8 + 12 * entries.length, UDP_ACTION_SCRAPE, transactionId);
  let off = 8;
  for (const e of entries) {
    out.writeUInt32BE(u32(e.complete), off);
    out.writeUInt32BE(u32(e.downloaded), off + 4);
    out.writeUInt32BE(u32(e.incomplete), off + 8);
    off += 12;
  }
  return out;
}

/** Error response: action 3, transaction id, then the message as UTF-8. */
export function encodeUdpError(transactionId: number, message: string): Buffer {
  const len = Buffer.byteLength(message);
  const out = header(8 + len, UDP_ACTION_ERROR, transactionId);
  out.write(message, 8, 'utf8');
  return out;
}

// Client-side encoders: for tests, the benchmark's load generator and tools.

/** Connect request (16 bytes). */
export function encodeUdpConnectRequest(transactionId: number): Buffer {
  const out = Buffer.allocUnsafe(16);
  out.writeUInt32BE(PROTOCOL_ID_HI, 0);
  out.writeUInt32BE(PROTOCOL_ID_LO, 4);
  out.writeUInt32BE(UDP_ACTION_CONNECT, 8);
  out.writeUInt32BE(transactionId >>> 0, 12);
  return out;
}

function writeU64(out: Buffer, n: number, off: number): void {
  const v = n > 0 ? Math.min(Math.trunc(n), MAX_SAFE) : 0;
  out.writeUInt32BE(Math.floor(v / 0x100000000), off);
  out.writeUInt32BE(v % 0x100000000, off + 4);
}

/**
 * Announce request (98 bytes, plus BEP 41 URL-data options when `urlData` is given, split into
 * 255-byte chunks). `key` must be decimal text of a u32 (else 0, "no key"); numwant undefined → -1.
 */
export function encodeUdpAnnounceRequest(
  connectionId: Uint8Array,
  transactionId: number,
  a: Pick<AnnounceRequest, 'infoHash' | 'peerId' | 'port' | 'uploaded' | 'downloaded' | 'left' | 'event' | 'numwant' | 'key'> & {
    urlData?: string;
  },
): Buffer {
  const url = a.urlData === undefined ? undefined : Buffer.from(a.urlData, 'latin1');
  const optLen = url === undefined ? 0 : Math.ceil(url.length / 255) * 2 + url.length + 1;
  const out = Buffer.alloc(UDP_ANNOUNCE_MIN_LENGTH + optLen);
  out.set(connectionId.subarray(0, 8), 0);
  out.writeUInt32BE(UDP_ACTION_ANNOUNCE, 8);
  out.writeUInt32BE(transactionId >>> 0, 12);
  out.set(a.infoHash.subarray(0, 20), 16);
  out.set(a.peerId.subarray(0, 20), 36);
  writeU64(out, a.downloaded, 56);
  writeU64(out, a.left, 64);
  writeU64(out, a.uploaded, 72);
  out.writeUInt32BE(Math.max(0, a.event === 'paused' ? 0 : EVENTS.indexOf(a.event)), 80);
  const key = a.key !== undefined && /^\d{1,10}$/.test(a.key) ? Number(a.key) : 0;
  out.writeUInt32BE(key <= 0xffffffff ? key : 0, 88);
  out.writeInt32BE(a.numwant === undefined ? -1 : Math.min(a.numwant, 0x7fffffff), 92);
  out.writeUInt16BE(a.port & 0xffff, 96);
  if (url !== undefined) {
    let off = UDP_ANNOUNCE_MIN_LENGTH;
    for (let i = 0; i < url.length; i += 255) {
      const chunk = url.subarray(i, i + 255);
      out[off++] = 2;
      out[off++] = chunk.length;
      out.set(chunk, off);
      off += chunk.length;
    }
    out[off] = 0; // end of options
  }
  return out;
}

/** Scrape request: 16-byte header then the 20-byte info hashes. */
export function encodeUdpScrapeRequest(connectionId: Uint8Array, transactionId: number, infoHashes: readonly Uint8Array[]): Buffer {
  const out = Buffer.alloc(16 + 20 * infoHashes.length);
  out.set(connectionId.subarray(0, 8), 0);
  out.writeUInt32BE(UDP_ACTION_SCRAPE, 8);
  out.writeUInt32BE(transactionId >>> 0, 12);
  infoHashes.forEach((h, i) => out.set(h.subarray(0, 20), 16 + 20 * i));
  return out;
}
