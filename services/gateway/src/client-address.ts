import { BlockList, isIPv4 } from 'node:net';
import { ipToBytes } from '@peertracker/protocol';
import type { PeerEndpoint } from '@peertracker/tracker';

const MAPPED_PREFIX = '::ffff:';

/** '::ffff:1.2.3.4' (what a dual-stack socket reports for IPv4 clients) → '1.2.3.4'. */
export function unmapIPv4(address: string): string {
  if (address.length > MAPPED_PREFIX.length && address.startsWith(MAPPED_PREFIX)) {
    const tail = address.slice(MAPPED_PREFIX.length);
    if (isIPv4(tail)) return tail;
  }
  return address;
}

/** Address text → the endpoint the swarm stores (4 or 16 raw bytes), or null if it is no IP. */
export function endpointOf(address: string): PeerEndpoint | null {
  const ip = ipToBytes(address);
  if (ip === null) return null;
  return { family: ip.length === 4 ? 4 : 6, ip };
}

/** Proxies may write '1.2.3.4:5678', '[2001:db8::1]' or '[2001:db8::1]:5678'; keep the address. */
function withoutPort(hop: string): string {
  if (hop.startsWith('[')) {
    const close = hop.indexOf(']');
    return close === -1 ? hop : hop.slice(1, close);
  }
  const colon = hop.indexOf(':');
  return colon !== -1 && colon === hop.lastIndexOf(':') ? hop.slice(0, colon) : hop;
}

/**
 * Decides the client's IP. The socket's address is the truth unless it belongs to a configured
 * trusted proxy; then X-Forwarded-For is read from the right, skipping further trusted proxies,
 * and the first untrusted hop is the client (entries to its left are client-supplied and spoofable).
 */
export class ClientAddressResolver {
  private readonly trusted = new BlockList();
  private readonly hasTrusted: boolean;

  constructor(trustedProxies: readonly string[]) {
    for (const entry of trustedProxies) {
      const [addr, bits] = entry.split('/');
      const family = isIPv4(addr) ? 'ipv4' : 'ipv6';
      if (bits === undefined) this.trusted.addAddress(addr, family);
      else this.trusted.addSubnet(addr, Number(bits), family);
    }
    this.hasTrusted = trustedProxies.length > 0;
  }

  isTrusted(address: string): boolean {
    if (!this.hasTrusted) return false;
    const plain = unmapIPv4(address);
    return this.trusted.check(plain, isIPv4(plain) ? 'ipv4' : 'ipv6');
  }

  /** The client's address as text, or undefined if the socket has none (already closed). */
  resolve(socketAddress: string | undefined, forwardedFor: string | string[] | undefined): string | undefined {
    if (socketAddress === undefined) return undefined;
    const direct = unmapIPv4(socketAddress);
    if (forwardedFor === undefined || !this.isTrusted(direct)) return direct;
    const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor).split(',');
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = unmapIPv4(withoutPort(hops[i].trim()));
      if (ipToBytes(hop) === null) return direct; // garbage in the header: trust only what we saw
      if (!this.isTrusted(hop)) return hop;
    }
    return direct;
  }
}
