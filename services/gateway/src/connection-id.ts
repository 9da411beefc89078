import { createHmac, timingSafeEqual } from 'node:crypto';

/** Width of one time window. An ID stays valid for the window it was issued in and the next two. */
const WINDOW_SECONDS = 60;
const WINDOWS_ACCEPTED = 3;

/**
 * Stateless BEP 15 connection IDs, so that any gateway replica sharing the secret accepts an ID
 * issued by any other, and no per-client state is kept.
 *
 * Layout (8 bytes): [window mod 256][first 7 bytes of HMAC-SHA256(secret, window u32 BE ‖ ip bytes)].
 * The leading byte says which recent window to check, so validation costs one HMAC, not three
 * (an attacker's junk IDs cost as much as a client's good ones). Keyed on the IP only: NATs and
 * clients that change source port between connect and announce keep working.
 * Accepted for 2–3 minutes after issue (BEP 15: clients may use an ID for up to 2 minutes).
 */
export class ConnectionIds {
  constructor(
    private readonly secret: Buffer,
    private readonly nowMs: () => number = Date.now,
  ) {}

  issue(ip: Buffer): Buffer {
    const window = this.currentWindow();
    const id = Buffer.allocUnsafe(8);
    id[0] = window & 0xff;
    this.mac(window, ip).copy(id, 1, 0, 7);
    return id;
  }

  isValid(id: Buffer, ip: Buffer): boolean {
    if (id.length !== 8) return false;
    const current = this.currentWindow();
    for (let age = 0; age < WINDOWS_ACCEPTED; age++) {
      const window = current - age;
      if ((window & 0xff) !== id[0]) continue;
      return timingSafeEqual(this.mac(window, ip).subarray(0, 7), id.subarray(1));
    }
    return false;
  }

  private currentWindow(): number {
    return Math.floor(this.nowMs() / 1000 / WINDOW_SECONDS);
  }

  private mac(window: number, ip: Buffer): Buffer {
    const prefix = Buffer.allocUnsafe(4);
    prefix.writeUInt32BE(window >>> 0, 0);
    return createHmac('sha256', this.secret).update(prefix).update(ip).digest();
  }
}
