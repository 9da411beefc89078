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
