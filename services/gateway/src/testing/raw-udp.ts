/*
 * UDP datagrams with a forged source address and port, for hostile-traffic tests. Node has no raw
 * sockets, so python3 builds the IPv4 and UDP headers itself (SOCK_RAW, IPPROTO_RAW, which implies
 * IP_HDRINCL; needs root or CAP_NET_RAW). Loopback only: every source and destination address is
 * checked to be in 127.0.0.0/8, here and again in the Python code.
 */
import { spawnSync } from 'node:child_process';

export interface SpoofedDatagram {
  /** forged source address, in 127.0.0.0/8 */
  src: string;
  /** forged source port; 0 is what no real socket can send from */
  srcPort: number;
  /** destination port on 127.0.0.1 */
  dstPort: number;
  payload: Buffer;
}

const SENDER = String.raw`
import json, socket, struct, sys
def loopback(a):
    return socket.inet_aton(a)[0] == 127
def checksum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
jobs = json.load(sys.stdin)
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
for j in jobs:
    src, dst = j['src'], '127.0.0.1'
    if not (loopback(src) and loopback(dst)): raise SystemExit('refusing a non-loopback address: ' + src)
    payload = bytes.fromhex(j['payload'])
    udp = struct.pack('!HHHH', j['srcPort'], j['dstPort'], 8 + len(payload), 0) + payload
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 0, 0, 64, socket.IPPROTO_UDP, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    ip = ip[:10] + struct.pack('!H', checksum(ip)) + ip[12:]
    s.sendto(ip + udp, (dst, 0))
print(len(jobs))
`;

function isLoopbackV4(a: string): boolean {
  const parts = a.split('.').map(Number);
  return parts.length === 4 && parts[0] === 127 && parts.every((p) => Number.isInteger(p) && p >= 0 && p <= 255);
}

/** Why spoofed datagrams cannot be sent here (no python3, no raw-socket capability), or undefined. */
export function rawUdpUnavailable(): string | undefined {
  const probe = spawnSync('python3', ['-c', 'import socket; socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)'], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  if (probe.error !== undefined) return `python3 cannot be run (${probe.error.message})`;
  if (probe.status !== 0) return `no raw sockets here (needs root or CAP_NET_RAW): ${probe.stderr.trim().split('\n').pop()}`;
  return undefined;
}

/** Sends the datagrams (in order, as fast as the kernel takes them); returns when all are sent. */
export function sendSpoofedUdp(datagrams: SpoofedDatagram[]): void {
  for (const d of datagrams) {
    if (!isLoopbackV4(d.src)) throw new Error(`refusing to forge a non-loopback source ${d.src}`);
  }
  const jobs = datagrams.map((d) => ({ src: d.src, srcPort: d.srcPort, dstPort: d.dstPort, payload: d.payload.toString('hex') }));
  const r = spawnSync('python3', ['-c', SENDER], { input: JSON.stringify(jobs), encoding: 'utf8', timeout: 60_000 });
  if (r.error !== undefined || r.status !== 0 || Number(r.stdout.trim()) !== datagrams.length) {
    throw new Error(`raw UDP sender failed (${r.error?.message ?? `exit ${r.status}`}): ${r.stderr}`);
  }
}
