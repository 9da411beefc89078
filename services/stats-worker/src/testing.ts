/* Test helpers shared by the stats worker's tests. */
import { randomBytes } from 'node:crypto';
import { decodeClient, type AnnounceEvent } from '@peertracker/events';

/** A qBittorrent peer's regular UDP announce of the torrent at `time`, with a new peer key; `o` overrides. */
export function announceEvent(infoHash: Buffer, time: number, o: Partial<AnnounceEvent> = {}): AnnounceEvent {
  return {
    time,
    infoHash,
    peerKey: randomBytes(8),
    event: 'none',
    left: 1,
    uploaded: 0,
    downloaded: 0,
    protocol: 'udp',
    family: 4,
    client: decodeClient(Buffer.from('-qB4650-abcdefghijkl')),
    seeders: 1,
    leechers: 1,
    ...o,
  };
}

/** Retries check until it passes (the worker and its jobs are a moment behind the announces), or throws its last error after ms. */
export async function eventually<T>(what: string, check: () => Promise<T>, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`${what}: ${String(err)}`, { cause: err });
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}
