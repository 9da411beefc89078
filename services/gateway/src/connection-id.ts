import { createHash } from 'node:crypto';
import { hash as siphash } from 'siphash';

/** Width of one time window. An ID stays valid for the window it was issued in and the next two. */
const WINDOW_SECONDS = 60;
const WINDOWS_ACCEPTED = 3;

/**
 * Stateless BEP 15 connection IDs, so that any gateway replica sharing the secret accepts an ID
 * issued by any other, and no per-client state is kept.
 *
 * Layout (8 bytes): [window mod 256][7 bytes of SipHash-2-4(key, window u32 BE ‖ ip bytes)], the key
 * being the first 128 bits of SHA-256(secret). SipHash is a MAC made for short inputs; HMAC-SHA256
 * through node:crypto cost 3–5× more per packet and was 14% of the UDP gateway's CPU (README,
 * performance).
 * The leading byte says which recent window to check, so validation costs one HMAC, not three
 * (an attacker's junk IDs cost as much as a client's good ones). Keyed on the IP only: NATs and
 * clients that change source port between connect and announce keep working.
 * Accepted for 2–3 minutes after issue (BEP 15: clients may use an ID for up to 2 minutes).
 */
export class ConnectionIds {
  private readonly key: Uint32Array;
  /** window (4 bytes) then up to 16 bytes of IP; reused, the class is not re-entrant */
  private readonly message = Buffer.alloc(20);

  constructor(
    secret: Buffer,
    private readonly nowMs: () => number = Date.now,
  ) {
    const digest = createHash('sha256').update(secret).digest();
    this.key = new Uint32Array([0, 4, 8, 12].map((o) => digest.readUInt32LE(o)));
  }

  issue(ip: Buffer): Buffer {
    const window = this.currentWindow();
    const id = Buffer.allocUnsafe(8);
    id[0] = window & 0xff;
    const tag = this.mac(window, ip);
    id.writeUInt32BE(tag.h >>> 0, 1);
    id.writeUIntBE(tag.l >>> 8, 5, 3);
    return id;
  }

  isValid(id: Buffer, ip: Buffer): boolean {
    if (id.length !== 8) return false;
    const current = this.currentWindow();
    for (let age = 0; age < WINDOWS_ACCEPTED; age++) {
      const window = current - age;
      if ((window & 0xff) !== id[0]) continue;
      const tag = this.mac(window, ip);
      return id.readUInt32BE(1) === tag.h >>> 0 && id.readUIntBE(5, 3) === tag.l >>> 8;
    }
    return false;
  }

  private currentWindow(): number {
    return Math.floor(this.nowMs() / 1000 / WINDOW_SECONDS);
  }

  private mac(window: number, ip: Buffer): { h: number; l: number } {
    const m = this.message;
    m.writeUInt32BE(window >>> 0, 0);
    ip.copy(m, 4);
    return siphash(this.key, m.subarray(0, 4 + ip.length));
  }
}
