/*
 * Announce events as Kafka records: one record carries many events (a gateway sends one record per
 * partition per flush), so the Kafka client's cost per message is paid once per batch. Version 1,
 * all numbers big-endian:
 *
 *   record:  magic 'PT' (2) | version (1) | gateway id length L (1) | gateway id (L, ASCII) |
 *            base time (f64, ms since the Unix epoch) | event count N (u32) | N events
 *   event (EVENT_BYTES = 75):
 *     0  time after the base time (u32, ms)
 *     4  info hash (20)
 *    24  peer key (8): a 64-bit fingerprint of the peer id (the gateway's choice of hash, the same
 *        on every gateway), for counting unique peers; never the id itself
 *    32  left, uploaded, downloaded (f64 each: byte counts, exact up to 2^53)
 *    56  event (u8, EVENT_CODES)
 *    57  flags (u8): bits 0-1 protocol (PROTOCOL_CODES), bit 2 IPv6; the other bits 0
 *    58  client: style (bits 0-3, STYLE_CODES) and how many version numbers (bits 4-6) (u8) |
 *        code (4, ASCII, NUL-padded) | version (4 × u8, unused ones 0)
 *    67  seeders, leechers (u32 each): the swarm's counts in the reply to this announce
 *
 * No client IP is ever written (DESIGN.md, invariant 9). A reader rejects a record that is not
 * exactly this (EventDecodeError, with a reason to count); a new version gets a new number.
 */
import { STYLE_CODES, STYLES, type ClientSoftware } from './client';

export const EVENTS_VERSION = 1;
export const EVENT_BYTES = 75;
/** Most events in one record (≈ 4.9 MB; Kafka takes 1 MB a record by default: a writer is made for far fewer). */
export const MAX_EVENTS_PER_RECORD = 65_536;
export const MAX_GATEWAY_ID = 64;
const MAGIC = 0x5054; // 'PT'

export type AnnounceEventName = 'none' | 'started' | 'stopped' | 'completed' | 'paused';
export type Protocol = 'http' | 'udp' | 'ws';
export const EVENT_NAMES: readonly AnnounceEventName[] = ['none', 'started', 'stopped', 'completed', 'paused'];
export const PROTOCOLS: readonly Protocol[] = ['http', 'udp', 'ws'];
export const EVENT_CODES: Record<AnnounceEventName, number> = { none: 0, started: 1, stopped: 2, completed: 3, paused: 4 };
export const PROTOCOL_CODES: Record<Protocol, number> = { http: 0, udp: 1, ws: 2 };

export interface AnnounceEvent {
  /** ms since the Unix epoch (whole ms) */
  time: number;
  infoHash: Buffer;
  /** 8 bytes */
  peerKey: Buffer;
  event: AnnounceEventName;
  left: number;
  uploaded: number;
  downloaded: number;
  protocol: Protocol;
  family: 4 | 6;
  client: ClientSoftware;
  /** the swarm's seeders and leechers in the reply to this announce */
  seeders: number;
  leechers: number;
}

export interface DecodedRecord {
  version: number;
  gatewayId: string;
  events: AnnounceEvent[];
}

export type DecodeFailure = 'short' | 'magic' | 'version' | 'gateway' | 'count' | 'length' | 'field';

/** A record that is not a valid record of a known version; `reason` is for a metric's label. */
export class EventDecodeError extends Error {
  constructor(
    readonly reason: DecodeFailure,
    message: string,
  ) {
    super(`announce-event record: ${message}`);
    this.name = 'EventDecodeError';
  }
}

const GATEWAY_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/** Throws unless id can name a gateway in a record (1-64 of A-Z a-z 0-9 . _ : -). */
export function checkGatewayId(id: string): void {
  if (!GATEWAY_ID.test(id)) throw new RangeError(`gateway id ${JSON.stringify(id)}: 1 to ${MAX_GATEWAY_ID} of A-Z a-z 0-9 . _ : -`);
}

/** The partition of a swarm's events among n: its info hash's first 4 bytes (uniform: SHA-1) mod n. */
export function partitionOf(infoHash: Uint8Array, partitions: number): number {
  return (((infoHash[0] << 24) | (infoHash[1] << 16) | (infoHash[2] << 8) | infoHash[3]) >>> 0) % partitions;
}

/**
 * Collects events into one record, written straight into a buffer (no object per event: the
 * gateway adds one per announce). finish() returns the record and starts an empty one.
 */
export class RecordWriter {
  private readonly head: Buffer;
  private body: Buffer;
  private count = 0;
  private base = 0;

  constructor(
    gatewayId: string,
    readonly capacity = 1024,
  ) {
    checkGatewayId(gatewayId);
    if (!(Number.isInteger(capacity) && capacity >= 1 && capacity <= MAX_EVENTS_PER_RECORD)) {
      throw new RangeError(`record capacity ${capacity}: 1 to ${MAX_EVENTS_PER_RECORD} events`);
    }
    this.head = Buffer.alloc(4 + gatewayId.length + 12);
    this.head.writeUInt16BE(MAGIC, 0);
    this.head[2] = EVENTS_VERSION;
    this.head[3] = gatewayId.length;
    this.head.write(gatewayId, 4, 'latin1');
    this.body = Buffer.allocUnsafe(capacity * EVENT_BYTES);
  }

  get size(): number {
    return this.count;
  }

  get full(): boolean {
    return this.count === this.capacity;
  }

  /**
   * Adds an event; false (nothing added) when the record is full or the time is more than 2^32
   * ms from the record's first event. peerKey: 8 bytes at peerKeyAt.
   */
  add(
    time: number,
    infoHash: Uint8Array,
    peerKey: Uint8Array,
    peerKeyAt: number,
    event: number,
    left: number,
    uploaded: number,
    downloaded: number,
    protocol: number,
    family: 4 | 6,
    client: ClientSoftware,
    seeders: number,
    leechers: number,
  ): boolean {
    if (this.count === this.capacity) return false;
    const t = Math.floor(time);
    if (!(t >= 0 && t <= Number.MAX_SAFE_INTEGER)) throw new RangeError(`event time ${time}`);
    if (this.count === 0) this.base = t;
    const dt = t - this.base;
    if (!(dt >= 0 && dt <= 0xffffffff)) return false;
    const b = this.body;
    const o = this.count * EVENT_BYTES;
    b.writeUInt32BE(dt, o);
    // (set without subarray when the sizes are exact: a view per call showed in the gateway's profile)
    b.set(infoHash.length === 20 ? infoHash : infoHash.subarray(0, 20), o + 4);
    b.set(peerKeyAt === 0 && peerKey.length === 8 ? peerKey : peerKey.subarray(peerKeyAt, peerKeyAt + 8), o + 24);
    // (a client's byte counts as a reader accepts them: whole, 0 to 2^53 - 1)
    b.writeDoubleBE(byteCount(left), o + 32);
    b.writeDoubleBE(byteCount(uploaded), o + 40);
    b.writeDoubleBE(byteCount(downloaded), o + 48);
    b[o + 56] = event;
    b[o + 57] = protocol | (family === 6 ? 4 : 0);
    const v = client.version;
    const vn = Math.min(v.length, 4);
    b[o + 58] = STYLE_CODES[client.style] | (vn << 4);
    const code = client.code;
    for (let i = 0; i < 4; i++) {
      const c = i < code.length ? code.charCodeAt(i) : 0;
      b[o + 59 + i] = c === 0 || (c >= 0x20 && c <= 0x7e) ? c : 0x3f;
    }
    for (let i = 0; i < 4; i++) b[o + 63 + i] = i < vn ? v[i] & 0xff : 0;
    b.writeUInt32BE(Math.min(seeders, 0xffffffff) >>> 0, o + 67);
    b.writeUInt32BE(Math.min(leechers, 0xffffffff) >>> 0, o + 71);
    this.count++;
    return true;
  }

  /** The record of the events added (a new buffer), or undefined when there are none; then empty. */
  finish(): Buffer | undefined {
    if (this.count === 0) return undefined;
    const h = this.head;
    const at = h.length - 12;
    h.writeDoubleBE(this.base, at);
    h.writeUInt32BE(this.count, at + 8);
    const out = Buffer.concat([h, this.body.subarray(0, this.count * EVENT_BYTES)]);
    this.count = 0;
    return out;
  }
}

/** One record of the events given (all with whole-ms times within 2^32 ms of the first). */
export function encodeRecord(gatewayId: string, events: readonly AnnounceEvent[]): Buffer {
  if (events.length === 0 || events.length > MAX_EVENTS_PER_RECORD) throw new RangeError(`a record holds 1 to ${MAX_EVENTS_PER_RECORD} events`);
  const w = new RecordWriter(gatewayId, events.length);
  for (const e of events) {
    if (!w.add(e.time, e.infoHash, e.peerKey, 0, EVENT_CODES[e.event], e.left, e.uploaded, e.downloaded, PROTOCOL_CODES[e.protocol], e.family, e.client, e.seeders, e.leechers)) {
      throw new RangeError('the events of one record span more than 2^32 ms, or start with a later one');
    }
  }
  return w.finish()!;
}

function byteCount(x: number): number {
  return x >= 0 ? Math.min(Math.floor(x), Number.MAX_SAFE_INTEGER) : 0;
}

const isCount = (x: number) => x >= 0 && x <= Number.MAX_SAFE_INTEGER && Number.isInteger(x);

/** The record's events; throws EventDecodeError for anything but a whole valid record. */
export function decodeRecord(buf: Buffer): DecodedRecord {
  if (buf.length < 4) throw new EventDecodeError('short', `${buf.length} bytes is shorter than any record`);
  if (buf.readUInt16BE(0) !== MAGIC) throw new EventDecodeError('magic', 'does not start with "PT"');
  const version = buf[2];
  if (version !== EVENTS_VERSION) throw new EventDecodeError('version', `version ${version}; this reader knows ${EVENTS_VERSION}`);
  const l = buf[3];
  if (buf.length < 4 + l + 12) throw new EventDecodeError('short', `${buf.length} bytes is shorter than its header`);
  const gatewayId = buf.toString('latin1', 4, 4 + l);
  if (!GATEWAY_ID.test(gatewayId)) throw new EventDecodeError('gateway', `gateway id ${JSON.stringify(gatewayId)} is not valid`);
  const base = buf.readDoubleBE(4 + l);
  const n = buf.readUInt32BE(4 + l + 8);
  if (!isCount(base)) throw new EventDecodeError('field', `base time ${base}`);
  if (n < 1 || n > MAX_EVENTS_PER_RECORD) throw new EventDecodeError('count', `${n} events (1 to ${MAX_EVENTS_PER_RECORD})`);
  const start = 4 + l + 12;
  if (buf.length !== start + n * EVENT_BYTES) {
    throw new EventDecodeError('length', `${buf.length} bytes for ${n} events (${start + n * EVENT_BYTES} expected)`);
  }
  const events: AnnounceEvent[] = new Array(n);
  for (let k = 0; k < n; k++) {
    const o = start + k * EVENT_BYTES;
    const left = buf.readDoubleBE(o + 32);
    const uploaded = buf.readDoubleBE(o + 40);
    const downloaded = buf.readDoubleBE(o + 48);
    const ev = buf[o + 56];
    const flags = buf[o + 57];
    const style = buf[o + 58] & 0x0f;
    const vn = buf[o + 58] >> 4;
    if (!isCount(left) || !isCount(uploaded) || !isCount(downloaded)) throw new EventDecodeError('field', `event ${k}: a byte count that is not a whole number >= 0`);
    if (ev >= EVENT_NAMES.length) throw new EventDecodeError('field', `event ${k}: event code ${ev}`);
    if ((flags & 3) >= PROTOCOLS.length || flags > 7) throw new EventDecodeError('field', `event ${k}: flags ${flags}`);
    if (style >= STYLES.length || vn > 4) throw new EventDecodeError('field', `event ${k}: client byte ${buf[o + 58]}`);
    let code = '';
    for (let i = 0; i < 4; i++) {
      const c = buf[o + 59 + i];
      if (c === 0) break;
      if (c < 0x20 || c > 0x7e) throw new EventDecodeError('field', `event ${k}: client code byte ${c}`);
      code += String.fromCharCode(c);
    }
    const version: number[] = [];
    for (let i = 0; i < 4; i++) {
      if (i < vn) version.push(buf[o + 63 + i]);
      else if (buf[o + 63 + i] !== 0) throw new EventDecodeError('field', `event ${k}: a version byte beyond its count`);
    }
    events[k] = {
      time: base + buf.readUInt32BE(o),
      infoHash: Buffer.from(buf.subarray(o + 4, o + 24)),
      peerKey: Buffer.from(buf.subarray(o + 24, o + 32)),
      event: EVENT_NAMES[ev],
      left,
      uploaded,
      downloaded,
      protocol: PROTOCOLS[flags & 3],
      family: flags & 4 ? 6 : 4,
      client: { style: STYLES[style], code, version },
      seeders: buf.readUInt32BE(o + 67),
      leechers: buf.readUInt32BE(o + 71),
    };
  }
  return { version, gatewayId, events };
}
