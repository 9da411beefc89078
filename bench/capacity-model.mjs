// A capacity model of cluster mode (README, "Capacity model"): the cores of gateways and of Redis
// masters that a given announce rate needs, from per-announce costs measured by `npm run bench`,
// and what a heavy-tailed spread of announces over swarms does to the busiest master.
//
//   node bench/capacity-model.mjs [--gateway-us 48] [--redis-us 30] [--utilization 0.6]
//                                 [--swarms 5000000] [--alpha 1.2] [--max-peers 1000000]
//                                 [--interval 1800] [--masters-max 64] [--seed 1] [--json]
//
// Swarm sizes follow a Pareto (power) law: P(size > x) ~ x^-alpha from 1 peer up to --max-peers
// (public trackers: millions of swarms of a few peers, a few of 10^5 to 10^6). A swarm's announce
// rate is proportional to its size (at one announce per --interval seconds per peer that gives
// the base rate); each target rate is reached by every peer announcing proportionally more often
// (clients that ignore the interval, retry, or run several sessions), which is the pessimistic
// case for hot swarms: the largest swarm's rate grows with the total. A swarm lives on one hash slot (its keys share a hash tag), slots are spread evenly
// over the masters (redis-cli --cluster create does that), and a master is one core: its busy
// share is its announces/s x redis-us. The busiest master, not the mean, sets how many are needed.
import { parseArgs } from 'node:util';

const { values: o } = parseArgs({
  options: {
    'gateway-us': { type: 'string', default: '48' },
    'redis-us': { type: 'string', default: '30' },
    utilization: { type: 'string', default: '0.6' },
    swarms: { type: 'string', default: '5000000' },
    alpha: { type: 'string', default: '1.2' },
    'max-peers': { type: 'string', default: '1000000' },
    interval: { type: 'string', default: '1800' },
    'masters-max': { type: 'string', default: '128' },
    seed: { type: 'string', default: '1' },
    json: { type: 'boolean', default: false },
  },
});
const num = (k) => {
  const v = Number(o[k]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${k} must be a positive number (got ${o[k]})`);
  return v;
};
const gatewayUs = num('gateway-us');
const redisUs = num('redis-us');
const utilization = num('utilization');
const swarmCount = Math.round(num('swarms'));
const alpha = num('alpha');
const maxPeers = num('max-peers');
const interval = num('interval');
const mastersMax = Math.round(num('masters-max'));
const SLOTS = 16384;

// a seeded PRNG (mulberry32), so that a run can be repeated
let state = Math.round(num('seed')) >>> 0;
function random() {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

/** swarm sizes: Pareto with index alpha from 1, cut at maxPeers (inverse transform) */
const sizes = new Float64Array(swarmCount);
let peers = 0;
for (let i = 0; i < swarmCount; i++) {
  sizes[i] = Math.min(maxPeers, Math.floor(Math.pow(1 - random(), -1 / alpha)));
  peers += sizes[i];
}
const baseRate = peers / interval;
/** announces/s on each slot at the base rate */
const slotRate = new Float64Array(SLOTS);
let hottest = 0;
for (let i = 0; i < swarmCount; i++) {
  slotRate[Math.floor(random() * SLOTS)] += sizes[i] / interval;
  hottest = Math.max(hottest, sizes[i]);
}

/** the busiest master's share of all announces with m masters over even slot ranges */
function busiestShare(m) {
  let max = 0;
  for (let k = 0; k < m; k++) {
    let sum = 0;
    for (let s = Math.floor((k * SLOTS) / m); s < Math.floor(((k + 1) * SLOTS) / m); s++) sum += slotRate[s];
    max = Math.max(max, sum);
  }
  return max / baseRate;
}

const rows = [];
for (const rate of [100_000, 250_000, 500_000, 1_000_000]) {
  const gatewayCores = (rate * gatewayUs) / 1e6 / utilization;
  const redisBusy = (rate * redisUs) / 1e6;
  let masters;
  let share;
  for (masters = 1; masters <= mastersMax; masters++) {
    share = busiestShare(masters);
    if (rate * share * redisUs * 1e-6 <= utilization) break;
  }
  const fits = masters <= mastersMax;
  rows.push({
    rate,
    gatewayCores: Math.ceil(gatewayCores),
    redisCoresBusy: redisBusy,
    masters: fits ? masters : null,
    busiestOverMean: fits ? share * masters : null,
    hottestSwarmPerS: (hottest / interval) * (rate / baseRate),
    hottestSwarmMasterShare: ((hottest / interval) * (rate / baseRate) * redisUs) / 1e6,
  });
}

const result = {
  inputs: { gatewayUs, redisUs, utilization, swarms: swarmCount, alpha, maxPeers, interval },
  base: { peers, announcesPerS: baseRate, hottestSwarmPeers: hottest },
  rows,
};
if (o.json) {
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
} else {
  const f = (x, d = 0) => x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
  process.stdout.write(
    `${f(swarmCount)} swarms, Pareto alpha ${alpha} (1 to ${f(maxPeers)} peers): ${f(peers)} peers, ${f(baseRate)} announces/s at one per ${interval} s; ` +
      `the largest swarm ${f(hottest)} peers. Gateway ${gatewayUs} µs, Redis ${redisUs} µs per announce, every core at most ${utilization * 100} % busy.\n\n` +
      '| announces/s | gateway cores | Redis busy cores (mean) | masters needed (busiest ≤ target) | busiest / mean master | largest swarm announces/s | its share of one master |\n' +
      '|---:|---:|---:|---:|---:|---:|---:|\n' +
      rows
        .map((r) => `| ${f(r.rate)} | ${r.gatewayCores} | ${f(r.redisCoresBusy, 1)} | ${r.masters ?? `> ${mastersMax}`} | ${r.busiestOverMean === null ? '-' : f(r.busiestOverMean, 2)} | ${f(r.hottestSwarmPerS)} | ${f(100 * r.hottestSwarmMasterShare, 1)} % |`)
        .join('\n') +
      '\n',
  );
}
