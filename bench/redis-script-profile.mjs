// Where the announce script's time goes (run after `npm run build`): one redis-server on core 0,
// this process on core 1, 1,000 swarms x 50 peers, then announces (numWant 50) and INFO
// commandstats / INFO cpu per announce. PROFILE_CUT=<lua snippet marker> is unused by default.
// PROFILE_BATCH=N: announces batched up to N a call (the store's batchMax; default 1, each alone).
// PROFILE_REPLICA=1: a replica (on core 1, beside this process) fed by the server, as every master
// of a cluster feeds its replicas; the server's CPU then includes writing it the script's effects.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const { createRedisStore } = require('../packages/redis-store/dist/index.js');
const port = 20000 + Math.floor(Math.random() * 10000);
// (its own directory: a server must not read or leave a dump in the working directory)
const dir = mkdtempSync(join(tmpdir(), 'pt-profile-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const srv = spawn('taskset', ['-c', '0', 'redis-server', '--port', String(port), '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
// the server goes with this process, however it ends (a failed run left servers behind)
process.on('exit', () => srv.kill());
spawnSync('taskset', ['-pc', '1', String(process.pid)], { stdio: 'ignore' });
await new Promise((r) => setTimeout(r, 300));
const batchMax = Number(process.env.PROFILE_BATCH ?? 1);
if (process.env.PROFILE_REPLICA === '1') {
  const replica = spawn('taskset', ['-c', '1', 'redis-server', '--port', String(port + 1), '--save', '', '--appendonly', 'no', '--replicaof', '127.0.0.1', String(port), '--dir', dir, '--dbfilename', 'replica.rdb'], { stdio: process.env.PROFILE_DEBUG ? 'inherit' : 'ignore' });
  process.on('exit', () => replica.kill());
  const { Redis } = require('ioredis');
  const r = new Redis({ port: port + 1 });
  while (!/master_link_status:up/.test(await r.info('replication').catch(() => ''))) await new Promise((t) => setTimeout(t, 100));
  r.disconnect();
}
const store = await createRedisStore({ url: `redis://127.0.0.1:${port}` }, { keyPrefix: 'p:', batchMax });
const c = store.client;
const { ANNOUNCE_LUA, ANNOUNCE_BATCH_LUA } = require('../packages/redis-store/dist/scripts.js');
const cut = process.env.PROFILE_CUT; // a line of the script before which it returns
const lua = cut ? ANNOUNCE_LUA.replace(cut, "do return struct.pack('>BI4I4I4', 0, 0, 0, 0) end\n" + cut) : ANNOUNCE_LUA;
if (cut && lua === ANNOUNCE_LUA) throw new Error('cut not found');
const N = 1000, P = 50;
const hashes = Array.from({ length: N }, () => randomBytes(20));
const ids = randomBytes(20 * N * P), addrs = randomBytes(6 * N * P);
const req = (i, numWant, event) => ({ infoHash: hashes[Math.floor(i / P)], peerId: ids.subarray(20 * i, 20 * i + 20), family: 4,
  addr: addrs.subarray(6 * i, 6 * i + 6), key: i % 2 ? 'k' + i : undefined, seeder: i % 5 === 0, event, numWant, withPeerIds: false,
  now: Date.now(), peerLifetimeMs: 1800000 });
async function drive(count, fn) { let next = 0; await Promise.all(Array.from({ length: 256 }, async () => { while (next < count) { const i = next++; await fn(i); } })); }
await drive(N * P, (i) => store.announce(req(i, 0, 'started')));
c.defineCommand('ptAnnounce', { numberOfKeys: store.swarmKeys(hashes[0]).length, lua });
// (the store defines ptBatch on a connection only when it has none)
c.defineCommand('ptBatch', { numberOfKeys: 0, lua: ANNOUNCE_BATCH_LUA.replace(ANNOUNCE_LUA, lua) });
const cpu = async () => { const t = await c.info('cpu'); return Number(/used_cpu_user:([\d.]+)/.exec(t)[1]) + Number(/used_cpu_sys:([\d.]+)/.exec(t)[1]); };
for (const want of [50, 0]) {
  await c.config('RESETSTAT');
  const c0 = await cpu();
  const M = 100000;
  await drive(M, (k) => store.announce(req((k * 7919) % (N * P), want, 'none')));
  const c1 = await cpu();
  const stats = await c.info('commandstats');
  console.log(`numWant ${want}: CPU ${(((c1 - c0) * 1e6) / M).toFixed(1)} µs/announce`);
  for (const m of stats.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) if (m[1] !== 'info' && m[1] !== 'config') console.log(`  ${m[1]}: ${(Number(m[3]) / M).toFixed(2)} µs, ${(Number(m[2]) / M).toFixed(2)} calls`);
}
await store.close();
srv.kill();
