/*
 * The stats API (express), a process of its own (api-main.ts): it only reads Redis, so analysts'
 * load scales it by replicas apart from the workers, whose number the topic's partitions bound,
 * and it keeps answering while the workers rebalance. Its routes are documented by
 * openapi.ts, which also validates every request.
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import * as OpenApiValidator from 'express-openapi-validator';
import { DAY_MS, utcDay } from './aggregate';
import { openApiDocument } from './openapi';
import { POINT_FIELDS, STEP_MS, type Resolution, type StatsReader } from './read';

/** A client error with its status (400 unless said). */
class ApiError extends Error {
  constructor(
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

type Row = Record<string, string | number | boolean | null>;

function csvCell(v: string | number | boolean | null): string {
  const s = v === null ? '' : String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** JSON as it is, or the rows as CSV with a header line of `columns`. */
function send(req: Request, res: Response, body: unknown, rows: Row[], columns: readonly string[]): void {
  if (req.query.format === 'csv') {
    const lines = [columns.join(','), ...rows.map((r) => columns.map((c) => csvCell(r[c] ?? null)).join(','))];
    res.type('text/csv; charset=utf-8').send(`${lines.join('\r\n')}\r\n`);
  } else {
    res.json(body);
  }
}

/** (the validator has checked the format; this makes the time, and refuses what Date cannot hold) */
function time(name: string, v: unknown): number {
  const t = Date.parse(String(v));
  if (!Number.isFinite(t)) throw new ApiError(`${name} is not a time this API can use: ${String(v)}`);
  return t;
}

/** a UTC day's start; a day the calendar does not have (2026-02-30) is refused, not moved on */
function dayStart(name: string, v: unknown): number {
  const t = time(name, `${String(v)}T00:00:00Z`);
  if (utcDay(t) !== String(v)) throw new ApiError(`${name} must be a calendar day (YYYY-MM-DD; got ${String(v)})`);
  return t;
}

export interface ApiOptions {
  reader: StatsReader;
  /**
   * requests answered at once at most; more get a 503 with Retry-After (a page of minutes reads
   * up to 1,440 hashes per partition: a flood of them would take Redis from the workers)
   */
  maxInFlight?: number;
  /** answers GET /health (false: 503) */
  ready?: () => boolean;
  /** the text of GET /metrics, when metrics are kept */
  metrics?: () => Promise<{ contentType: string; text: string }>;
  now?: () => number;
  /** told of every answer: the route's pattern ('other' when none matched) and the status */
  answered?: (route: string, status: number) => void;
}

export function createApi(o: ApiOptions): express.Express {
  const { reader } = o;
  const now = o.now ?? Date.now;
  const app = express();
  app.disable('x-powered-by');
  if (o.answered) {
    const answered = o.answered;
    app.use((req, res, next) => {
      res.once('finish', () => answered(req.route?.path ?? 'other', res.statusCode));
      next();
    });
  }
  app.get('/openapi.json', (_req, res) => {
    res.json(openApiDocument);
  });
  app.get('/health/live', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/health', (_req, res) => {
    const ok = o.ready?.() ?? true;
    res.status(ok ? 200 : 503).json({ status: ok ? 'ok' : 'not ready' });
  });
  if (o.metrics) {
    const metrics = o.metrics;
    app.get('/metrics', (_req, res, next) => {
      metrics().then(({ contentType, text }) => void res.type(contentType).send(text), next);
    });
  }
  const maxInFlight = o.maxInFlight ?? 32;
  let inFlight = 0;
  app.use('/v1', (_req, res, next) => {
    if (inFlight >= maxInFlight) {
      res.set('Retry-After', '1').status(503).json({ error: { status: 503, message: `busy: ${maxInFlight} requests are being answered; try again in a second` } });
      return;
    }
    inFlight++;
    let done = false;
    const release = () => {
      if (!done) {
        done = true;
        inFlight--;
      }
    };
    res.once('finish', release);
    res.once('close', release);
    next();
  });
  app.use(
    OpenApiValidator.middleware({
      // (a deep copy: the validator annotates the document it is given)
      apiSpec: structuredClone(openApiDocument) as never,
      validateRequests: { allowUnknownQueryParameters: false, coerceTypes: true },
      validateResponses: false,
      validateFormats: true,
    }),
  );

  app.get('/v1/series', async (req, res) => {
    const resolution = (req.query.resolution ?? 'minute') as Resolution;
    const step = STEP_MS[resolution];
    const limit = Number(req.query.limit ?? 60);
    let from = time('from', req.query.from);
    from -= ((from % step) + step) % step;
    const to = req.query.to === undefined ? now() : time('to', req.query.to);
    // (a range that ends before it starts is empty: no points, no next page)
    const count = Math.max(0, Math.min(limit, Math.ceil((to - from) / step)));
    const points = await reader.series(resolution, from, count);
    const nextFrom = from + count * step;
    const body = { resolution, points, next: nextFrom < to ? new Date(nextFrom).toISOString() : null };
    send(req, res, body, points as unknown as Row[], ['time', ...POINT_FIELDS.map(([n]) => n)]);
  });

  app.get('/v1/top', async (req, res) => {
    const by = (req.query.by ?? 'announces') as 'announces' | 'completions';
    const day = req.query.day === undefined ? utcDay(now()) : utcDay(dayStart('day', req.query.day));
    const limit = Number(req.query.limit ?? 50);
    const offset = Number(req.query.offset ?? 0);
    const list = await reader.top(by, day);
    const all = list?.torrents ?? [];
    const torrents = all.slice(offset, offset + limit).map((t, i) => ({ rank: offset + i + 1, ...t }));
    const body = {
      day,
      by,
      updatedAt: list ? new Date(list.updatedAt).toISOString() : null,
      final: list?.final ?? false,
      total: all.length,
      torrents,
      next: offset + limit < all.length ? offset + limit : null,
    };
    send(req, res, body, torrents, ['rank', 'infoHash', 'announces', 'completions']);
  });

  app.get('/v1/torrents/:infoHash', async (req, res) => {
    const t = await reader.torrent(String(req.params.infoHash).toLowerCase());
    if (t === undefined) throw new ApiError('no announce of this torrent was counted (or its statistics expired)', 404);
    res.json(t);
  });

  app.get('/v1/torrents/:infoHash/history', async (req, res) => {
    const infoHash = String(req.params.infoHash).toLowerCase();
    const today = now();
    const to = req.query.to === undefined ? today - (today % DAY_MS) : dayStart('to', req.query.to);
    const from = req.query.from === undefined ? to - 29 * DAY_MS : dayStart('from', req.query.from);
    const limit = Number(req.query.limit ?? 31);
    // (from after to: no days)
    const count = Math.max(0, Math.min(limit, (to - from) / DAY_MS + 1));
    const days = await reader.history(infoHash, from, count);
    const nextFrom = from + count * DAY_MS;
    const body = { infoHash, days, next: nextFrom <= to ? utcDay(nextFrom) : null };
    send(req, res, body, days as unknown as Row[], ['day', 'announces', 'completions', 'peakSeeders', 'peakLeechers', 'uniquePeers']);
  });

  app.get('/v1/clients', async (req, res) => {
    const day = req.query.day === undefined ? utcDay(now()) : utcDay(dayStart('day', req.query.day));
    const limit = Number(req.query.limit ?? 100);
    const offset = Number(req.query.offset ?? 0);
    const { total, clients } = await reader.clients(day);
    const page = clients.slice(offset, offset + limit);
    const body = { day, total, clients: page, next: offset + limit < clients.length ? offset + limit : null };
    send(req, res, body, page as unknown as Row[], ['client', 'announces', 'share']);
  });

  // errors: the validator's (with their status), ours, and anything else as a 500 without details
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const e = err as { status?: number; message?: string; errors?: { path?: string; message?: string }[] };
    const status = typeof e.status === 'number' && e.status >= 400 && e.status < 500 ? e.status : 500;
    let message = status === 500 ? 'internal error' : (e.message ?? 'bad request');
    if (status !== 500 && Array.isArray(e.errors) && e.errors.length > 0) {
      message = e.errors.map((x) => `${x.path ?? ''} ${x.message ?? ''}`.trim()).join('; ');
    }
    if (status === 500) process.stderr.write(`stats-api: ${String((err as Error)?.stack ?? err)}\n`);
    // (every route is GET: RFC 9110 asks a 405 to say so)
    if (status === 405) res.set('Allow', 'GET, HEAD');
    res.status(status).json({ error: { status, message } });
  });
  return app;
}
