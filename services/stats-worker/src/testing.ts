/* Test helpers shared by the stats worker's tests. */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
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

/**
 * Starts a stats worker process (dist/main.js) with env on top of this process's environment, or
 * on top of PATH alone when inherit is false (so that no OTEL_* or other setting leaks in); the
 * last 200 chunks of its output are kept.
 */
export function startWorker(env: Record<string, string>, inherit = true): ChildProcess & { output: string[] } {
  const base = inherit ? process.env : { PATH: process.env.PATH ?? '' };
  const child = spawn(process.execPath, [join(__dirname, 'main.js')], { env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] }) as ChildProcess & { output: string[] };
  child.output = [];
  const keep = (b: Buffer) => {
    child.output.push(b.toString());
    if (child.output.length > 200) child.output.shift();
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  return child;
}
