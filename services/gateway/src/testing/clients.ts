import { createSocket } from 'node:dgram';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';

/** Minimal tracker clients for tests: raw paths in, raw bytes out. */

export interface HttpReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export function httpGet(
  port: number,
  path: string,
  opts: { host?: string; localAddress?: string; headers?: Record<string, string>; method?: string } = {},
): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: opts.host ?? '127.0.0.1',
        localAddress: opts.localAddress,
        port,
        path,
        method: opts.method ?? 'GET',
        headers: opts.headers,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.setTimeout(5000, () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** Percent-encodes every byte, the way careful clients send info_hash and peer_id. */
export function percentEncode(bytes: Buffer): string {
  let s = '';
  for (const b of bytes) s += '%' + b.toString(16).padStart(2, '0');
  return s;
}

export function announcePath(p: {
  infoHash: Buffer;
  peerId: Buffer;
  port: number;
  left?: number;
  event?: string;
  numwant?: number;
  compact?: 0 | 1;
  noPeerId?: boolean;
}): string {
  let path =
    `/announce?info_hash=${percentEncode(p.infoHash)}&peer_id=${percentEncode(p.peerId)}` +
    `&port=${p.port}&uploaded=0&downloaded=0&left=${p.left ?? 100}`;
  if (p.event) path += `&event=${p.event}`;
  if (p.numwant !== undefined) path += `&numwant=${p.numwant}`;
  if (p.compact !== undefined) path += `&compact=${p.compact}`;
  if (p.noPeerId) path += '&no_peer_id=1';
  return path;
}

/** Sends one datagram and waits for one reply; null if none came within timeoutMs. */
export function udpExchange(port: number, packet: Buffer, host = '127.0.0.1', timeoutMs = 1000): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    const timer = setTimeout(() => {
      socket.close();
      resolve(null);
    }, timeoutMs);
    socket.on('message', (msg) => {
      clearTimeout(timer);
      socket.close();
      resolve(msg);
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      socket.close();
      reject(err);
    });
    socket.send(packet, port, host);
  });
}

export const UDP_PROTOCOL_ID = 0x41727101980n;

export function udpConnectPacket(transactionId: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeBigUInt64BE(UDP_PROTOCOL_ID, 0);
  b.writeUInt32BE(0, 8);
  b.writeUInt32BE(transactionId, 12);
  return b;
}

export function udpAnnouncePacket(p: {
  connectionId: Buffer;
  transactionId: number;
  infoHash: Buffer;
  peerId: Buffer;
  port: number;
  left?: bigint;
  event?: number;
  numWant?: number;
}): Buffer {
  const b = Buffer.alloc(98);
  p.connectionId.copy(b, 0);
  b.writeUInt32BE(1, 8);
  b.writeUInt32BE(p.transactionId, 12);
  p.infoHash.copy(b, 16);
  p.peerId.copy(b, 36);
  b.writeBigUInt64BE(0n, 56);
  b.writeBigUInt64BE(p.left ?? 100n, 64);
  b.writeBigUInt64BE(0n, 72);
  b.writeUInt32BE(p.event ?? 0, 80);
  b.writeUInt32BE(0, 84);
  b.writeUInt32BE(0x1234, 88);
  b.writeInt32BE(p.numWant ?? -1, 92);
  b.writeUInt16BE(p.port, 96);
  return b;
}

export function udpScrapePacket(connectionId: Buffer, transactionId: number, infoHashes: Buffer[]): Buffer {
  const b = Buffer.alloc(16 + 20 * infoHashes.length);
  connectionId.copy(b, 0);
  b.writeUInt32BE(2, 8);
  b.writeUInt32BE(transactionId, 12);
  infoHashes.forEach((h, i) => h.copy(b, 16 + 20 * i));
  return b;
}

/** Connects over UDP and returns the connection ID the tracker issued. */
export async function udpConnect(port: number, host = '127.0.0.1'): Promise<Buffer> {
  const reply = await udpExchange(port, udpConnectPacket(0xc0ffee), host);
  if (reply === null || reply.length !== 16 || reply.readUInt32BE(0) !== 0 || reply.readUInt32BE(4) !== 0xc0ffee) {
    throw new Error(`bad connect reply: ${reply?.toString('hex')}`);
  }
  return reply.subarray(8, 16);
}

/**
 * Opens a TCP connection that never closes its side on its own (as a hostile client does), from
 * `from` when given; `closed` settles when the server ends or closes it.
 */
export function openRaw(port: number, from?: string, host = '127.0.0.1'): Promise<{ socket: Socket; received: Buffer[]; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, allowHalfOpen: true, localAddress: from });
    const received: Buffer[] = [];
    socket.on('data', (b: Buffer) => received.push(b));
    const closed = new Promise<void>((r) => {
      socket.once('end', () => r());
      socket.once('close', () => r());
    });
    socket.on('error', () => {});
    socket.once('connect', () => resolve({ socket, received, closed }));
    socket.once('error', reject);
  });
}
