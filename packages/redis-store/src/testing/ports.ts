/*
 * Ports for the servers tests start (Redis, Kafka, gateways, Prometheus…), which bind them a moment
 * after they are chosen. The OS's own choice (listen on port 0) is a port of the ephemeral range,
 * the range it also hands out as the local port of every outgoing connection: with test files
 * running in parallel and opening thousands of connections, one of them took a port chosen for a
 * Kafka broker before the broker bound it (CI, 2026-12-07: "Address already in use", and a run
 * that failed). So the ports come from below the ephemeral range, which connections never get,
 * at random so that parallel test processes rarely pick the same one, each checked free for TCP
 * and UDP when chosen, and never handed out twice by one process.
 */
import { randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

const HOST = '127.0.0.1';
const LOWEST = 10_000;

/** the first port of the kernel's ephemeral range (Linux's default when it cannot be read) */
export function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > LOWEST + 1000 ? low : 32_768;
  } catch {
    return 32_768;
  }
}

const handedOut = new Set<number>();

function tcpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, HOST, () => srv.close(() => resolve(true)));
  });
}

function udpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    s.once('error', () => resolve(false));
    s.bind(port, HOST, () => s.close(() => resolve(true)));
  });
}

/** A port free on 127.0.0.1 for both TCP and UDP right now, below the ephemeral range. */
export async function freePort(): Promise<number> {
  const high = ephemeralLow();
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = randomInt(LOWEST, high);
    if (handedOut.has(port)) continue;
    if ((await tcpFree(port)) && (await udpFree(port))) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no port free for TCP and UDP on ${HOST} in ${LOWEST}–${high - 1} after 200 tries`);
}
