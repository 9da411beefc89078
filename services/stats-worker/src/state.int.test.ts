/* The atomic write of a batch on a real Redis Cluster: offsets, fencing, nothing counted twice. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { AnnounceEvent } from '@peertracker/events';
import { redisSkipReason, startRedisTestServer, type RedisTestServer } from '@peertracker/redis-store/dist/testing';
import { addEvents, emptyDelta } from './aggregate';
import { StatsState } from './state';
import { announceEvent } from './testing';

const skip = redisSkipReason('cluster') ?? false;
const T = Date.UTC(2026, 11, 2, 10, 0, 0);

function event(infoHash: Buffer, o: Partial<AnnounceEvent> = {}): AnnounceEvent {
  return announceEvent(infoHash, T, o);
}

describe('stats state in Redis', { skip }, () => {
  let redis: RedisTestServer;
  let state: StatsState;
  before(async () => {
    redis = await startRedisTestServer('cluster');
    state = new StatsState({ clusterNodes: redis.nodes }, `t${randomBytes(3).toString('hex')}:`);
    await state.connect();
  });
  after(async () => {
    await state?.close();
    await redis?.stop();
  });

  it('writes a batch with its offsets once; a replay is refused as stale, an old epoch as fenced', async () => {
    const h = randomBytes(20);
    const hex = h.toString('hex');
    const p = 3;
    const first = await state.claim(p);
    assert.deepEqual(first, { epoch: '1', offset: '' });
    const batch = addEvents(emptyDelta(), [
      event(h, { event: 'started', seeders: 4, leechers: 9 }),
      event(h, { time: T + 1000, event: 'completed', seeders: 5, leechers: 8 }),
      event(h, { time: T - 5000, seeders: 2, leechers: 20 }),
    ]);
    assert.deepEqual(await state.apply(p, first.epoch, '0', '3', batch), { status: 'ok' });
    const t = await state.client.hgetall(`${state.stem(p)}t:${hex}`);
    // the latest event's counts, the peaks over all, the earliest time as first seen
    assert.deepEqual(t, { a: '3', c: '1', s: '5', l: '8', ls: String(T + 1000), ps: '5', pl: '20', f: String(T - 5000) });
    // the same batch again (a redelivery): refused, nothing counted twice
    assert.deepEqual(await state.apply(p, first.epoch, '0', '3', batch), { status: 'stale', offset: '3' });
    assert.equal(await state.client.hget(`${state.stem(p)}t:${hex}`, 'a'), '3');
    // another worker takes the partition: the first is fenced off
    const second = await state.claim(p);
    assert.deepEqual(second, { epoch: '2', offset: '3' });
    const more = addEvents(emptyDelta(), [event(h, { time: T + 2000, seeders: 1, leechers: 30 })]);
    assert.deepEqual(await state.apply(p, first.epoch, '3', '4', more), { status: 'fenced', epoch: '2' });
    assert.deepEqual(await state.apply(p, second.epoch, '3', '4', more), { status: 'ok' });
    assert.deepEqual(await state.client.hmget(`${state.stem(p)}t:${hex}`, 'a', 's', 'l', 'pl'), ['4', '1', '30', '30']);
    // minutes, active torrents, clients per day; with TTLs
    const minute = T - (T % 60_000);
    assert.deepEqual(await state.client.hgetall(`${state.stem(p)}m:${minute}`), {
      announces: '3',
      'protocol:udp': '3',
      'event:started': '1',
      'event:completed': '1',
      'event:none': '1',
      'family:4': '3',
      active: '1',
    });
    assert.deepEqual(await state.client.smembers(`${state.stem(p)}ma:${minute}`), [hex]);
    assert.equal(await state.client.hget(`${state.stem(p)}c:2026-12-02`, 'qBittorrent 4.6.5'), '4');
    assert.ok((await state.client.ttl(`${state.stem(p)}m:${minute}`)) > 86400);
    assert.equal(await state.client.pfcount(`${state.stem(p)}u:${hex}:2026-12-02`), 4);
    // a torrent's days: one key per month, kept for the torrent-days retention (30 days), not
    // refreshed into forever by a torrent that stays active
    const month = `${state.stem(p)}hd:${hex}:2026-12`;
    assert.deepEqual(await state.client.hgetall(month), { '02:a': '4', '02:c': '1', '02:ps': '5', '02:pl': '30' });
    for (const k of [month, `${state.stem(p)}u:${hex}:2026-12-02`]) {
      const ttl = await state.client.ttl(k);
      assert.ok(ttl > 29 * 86400 && ttl <= 30 * 86400, `${k}: TTL ${ttl}`);
    }
  });

  it('keeps each partition under its own hash tag (one slot)', async () => {
    const slots = new Set<number>();
    const node = (state.client as import('ioredis').Cluster).nodes('master')[0];
    for (const k of ['epoch', 'offset', 't:00', 'm:0', 'c:2026-01-01']) slots.add(Number(await node.cluster('KEYSLOT', `${state.stem(7)}${k}`)));
    assert.equal(slots.size, 1);
  });

  it('rolls minutes up to hours and days; seals a period once events pass its end by the horizon; a late event still counts', async () => {
    const p = 5;
    const H = 3_600_000;
    const s = state.stem(p);
    const { epoch } = await state.claim(p);
    const [x, y] = [randomBytes(20), randomBytes(20)];
    const hour = T; // 10:00 UTC
    const day = Date.UTC(2026, 11, 2);
    let offset = 0;
    const write = async (events: AnnounceEvent[]) => {
      const r = await state.apply(p, epoch, String(offset), String(offset + 1), addEvents(emptyDelta(), events));
      assert.deepEqual(r, { status: 'ok' });
      offset++;
    };
    await write([event(x, { event: 'started' }), event(x, { time: T + 61_000 }), event(y, { time: T + 59 * 60_000, protocol: 'http' })]);
    await write([event(x, { time: T + H + 5000, event: 'completed' })]);
    assert.deepEqual(await state.roll(p, H), []);
    const counters = async (k: string) => {
      const { sealed, ...rest } = await state.client.hgetall(`${s}${k}`);
      return { ...rest, ...(sealed ? { sealed } : {}) };
    };
    assert.deepEqual(await counters(`h:${hour}`), { announces: '3', 'protocol:udp': '2', 'protocol:http': '1', 'event:started': '1', 'event:none': '2', 'family:4': '3', active: '2' });
    assert.deepEqual(await counters(`d:${day}`), { announces: '4', 'protocol:udp': '3', 'protocol:http': '1', 'event:started': '1', 'event:none': '2', 'event:completed': '1', 'family:4': '4', active: '2' });
    assert.equal(await state.client.hget(`${s}h:${hour + H}`, 'active'), '1');
    // (rolling again changes nothing)
    await state.roll(p, H);
    assert.equal(await state.client.hget(`${s}d:${day}`, 'announces'), '4');

    // events pass 11:00 by the horizon: 10:00-11:00 is sealed, its torrent sets deleted
    await write([event(y, { time: T + 2 * H + 1000 })]);
    assert.deepEqual(await state.roll(p, H), []);
    assert.equal(await state.client.hget(`${s}h:${hour}`, 'sealed'), '1');
    assert.equal(await state.client.exists(`${s}ma:${T}`, `${s}ma:${T + 60_000}`, `${s}ha:${hour}`), 0);
    assert.equal(await state.client.exists(`${s}ha:${hour + H}`), 1);
    // a late event for the sealed hour: in every counter, and in late, but not in active
    await write([event(randomBytes(20), { time: T + 30 * 60_000, event: 'stopped' })]);
    await state.roll(p, H);
    assert.deepEqual(await counters(`h:${hour}`), {
      announces: '4', 'protocol:udp': '3', 'protocol:http': '1', 'event:started': '1', 'event:none': '2', 'event:stopped': '1', 'family:4': '4', active: '2', late: '1', sealed: '1',
    });
    // (the day is not sealed: the late torrent is new to it)
    assert.deepEqual(await counters(`d:${day}`), {
      announces: '6', 'protocol:udp': '5', 'protocol:http': '1', 'event:started': '1', 'event:none': '3', 'event:completed': '1', 'event:stopped': '1', 'family:4': '6', active: '3',
    });

    // the partition has nothing left to consume and the others are at the next day: the day is sealed
    assert.deepEqual(await state.roll(p, H, day + 86_400_000 + 2 * H), [day]);
    assert.equal(await state.client.hget(`${s}d:${day}`, 'sealed'), '1');
    assert.equal(await state.client.exists(`${s}da:${day}`, `${s}ha:${hour + H}`), 0);
    assert.equal(await state.client.zcard(`${s}open`), 0);
    // a late event for an hour of the sealed day that had no events: into that hour and the day,
    // with late, and nothing opened again
    await write([event(randomBytes(20), { time: day + 5 * H + 1000 })]);
    await state.roll(p, H);
    assert.deepEqual(await state.client.hmget(`${s}d:${day}`, 'announces', 'late', 'active'), ['7', '1', '3']);
    assert.deepEqual(await state.client.hmget(`${s}h:${day + 5 * H}`, 'announces', 'late', 'active'), ['1', '1', null]);
    assert.equal(await state.client.zcard(`${s}open`), 0);
    assert.equal(await state.client.exists(`${s}ma:${day + 5 * H}`, `${s}ha:${day + 5 * H}`, `${s}da:${day}`), 0);
    assert.equal(await state.client.ttl(`${s}d:${day}`) > 300 * 86400, true);
    // the rankings of the day, for the top lists
    assert.deepEqual(await state.client.zrevrange(`${s}za:2026-12-02`, 0, 1, 'WITHSCORES'), [x.toString('hex'), '3', y.toString('hex'), '2']);
    assert.deepEqual(await state.client.zrange(`${s}zc:2026-12-02`, '0', '-1', 'WITHSCORES'), [x.toString('hex'), '1']);
    assert.deepEqual(await state.partitions(), [3, 5]);
  });
});
