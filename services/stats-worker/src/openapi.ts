/*
 * The stats API's OpenAPI document: served at /openapi.json, and the one source of its request
 * validation (express-openapi-validator checks every request against it, so a parameter the
 * document does not allow gets a 400 naming it).
 */
import { POINT_FIELDS } from './read';

const int = { type: 'integer', minimum: 0 } as const;
const format = {
  name: 'format',
  in: 'query',
  description: 'json (default) or csv (the same rows, with a header line)',
  schema: { type: 'string', enum: ['json', 'csv'], default: 'json' },
} as const;
const limit = (max: number, dflt: number) => ({ name: 'limit', in: 'query', description: `rows per page (1 to ${max})`, schema: { type: 'integer', minimum: 1, maximum: max, default: dflt } }) as const;
const offset = { name: 'offset', in: 'query', description: 'rows to skip (pagination)', schema: { type: 'integer', minimum: 0, maximum: 100000, default: 0 } } as const;
const day = (description: string) => ({ name: 'day', in: 'query', description, schema: { type: 'string', format: 'date' } }) as const;
const infoHash = { name: 'infoHash', in: 'path', required: true, description: 'the info hash, 40 hex digits', schema: { type: 'string', pattern: '^[0-9a-fA-F]{40}$' } } as const;
const nextOffset = { type: 'integer', nullable: true, description: 'the offset of the next page; null on the last' } as const;

const error = {
  description: 'the request is not valid (the message says which parameter and why)',
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
} as const;

const busy = {
  description: 'too many requests are being answered (STATS_API_MAX_INFLIGHT); try again after Retry-After seconds',
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
} as const;

function table(schema: string, description: string) {
  return {
    description,
    content: {
      'application/json': { schema: { $ref: `#/components/schemas/${schema}` } },
      'text/csv': { schema: { type: 'string' } },
    },
  };
}

export const openApiDocument = {
  openapi: '3.0.3',
  info: {
    title: 'PeerTracker stats API',
    version: '1.0.0',
    description:
      'Aggregate statistics of the announces PeerTracker gateways answered: exact counts (each announce counted once), ' +
      'except uniquePeers, a HyperLogLog estimate. Times are UTC. Hour and day points are rolled up from minutes by a ' +
      'scheduled job (every 30 s by default), top lists every minute.',
  },
  paths: {
    '/v1/series': {
      get: {
        summary: 'Global time series: announces by protocol, event and address family, active torrents',
        parameters: [
          { name: 'resolution', in: 'query', schema: { type: 'string', enum: ['minute', 'hour', 'day'], default: 'minute' } },
          // (allowReserved: a time as people type it, 2026-12-02T10:00:00Z, with its colons)
          { name: 'from', in: 'query', required: true, allowReserved: true, description: 'start (inclusive; rounded down to the resolution)', schema: { type: 'string', format: 'date-time' } },
          { name: 'to', in: 'query', allowReserved: true, description: 'end (exclusive; default now); a `to` not after `from` gives no points', schema: { type: 'string', format: 'date-time' } },
          limit(1440, 60),
          format,
        ],
        responses: { '200': table('Series', 'points from `from`, one per period, `limit` at most'), '400': error, '503': busy },
      },
    },
    '/v1/top': {
      get: {
        summary: 'The top torrents of a day, by announces or by completions',
        parameters: [
          { name: 'by', in: 'query', schema: { type: 'string', enum: ['announces', 'completions'], default: 'announces' } },
          day('the UTC day (default today)'),
          limit(1000, 50),
          offset,
          format,
        ],
        responses: { '200': table('Top', 'the list as the last top job made it'), '400': error, '503': busy },
      },
    },
    '/v1/torrents/{infoHash}': {
      get: {
        summary: 'One torrent: totals, and its latest and peak seeders and leechers',
        parameters: [infoHash],
        responses: {
          '200': { description: 'the torrent', content: { 'application/json': { schema: { $ref: '#/components/schemas/Torrent' } } } },
          '400': error,
          '404': { description: 'no announce of this torrent was counted (or its statistics expired)', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
          '503': busy,
        },
      },
    },
    '/v1/torrents/{infoHash}/history': {
      get: {
        summary: "One torrent's days",
        parameters: [
          infoHash,
          { name: 'from', in: 'query', description: 'the first UTC day (default 29 days before to)', schema: { type: 'string', format: 'date' } },
          { name: 'to', in: 'query', description: 'the last UTC day, inclusive (default today)', schema: { type: 'string', format: 'date' } },
          limit(366, 31),
          format,
        ],
        responses: { '200': table('History', 'one row per day, from `from`, `limit` at most'), '400': error, '503': busy },
      },
    },
    '/v1/clients': {
      get: {
        summary: 'Client software of a day: announces per client name and version',
        parameters: [day('the UTC day (default today)'), limit(1000, 100), offset, format],
        responses: { '200': table('Clients', 'clients by announces, most first'), '400': error, '503': busy },
      },
    },
  },
  components: {
    schemas: {
      Error: {
        type: 'object',
        required: ['error'],
        properties: { error: { type: 'object', required: ['status', 'message'], properties: { status: int, message: { type: 'string' } } } },
      },
      Point: {
        type: 'object',
        required: ['time', ...POINT_FIELDS.map(([name]) => name)],
        properties: {
          time: { type: 'string', format: 'date-time', description: 'the start of the period' },
          ...Object.fromEntries(POINT_FIELDS.map(([name]) => [name, int])),
        },
      },
      Series: {
        type: 'object',
        required: ['resolution', 'points', 'next'],
        properties: {
          resolution: { type: 'string', enum: ['minute', 'hour', 'day'] },
          points: { type: 'array', items: { $ref: '#/components/schemas/Point' } },
          next: { type: 'string', nullable: true, format: 'date-time', description: 'the `from` of the next page; null on the last' },
        },
      },
      TopEntry: {
        type: 'object',
        required: ['rank', 'infoHash', 'announces', 'completions'],
        properties: { rank: { type: 'integer', minimum: 1 }, infoHash: { type: 'string' }, announces: int, completions: int },
      },
      Top: {
        type: 'object',
        required: ['day', 'by', 'updatedAt', 'final', 'total', 'torrents', 'next'],
        properties: {
          day: { type: 'string', format: 'date' },
          by: { type: 'string', enum: ['announces', 'completions'] },
          updatedAt: { type: 'string', nullable: true, format: 'date-time', description: 'when the list was made; null when there is none yet' },
          final: { type: 'boolean', description: 'made after the day was sealed: it changes no more' },
          total: { ...int, description: 'entries in the list (STATS_TOP_N at most)' },
          torrents: { type: 'array', items: { $ref: '#/components/schemas/TopEntry' } },
          next: nextOffset,
        },
      },
      Torrent: {
        type: 'object',
        required: ['infoHash', 'announces', 'completions', 'seeders', 'leechers', 'peakSeeders', 'peakLeechers', 'firstSeen', 'lastSeen'],
        properties: {
          infoHash: { type: 'string' },
          announces: int,
          completions: int,
          seeders: { ...int, description: 'as answered to its latest announce' },
          leechers: { ...int, description: 'as answered to its latest announce' },
          peakSeeders: int,
          peakLeechers: int,
          firstSeen: { type: 'string', format: 'date-time' },
          lastSeen: { type: 'string', format: 'date-time' },
        },
      },
      Day: {
        type: 'object',
        required: ['day', 'announces', 'completions', 'peakSeeders', 'peakLeechers', 'uniquePeers'],
        properties: {
          day: { type: 'string', format: 'date' },
          announces: int,
          completions: int,
          peakSeeders: int,
          peakLeechers: int,
          uniquePeers: { ...int, description: 'an estimate (HyperLogLog, about 0.8 % standard error)' },
        },
      },
      History: {
        type: 'object',
        required: ['infoHash', 'days', 'next'],
        properties: {
          infoHash: { type: 'string' },
          days: { type: 'array', items: { $ref: '#/components/schemas/Day' } },
          next: { type: 'string', nullable: true, format: 'date', description: 'the `from` of the next page; null on the last' },
        },
      },
      Client: {
        type: 'object',
        required: ['client', 'announces', 'share'],
        properties: { client: { type: 'string' }, announces: int, share: { type: 'number', minimum: 0, maximum: 1 } },
      },
      Clients: {
        type: 'object',
        required: ['day', 'total', 'clients', 'next'],
        properties: {
          day: { type: 'string', format: 'date' },
          total: { ...int, description: 'announces of the day' },
          clients: { type: 'array', items: { $ref: '#/components/schemas/Client' } },
          next: nextOffset,
        },
      },
    },
  },
};
