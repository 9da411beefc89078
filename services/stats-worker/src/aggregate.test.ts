import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeClient, type AnnounceEvent } from '@peertracker/events';
import { addEvents, emptyDelta, utcDay } from './aggregate';

const T = Date.UTC(2026, 11, 2, 23, 59, 30);
const A = Buffer.alloc(20, 1);
const B = Buffer.alloc(20, 2);

function ev(o: Partial<AnnounceEvent>): AnnounceEvent {
  return {
    time: T,
    infoHash: A,
    peerKey: Buffer.alloc(8, 9),
    event: 'none',
    left: 0,
    uploaded: 0,
    downloaded: 0,
    protocol: 'http',
    family: 4,
    client: decodeClient(Buffer.from('-TR4060-abcdefghijkl')),
    seeders: 0,
    leechers: 0,
    ...o,
  };
}

test('per torrent: announces, completions, the latest counts, peaks, first seen; per day too', () => {
  const d = addEvents(emptyDelta(), [
    ev({ event: 'started', seeders: 3, leechers: 10 }),
    ev({ time: T + 40_000, event: 'completed', seeders: 4, leechers: 9, peerKey: Buffer.alloc(8, 1) }),
    // an earlier time arriving later: counted, but not the latest
    ev({ time: T - 10_000, seeders: 1, leechers: 30 }),
    ev({ infoHash: B, protocol: 'udp', family: 6 }),
  ]);
  assert.equal(d.events, 4);
  const a = d.torrents.get(A.toString('hex'))!;
  assert.deepEqual(
    { ...a, days: [...a.days].map(([day, x]) => [day, { ...x, peers: [...x.peers].sort() }]) },
    {
      announces: 3,
      completed: 1,
      seeders: 4,
      leechers: 9,
      lastTime: T + 40_000,
      peakSeeders: 4,
      peakLeechers: 30,
      firstTime: T - 10_000,
      // the second announce is on the next UTC day
      days: [
        ['2026-12-02', { announces: 2, completed: 0, peakSeeders: 3, peakLeechers: 30, peers: ['0909090909090909'] }],
        ['2026-12-03', { announces: 1, completed: 1, peakSeeders: 4, peakLeechers: 9, peers: ['0101010101010101'] }],
      ],
    },
  );
});

test('per minute and per day: by protocol, event and family; active torrents; clients', () => {
  const d = addEvents(emptyDelta(), [ev({ event: 'started' }), ev({ infoHash: B, protocol: 'udp', family: 6 }), ev({ time: T + 40_000, event: 'completed' })]);
  const m0 = T - (T % 60_000);
  assert.deepEqual(Object.fromEntries(d.minutes.get(m0)!), {
    announces: 2,
    'protocol:http': 1,
    'protocol:udp': 1,
    'event:started': 1,
    'event:none': 1,
    'family:4': 1,
    'family:6': 1,
  });
  assert.deepEqual([...d.active.get(m0)!].sort(), [A.toString('hex'), B.toString('hex')]);
  assert.deepEqual([...d.active.get(m0 + 60_000)!], [A.toString('hex')]);
  // the hours and days: the second minute is the next day's first
  const h0 = T - (T % 3_600_000);
  assert.deepEqual([...d.activeHours.keys()], [h0, h0 + 3_600_000]);
  assert.deepEqual([...d.activeHours.get(h0)!].sort(), [A.toString('hex'), B.toString('hex')]);
  assert.deepEqual([...d.activeDays.keys()], [Date.UTC(2026, 11, 2), Date.UTC(2026, 11, 3)]);
  assert.equal(d.maxTime, T + 40_000);
  assert.deepEqual(Object.fromEntries(d.clients.get('2026-12-02')!), { 'Transmission 4.0.6': 2 });
  assert.deepEqual(Object.fromEntries(d.clients.get('2026-12-03')!), { 'Transmission 4.0.6': 1 });
  assert.equal(utcDay(Date.UTC(2026, 0, 1)), '2026-01-01');
});
