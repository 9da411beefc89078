// Compact peer addresses: BEP 23 (IPv4, 6 bytes: address then port, big-endian) and BEP 7
// (IPv6, 18 bytes), plus the text <-> bytes conversions the gateway needs at its edges.

/**
 * `ipBytes` followed by the big-endian port: 6 bytes for a 4-byte address, 18 for a 16-byte
 * one. The port is taken modulo 65536.
 */
export function compactAddress(ipBytes: Uint8Array, port: number): Buffer {
  const n = ipBytes.length;
  const out = Buffer.allocUnsafe(n + 2);
  out.set(ipBytes, 0);
  out[n] = (port >>> 8) & 0xff;
  out[n + 1] = port & 0xff;
  return out;
}

/**
 * Splits a compact peer string into addresses (6 bytes each for family 4, 18 for family 6); a
 * trailing partial entry is ignored. IPv6 text is in the form Node's net module prints
 * (RFC 5952 compression, lowercase, `::ffff:a.b.c.d` for IPv4-mapped addresses).
 */
export function decodeCompactPeers(buf: Uint8Array, family: 4 | 6): Array<{ ip: string; port: number }> {
  const size = family === 4 ? 6 : 18;
  const ipLen = size - 2;
  const peers: Array<{ ip: string; port: number }> = [];
  for (let off = 0; off + size <= buf.length; off += size) {
    peers.push({
      ip: family === 4 ? ipv4Text(buf, off) : ipv6Text(buf, off),
      port: (buf[off + ipLen] << 8) | buf[off + ipLen + 1],
    });
  }
  return peers;
}

function ipv4Text(b: Uint8Array, off: number): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
}

/** Same output as libuv's inet_ntop (which Node's net module uses), for 16 bytes at `off`. */
export function ipv6Text(b: Uint8Array, off = 0): string {
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push((b[off + 2 * i] << 8) | b[off + 2 * i + 1]);
  // Longest run of zero words (the first one on a tie), only if at least 2 long.
  let bestBase = -1;
  let bestLen = 0;
  let curBase = -1;
  let curLen = 0;
  for (let i = 0; i <= 8; i++) {
    if (i < 8 && words[i] === 0) {
      if (curBase < 0) {
        curBase = i;
        curLen = 1;
      } else {
        curLen++;
      }
    } else if (curBase >= 0) {
      if (curLen > bestLen) {
        bestBase = curBase;
        bestLen = curLen;
      }
      curBase = -1;
    }
  }
  if (bestLen < 2) bestBase = -1;
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (bestBase >= 0 && i >= bestBase && i < bestBase + bestLen) {
      if (i === bestBase) out += ':';
      continue;
    }
    if (i !== 0) out += ':';
    // IPv4-compatible (::a.b.c.d) and IPv4-mapped (::ffff:a.b.c.d) addresses end in dotted form.
    if (i === 6 && bestBase === 0 && (bestLen === 6 || (bestLen === 5 && words[5] === 0xffff))) {
      return out + ipv4Text(b, off + 12);
    }
    out += words[i].toString(16);
  }
  if (bestBase >= 0 && bestBase + bestLen === 8) out += ':';
  return out;
}

/** Parses dotted-quad IPv4 text (no leading zeros) into `out` at `off`; false if it is not one. */
function parseIpv4(s: string, start: number, out: Uint8Array, off: number): boolean {
  let part = 0;
  let digits = 0;
  let value = 0;
  for (let i = start; i <= s.length; i++) {
    const c = i < s.length ? s.charCodeAt(i) : 0x2e;
    if (c === 0x2e) {
      if (digits === 0 || part > 3) return false;
      out[off + part++] = value;
      digits = 0;
      value = 0;
    } else if (c >= 0x30 && c <= 0x39) {
      if (digits > 0 && value === 0) return false; // leading zero
      value = value * 10 + (c - 0x30);
      if (++digits > 3 || value > 255) return false;
    } else {
      return false;
    }
  }
  return part === 4;
}

const ZONE = /^[0-9a-zA-Z.:-]+$/;

function parseIpv6(text: string): Buffer | null {
  // A zone (`fe80::1%eth0`) says which interface, not which address: drop it.
  const pct = text.indexOf('%');
  if (pct >= 0 && !ZONE.test(text.slice(pct + 1))) return null;
  const s = pct >= 0 ? text.slice(0, pct) : text;
  if (s.length < 2 || s.length > 45) return null;
  const out = Buffer.alloc(16);
  const words: number[] = [];
  let gap = -1; // index in words where '::' stands
  let i = 0;
  if (s.startsWith('::')) {
    gap = 0;
    i = 2;
    if (i === s.length) return out;
  } else if (s.charCodeAt(0) === 0x3a) {
    return null;
  }
  for (;;) {
    // One group: hex word, or a trailing dotted IPv4 address.
    let j = i;
    let value = 0;
    while (j < s.length && j - i < 5) {
      const c = s.charCodeAt(j);
      const l = c | 0x20;
      if (c >= 0x30 && c <= 0x39) value = value * 16 + (c - 0x30);
      else if (l >= 0x61 && l <= 0x66) value = value * 16 + (l - 0x61 + 10);
      else break;
      j++;
    }
    if (j < s.length && s.charCodeAt(j) === 0x2e) {
      if (words.length > 6) return null;
      const v4 = Buffer.alloc(4);
      if (!parseIpv4(s, i, v4, 0)) return null;
      words.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      break;
    }
    if (j === i || j - i > 4) return null;
    words.push(value);
    if (words.length > 8) return null;
    if (j === s.length) break;
    if (s.charCodeAt(j) !== 0x3a) return null;
    if (j + 1 < s.length && s.charCodeAt(j + 1) === 0x3a) {
      if (gap >= 0) return null;
      gap = words.length;
      i = j + 2;
      if (i === s.length) break;
    } else {
      i = j + 1;
      if (i === s.length) return null; // trailing single ':'
    }
  }
  if (gap < 0 ? words.length !== 8 : words.length > 7) return null;
  const tail = gap < 0 ? 0 : words.length - gap;
  for (let w = 0; w < words.length; w++) {
    const pos = gap >= 0 && w >= gap ? 8 - tail + (w - gap) : w;
    out[2 * pos] = words[w] >> 8;
    out[2 * pos + 1] = words[w] & 0xff;
  }
  return out;
}

/**
 * IP text → bytes: 4 bytes for IPv4 and for IPv4-mapped IPv6 (`::ffff:a.b.c.d`, so a dual-stack
 * socket's view of an IPv4 client compacts as IPv4), 16 for other IPv6; null if not an IP.
 */
export function ipToBytes(ip: string): Buffer | null {
  if (ip.indexOf(':') < 0) {
    const out = Buffer.allocUnsafe(4);
    return parseIpv4(ip, 0, out, 0) ? out : null;
  }
  const b = parseIpv6(ip);
  if (b === null) return null;
  for (let k = 0; k < 10; k++) if (b[k] !== 0) return b;
  if (b[10] === 0xff && b[11] === 0xff) return b.subarray(12, 16);
  return b;
}
