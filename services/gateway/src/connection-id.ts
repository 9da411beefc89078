import { createHash } from 'node:crypto';
import { sipHash24, sipKey, sipOut, type SipKey } from './siphash24';

/** Width of one time window. An ID stays valid for the window it was issued in and the next two. */
const WINDOW_SECONDS = 60;
const WINDOWS_ACCEPTED = 3;

/**
 * Stateless BEP 15 connection IDs, so that any gateway replica sharing the secret accepts an ID
 * issued by any other, and no per-client state is kept.
 *
 * Layout (8 bytes): [window mod 256][7 bytes of SipHash-2-4(key, window u32 BE ‖ ip bytes)], the key
 * being the first 128 bits of SHA-256(secret). SipHash is a MAC made for short inputs; HMAC-SHA256
 * through node:crypto cost several times more per packet and was 14% of the UDP gateway's CPU in a
 * profile. The leading byte says which recent window to check, so validation costs one MAC
 * whatever the ID (junk costs as much as a client's good ID). Keyed on the IP only: NATs and
 * clients that change source port between connect and announce keep working.
 * Accepted for 2–3 minutes after issue (BEP 15: clients may use an ID for up to 2 minutes), and
 * one window early, so a replica whose clock is a little behind the issuer's still accepts it.
 *
 * A second, accepted secret (never used to issue) lets the secret be rotated without a window in
 * which replicas of two generations refuse each other's IDs: first every replica accepts the new
 * secret, then every replica issues with it and accepts the old one, then the old one goes. Only
 * an ID that fails the first check pays for the second MAC (0.1 µs).
 */
export class ConnectionIds {
  private readonly key: SipKey;
  private readonly acceptedKey: SipKey | undefined;
  /** window (4 bytes) then up to 16 bytes of IP; reused, so calls allocate only the issued ID */
  private readonly message = Buffer.alloc(20);

  constructor(
    secret: Buffer,
    private readonly nowMs: () => number = Date.now,
    accepted?: Buffer,
  ) {
    this.key = ConnectionIds.keyOf(secret);
    this.acceptedKey = accepted === undefined ? undefined : ConnectionIds.keyOf(accepted);
  }

  private static keyOf(secret: Buffer): SipKey {
    return sipKey(createHash('sha256').update(secret).digest());
  }

  issue(ip: Buffer): Buffer {
    const window = this.currentWindow();
    const id = Buffer.allocUnsafe(8);
    id[0] = window & 0xff;
    this.mac(this.key, window, ip);
    id.writeUInt32BE(sipOut[1], 1);
    id.writeUIntBE(sipOut[0] >>> 8, 5, 3);
    return id;
  }

  isValid(id: Buffer, ip: Buffer): boolean {
    if (id.length !== 8) return false;
    const current = this.currentWindow();
    // a spoofed sender gets no reply either way, so comparing in non-constant time leaks nothing
    for (let age = -1; age < WINDOWS_ACCEPTED; age++) {
      const window = current - age;
      if ((window & 0xff) !== id[0]) continue;
      if (this.matches(id, this.key, window, ip)) return true;
      return this.acceptedKey !== undefined && this.matches(id, this.acceptedKey, window, ip);
    }
    return false;
  }

  private matches(id: Buffer, key: SipKey, window: number, ip: Buffer): boolean {
    this.mac(key, window, ip);
    return id.readUInt32BE(1) === sipOut[1] && id.readUIntBE(5, 3) === sipOut[0] >>> 8;
  }

  private currentWindow(): number {
    return Math.floor(this.nowMs() / 1000 / WINDOW_SECONDS);
  }

  private mac(key: SipKey, window: number, ip: Buffer): void {
    const m = this.message;
    m.writeUInt32BE(window >>> 0, 0);
    ip.copy(m, 4);
    sipHash24(key, m, 0, 4 + ip.length);
  }
}
