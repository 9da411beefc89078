// What the Redis benchmarks read from the servers (INFO) and the reference they compare with:
// shared by bench/run.mjs (the gateway on a cluster), bench/redis-cluster.mjs and bench/redis-swarm.mjs (the store alone).
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import os from 'node:os';

export function infoField(text, name) {
  const m = new RegExp(`^${name}:([0-9.]+)`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

/** Pins every thread of `pid` to `cpu` (taskset); false when that is not possible. */
export function pin(pid, cpu) {
  return spawnSync('taskset', ['-a', '-pc', String(cpu), String(pid)], { stdio: 'ignore' }).status === 0;
}

/**
 * Gives `pid` the highest ordinary priority (nice -20), so that other processes on its core
 * rarely preempt it and a call's wall time (SLOWLOG) is mostly its work. (A real-time policy,
 * SCHED_FIFO, did no better, and a busy real-time task is throttled for up to 50 ms a second.)
 * False when that is not possible (needs CAP_SYS_NICE).
 */
export function highPriority(pid) {
  return spawnSync('renice', ['-n', '-20', '-p', String(pid)], { stdio: 'ignore' }).status === 0;
}

/**
 * Pins every Redis node (masters and replicas) to core 0 and this process to core 1, so the
 * client's CPU does not count as Redis's. `connect()` opens a store whose ioredis Cluster
 * `client` finds the nodes; it is closed after. False with fewer than two cores (nothing opened)
 * or when any pin failed. replicasWithClient: the replicas go to core 1 instead, so that a
 * master has its core to itself and a call's wall time (SLOWLOG) is its own work: a replica
 * applies what its master wrote, about as much CPU, and on one core the scheduler let a master
 * wait 3-6 ms behind it now and then, whatever the call. priorityMasters: see highPriority().
 */
export async function pinRedisApart(connect, { replicasWithClient = false, priorityMasters = false } = {}) {
  if (os.cpus().length < 2) return false;
  const probe = await connect();
  let pinned = true;
  for (const n of probe.client.nodes('master')) {
    const pid = infoField(await n.info('server'), 'process_id');
    pinned = pin(pid, 0) && pinned;
    if (priorityMasters) pinned = highPriority(pid) && pinned;
  }
  for (const n of probe.client.nodes('slave')) {
    pinned = pin(infoField(await n.info('server'), 'process_id'), replicasWithClient ? 1 : 0) && pinned;
  }
  pinned = pin(process.pid, 1) && pinned;
  await probe.close();
  return pinned;
}

/** Pids of the given ioredis node clients (INFO server), or null for one that is not local. */
export async function serverPids(nodes) {
  return Promise.all(nodes.map(async (n) => infoField(await n.info('server'), 'process_id') || null));
}

/**
 * Summed over the nodes: CPU seconds (used_cpu_sys + used_cpu_user), used_memory bytes, and per
 * command the calls and microseconds of INFO commandstats.
 */
export async function nodesSnapshot(nodes) {
  let cpu = 0;
  let mem = 0;
  const cmds = {};
  for (const m of nodes) {
    for (const [, name, calls, usec] of (await m.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
      const c = (cmds[name] ??= { calls: 0, usec: 0 });
      c.calls += Number(calls);
      c.usec += Number(usec);
    }
    const cpuInfo = await m.info('cpu');
    cpu += infoField(cpuInfo, 'used_cpu_sys') + infoField(cpuInfo, 'used_cpu_user');
    mem += infoField(await m.info('memory'), 'used_memory');
  }
  return { cpu, mem, cmds };
}

/** Runs fn(i) for i in [0, count) with at most `inflight` outstanding, or until the deadline. */
export async function drive(count, inflight, fn, deadline = Infinity) {
  let next = 0;
  let done = 0;
  async function worker() {
    while (next < count && Date.now() < deadline) {
      const i = next++;
      await fn(i);
      done++;
    }
  }
  await Promise.all(Array.from({ length: inflight }, worker));
  return done;
}

/**
 * The reference of the Redis figures (DESIGN.md, "Facts measured here"): Redis CPU per call of an
 * EVALSHA that does nothing, over one hash-tagged key per swarm and one 90-byte argument (the
 * shape of an announce), driven for `seconds` with `inflight` calls outstanding. The machines are
 * shared and noisy, so the announce figures are quoted beside this one from the same run.
 */
export async function trivialEvalshaCost(client, masters, { torrents, seconds = 5, inflight = 512, prefix = 'bench-ref:' }) {
  client.defineCommand('benchTrivial', { numberOfKeys: 1, lua: 'return 1' });
  const hexes = Array.from({ length: Math.min(torrents, 20_000) }, () => randomBytes(20).toString('hex'));
  const arg = randomBytes(90);
  const call = (k) => client.benchTrivial(`${prefix}{${hexes[(k * 7919) % hexes.length]}}:s`, arg);
  await drive(2000, inflight, call);
  const before = await nodesSnapshot(masters);
  const t0 = Date.now();
  const calls = await drive(Number.MAX_SAFE_INTEGER, inflight, call, t0 + seconds * 1000);
  const after = await nodesSnapshot(masters);
  return { calls, perSecond: Math.round(calls / ((Date.now() - t0) / 1000)), cpuUs: ((after.cpu - before.cpu) * 1e6) / calls };
}
