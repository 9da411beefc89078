/**
 * Helpers for end-to-end tests with real BitTorrent clients: a seeder and a leecher, both aria2c,
 * that can find each other only through the tracker named in a torrent made by mktorrent.
 *
 * Isolation from anything but the tracker:
 * - the torrent is private (mktorrent -p), so aria2 never looks the torrent up in DHT, never
 *   exchanges peers (PEX) and never uses local peer discovery for it;
 * - DHT, PEX and LPD are switched off anyway (except that aria2 only speaks UDP trackers through its
 *   IPv4 DHT socket, so UDP runs keep that socket open, with no entry point and no routing table file,
 *   which leaves it without any DHT node to talk to);
 * - every socket is bound to the loopback interface (--interface=lo), and no config file is read.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { accessSync, closeSync, constants, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

export const REQUIRED_BINARIES = ['aria2c', 'mktorrent'] as const;

/** Names of required binaries that are not on PATH. */
export function missingBinaries(names: readonly string[] = REQUIRED_BINARIES): string[] {
  const dirs = (process.env.PATH ?? '').split(delimiter).filter(Boolean);
  return names.filter(
    (name) =>
      !dirs.some((dir) => {
        try {
          accessSync(join(dir, name), constants.X_OK);
          return true;
        } catch {
          return false;
        }
      }),
  );
}

/** True when this machine can bind the IPv6 loopback address (containers sometimes cannot). */
export async function ipv6LoopbackAvailable(): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ host: '::1', port: 0, ipv6Only: true }, () => server.close(() => resolve(true)));
  });
}

/** A TCP port that is free on 127.0.0.1 and, when ipv6, on ::1 as well (aria2 binds both with --interface=lo). */
export async function freeTcpPort(ipv6: boolean): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await bindTcp('127.0.0.1', 0);
    if (port === undefined) continue;
    if (!ipv6 || (await bindTcp('::1', port)) !== undefined) return port;
  }
  throw new Error('no free TCP port found on loopback');
}

function bindTcp(host: string, port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(undefined));
    server.listen({ host, port, exclusive: true }, () => {
      const chosen = (server.address() as { port: number }).port;
      server.close(() => resolve(chosen));
    });
  });
}

/** A UDP port that is free on 127.0.0.1 (for aria2's IPv4 DHT socket, which carries its UDP tracker traffic). */
export function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    socket.once('error', reject);
    socket.bind({ address: '127.0.0.1', port: 0, exclusive: true }, () => {
      const { port } = socket.address();
      socket.close(() => resolve(port));
    });
  });
}

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** aria2's debug log repeats these every few milliseconds; they only hide what matters. */
const NOISE =
  /DHTTaskQueueImpl|DHTTaskExecutor|DHTMessageDispatcherImpl|Executing 0 Task|periodicTaskQueue|immediateTaskQueue|SegmentMan|BitfieldMan|Piece\.cc|DefaultPieceStorage|BtPieceMessage|BtRequestMessage|PeerConnection\.cc|DefaultBtMessageDispatcher|BtLeecherStateChoke|BtSeederStateChoke|ActivePeerConnectionCommand|WatchProcessCommand|GnuTLS|DHT routing table|DHTRoutingTableDeserializer/;

/** The last lines of an aria2 log (console output and the debug log, noise removed), for failure messages. */
export function logTail(path: string, lines = 40): string {
  if (!existsSync(path)) return `(no file ${path})`;
  const all = readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '' && !NOISE.test(l));
  return all.slice(-lines).join('\n');
}

/** Lines of an aria2 debug log about trackers: what was asked, what came back, which peers were added. */
export function trackerLines(path: string, lines = 25): string {
  if (!existsSync(path)) return `(no file ${path})`;
  const pattern =
    /UDPT|GET \/announce|Now processing|Interval:|Complete:|Incomplete:|Adding peer|Tracker returned|failure|tracker.*(?:error|fail)|Exception|errorCode|Connecting to/i;
  const all = readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => pattern.test(l) && !NOISE.test(l));
  return all.slice(-lines).join('\n');
}

interface Aria2Process {
  name: string;
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  logPath: string;
  outPath: string;
}

function running(p: Aria2Process): boolean {
  return p.child.exitCode === null && p.child.signalCode === null;
}

function spawnAria2(name: string, args: string[], workDir: string): Aria2Process {
  const logPath = join(workDir, `${name}.log`);
  const outPath = join(workDir, `${name}.out`);
  const out = openSync(outPath, 'w');
  // detached: its own process group, so the whole group can be killed however aria2 is stuck.
  const child = spawn('aria2c', [...args, `--log=${logPath}`], { detached: true, stdio: ['ignore', out, out] });
  closeSync(out);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', () => resolve({ code: null, signal: null }));
  });
  return { name, child, exited, logPath, outPath };
}

/** Resolves with the exit status, or with undefined once ms have passed. */
async function waitExit(p: Aria2Process, ms: number) {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([p.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** SIGTERM the process group, then SIGKILL it if it is still there after a moment. */
async function stop(p: Aria2Process | undefined): Promise<void> {
  if (!p || p.child.pid === undefined || !running(p)) return;
  const signalGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-p.child.pid!, signal);
    } catch {
      /* already gone */
    }
  };
  signalGroup('SIGTERM');
  if ((await waitExit(p, 3_000)) === undefined) {
    signalGroup('SIGKILL');
    await waitExit(p, 3_000);
  }
}

export interface TransferOptions {
  /** announce URL written into the torrent, e.g. udp://127.0.0.1:6969/announce */
  announceUrl: string;
  /** size of the random payload */
  bytes?: number;
  /** how long the leecher may take, from its start to its exit */
  timeoutMs?: number;
  /**
   * When set, the leecher gets its own torrent of the same content announcing here instead (the
   * announce URL lies outside the info dictionary, so both torrents have the same info hash, which
   * is checked): seeder and leecher then talk to different trackers, e.g. two gateways over one store.
   */
  leecherAnnounceUrl?: string;
}

/** SHA-1 of the bencoded info dictionary of a torrent file made by mktorrent (the info hash), in hex. */
export function torrentInfoHash(torrentPath: string): string {
  const bytes = readFileSync(torrentPath);
  // mktorrent writes the top-level keys sorted, "info" last: the info dict runs from after "4:info"
  // to the byte before the final "e" that closes the top-level dictionary.
  const at = bytes.lastIndexOf(Buffer.from('4:infod'));
  assert.ok(at > 0 && bytes[bytes.length - 1] === 0x65, `unexpected torrent layout in ${torrentPath}`);
  return createHash('sha1').update(bytes.subarray(at + 6, bytes.length - 1)).digest('hex');
}

/**
 * Makes a random file and a private torrent announcing to announceUrl, seeds it with one aria2c,
 * downloads it with another into a separate directory, and checks the SHA-256 of the download.
 * Both clients are stopped and the temporary directory removed, whatever happens.
 */
/** Returns the torrent's info hash (hex). */
export async function transferThroughTracker(opts: TransferOptions): Promise<string> {
  const { announceUrl, leecherAnnounceUrl, bytes = 3 * 1024 * 1024, timeoutMs = 60_000 } = opts;
  const url = new URL(announceUrl);
  const udp = url.protocol === 'udp:';
  const ipv6 = url.hostname.startsWith('[');

  const workDir = mkdtempSync(join(tmpdir(), 'peertracker-e2e-'));
  let seeder: Aria2Process | undefined;
  let leecher: Aria2Process | undefined;
  try {
    const seedDir = join(workDir, 'seed');
    const leechDir = join(workDir, 'leech');
    const payload = join(seedDir, 'payload.bin');
    const torrent = join(workDir, 'payload.torrent');
    mkdirSync(seedDir);
    mkdirSync(leechDir);
    writeFileSync(payload, randomBytes(bytes));

    // 64 KiB pieces (2^16): 48 pieces for 3 MiB. -p marks the torrent private (tracker-only discovery).
    const mk = spawnSync('mktorrent', ['-p', '-l', '16', '-a', announceUrl, '-o', torrent, payload], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(mk.status, 0, `mktorrent failed (status ${mk.status}): ${mk.stderr}${mk.stdout}${mk.error ?? ''}`);
    let leecherTorrent = torrent;
    if (leecherAnnounceUrl !== undefined) {
      leecherTorrent = join(workDir, 'payload-leecher.torrent');
      const mk2 = spawnSync('mktorrent', ['-p', '-l', '16', '-a', leecherAnnounceUrl, '-o', leecherTorrent, payload], {
        encoding: 'utf8',
        timeout: 30_000,
      });
      assert.equal(mk2.status, 0, `mktorrent failed (status ${mk2.status}): ${mk2.stderr}${mk2.stdout}${mk2.error ?? ''}`);
      assert.notDeepEqual(readFileSync(leecherTorrent), readFileSync(torrent), 'the two torrents should differ (announce URL)');
      assert.equal(torrentInfoHash(leecherTorrent), torrentInfoHash(torrent), 'the two torrents should have one info hash');
    }

    const common = async (name: string, dir: string) => {
      const args = [
        '--no-conf',
        `--dir=${dir}`,
        `--listen-port=${await freeTcpPort(ipv6)}`,
        '--interface=lo',
        '--disable-ipv6=false',
        '--enable-peer-exchange=false',
        '--bt-enable-lpd=false',
        '--enable-dht6=false',
        `--dht-file-path=${join(workDir, `${name}.dht`)}`,
        `--dht-file-path6=${join(workDir, `${name}.dht6`)}`,
        '--bt-tracker-interval=2',
        '--bt-tracker-connect-timeout=5',
        '--bt-tracker-timeout=5',
        '--file-allocation=none',
        '--auto-save-interval=0',
        '--summary-interval=0',
        '--console-log-level=warn',
        '--log-level=debug',
        // aria2 quits by itself if this test process dies without stopping it.
        `--stop-with-process=${process.pid}`,
      ];
      if (udp) args.push('--enable-dht=true', `--dht-listen-port=${await freeUdpPort()}`);
      else args.push('--enable-dht=false');
      return args;
    };

    seeder = spawnAria2(
      'seeder',
      [
        ...(await common('seeder', seedDir)),
        '--check-integrity=true',
        '--seed-ratio=0.0',
        '--seed-time=3', // minutes; a bound in case nothing stops it
        torrent,
      ],
      workDir,
    );
    leecher = spawnAria2('leecher', [...(await common('leecher', leechDir)), '--seed-time=0', leecherTorrent], workDir);

    const explain = (what: string) =>
      `${what} (announce ${announceUrl}${leecherAnnounceUrl !== undefined ? `, leecher announces to ${leecherAnnounceUrl}` : ''})\n` +
      `--- leecher tracker lines ---\n${trackerLines(leecher!.logPath)}\n` +
      `--- seeder tracker lines ---\n${trackerLines(seeder!.logPath)}\n` +
      `--- leecher output ---\n${logTail(leecher!.outPath)}\n--- leecher log tail ---\n${logTail(leecher!.logPath)}\n` +
      `--- seeder output ---\n${logTail(seeder!.outPath)}\n--- seeder log tail ---\n${logTail(seeder!.logPath)}`;

    const status = await waitExit(leecher, timeoutMs);
    if (status === undefined) assert.fail(explain(`leecher did not finish within ${timeoutMs} ms`));
    if (status.code !== 0) {
      assert.fail(explain(`leecher exited with code ${status.code}${status.signal ? ` (signal ${status.signal})` : ''}`));
    }
    const downloaded = join(leechDir, 'payload.bin');
    if (!existsSync(downloaded)) assert.fail(explain(`leecher exited 0 but ${downloaded} does not exist`));
    assert.equal(sha256(downloaded), sha256(payload), explain('downloaded file differs from the original'));
    return torrentInfoHash(torrent);
  } finally {
    await Promise.all([stop(leecher), stop(seeder)]);
    rmSync(workDir, { recursive: true, force: true });
  }
}
