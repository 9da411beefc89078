/** Structured JSON-lines logger to stdout; small on purpose (the hot path never logs). */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export function createLogger(level: LogLevel, write: (line: string) => void = (l) => process.stdout.write(l)): Logger {
  const min = ORDER[level];
  const emit = (lvl: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[lvl] < min) return;
    const entry: Record<string, unknown> = { time: new Date().toISOString(), level: lvl, msg, ...fields };
    for (const [k, v] of Object.entries(entry)) {
      if (v instanceof Error) entry[k] = { name: v.name, message: v.message, stack: v.stack };
    }
    write(JSON.stringify(entry) + '\n');
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * Logs at most one line per `intervalMs` for one kind of event, with the number suppressed since
 * the last line: a store outage fails every request, and one line per request would drown the log.
 */
export function throttled(
  log: Logger,
  level: 'warn' | 'error',
  msg: string,
  intervalMs = 10_000,
  now: () => number = Date.now,
): (fields?: Record<string, unknown>) => void {
  let lastLogged = -Infinity;
  let suppressed = 0;
  return (fields) => {
    const t = now();
    if (t - lastLogged < intervalMs) {
      suppressed++;
      return;
    }
    lastLogged = t;
    log[level](msg, { ...fields, suppressedSinceLast: suppressed });
    suppressed = 0;
  };
}
