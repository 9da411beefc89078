/*
 * A real OpenTelemetry Collector for tests: the binary scripts/otel-collector.sh builds (OTLP
 * receiver, debug exporter), started with scripts/otelcol-config.yaml on a free loopback port, and
 * what its debug exporter prints (verbosity detailed) read back as spans and metrics.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '../../..');
const CONFIG = join(ROOT, 'scripts/otelcol-config.yaml');
const BUILD = 'bash scripts/otel-collector.sh build';

/** Where scripts/otel-collector.sh puts the collector (OTELCOL_BIN names another). */
export function collectorBinary(env: NodeJS.ProcessEnv = process.env): string {
  if (env.OTELCOL_BIN) return env.OTELCOL_BIN;
  const cache = env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(env.OTELCOL_DIR || join(cache, 'peertracker/otelcol-0.165.0'), 'otelcol-peertracker');
}

/**
 * Why collector tests cannot run here, or undefined when they can. Under CI=true always undefined:
 * a missing collector then fails the test (startTestCollector says how to build it).
 */
export function collectorSkipReason(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.CI === 'true' || existsSync(collectorBinary(env))) return undefined;
  return `no OpenTelemetry Collector at ${collectorBinary(env)}: build it with \`${BUILD}\` (needs Go, about 3 minutes)`;
}

export interface ReceivedSpan {
  service: string;
  scope: string;
  traceId: string;
  parentId: string;
  id: string;
  name: string;
  kind: string;
  attributes: Record<string, string>;
  /** span ids this span links to */
  links: string[];
}

export interface ReceivedPoint {
  service: string;
  metric: string;
  attributes: Record<string, string>;
  value: number;
}

export interface TestCollector {
  /** for OTEL_EXPORTER_OTLP_ENDPOINT */
  endpoint: string;
  /** everything received so far */
  spans(): ReceivedSpan[];
  points(): ReceivedPoint[];
  /** the collector's output, for a failure's message */
  output(): string;
  stop(): Promise<void>;
}

async function freeTcpPort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      s.close(() => (typeof addr === 'object' && addr !== null ? ok(addr.port) : fail(new Error('no port'))));
    });
  });
}

/** `key: Str(value)` → [key, value] (the debug exporter's attribute lines, after the arrow) */
function attribute(line: string): [string, string] | undefined {
  const m = /^\s*-> ([^:]+): \w+\((.*)\)$/.exec(line);
  return m === null ? undefined : [m[1], m[2]];
}

/** Spans and metric points from the debug exporter's detailed output. */
export function parseDebugOutput(text: string): { spans: ReceivedSpan[]; points: ReceivedPoint[] } {
  const spans: ReceivedSpan[] = [];
  const points: ReceivedPoint[] = [];
  let service = '';
  let scope = '';
  let section: 'resource' | 'span' | 'links' | 'point' | 'other' = 'other';
  let span: ReceivedSpan | undefined;
  let metric = '';
  let point: ReceivedPoint | undefined;
  for (const line of text.split('\n')) {
    let m: RegExpExecArray | null;
    if (/^Resource attributes:/.test(line)) section = 'resource';
    else if (/^(ResourceSpans|ResourceMetrics) #/.test(line)) service = '';
    else if ((m = /^InstrumentationScope (\S+)/.exec(line))) scope = m[1];
    else if (/^Span #\d+/.test(line)) {
      span = { service, scope, traceId: '', parentId: '', id: '', name: '', kind: '', attributes: {}, links: [] };
      spans.push(span);
      section = 'span';
    } else if (span !== undefined && section === 'span' && (m = /^\s+(Trace ID|Parent ID|ID|Name|Kind)\s+: ?(.*)$/.exec(line))) {
      const v = m[2].trim();
      if (m[1] === 'Trace ID') span.traceId = v;
      else if (m[1] === 'Parent ID') span.parentId = v;
      else if (m[1] === 'ID') span.id = v;
      else if (m[1] === 'Name') span.name = v;
      else span.kind = v;
    } else if (/^Links:/.test(line) || /^SpanLink #/.test(line)) section = 'links';
    else if (section === 'links' && span !== undefined && (m = /^\s+(?:-> )?ID: (\S+)/.exec(line))) span.links.push(m[1]);
    else if ((m = /^\s+-> Name: (\S+)/.exec(line))) {
      metric = m[1];
      span = undefined;
    } else if (/^(Number|Histogram)DataPoints #\d+/.test(line)) {
      point = { service, metric, attributes: {}, value: NaN };
      points.push(point);
      section = 'point';
    } else if (section === 'point' && point !== undefined && (m = /^(?:Value|Count): (\S+)/.exec(line))) point.value = Number(m[1]);
    else if (/^(Attributes|Data point attributes):/.test(line)) {
      if (section === 'links' || section === 'resource') section = span !== undefined ? 'span' : 'point';
    } else {
      const kv = attribute(line);
      if (kv === undefined) continue;
      if (section === 'resource') {
        if (kv[0] === 'service.name') service = kv[1];
        if (span === undefined && point === undefined) continue;
      } else if (section === 'span' && span !== undefined) span.attributes[kv[0]] = kv[1];
      else if (section === 'point' && point !== undefined) point.attributes[kv[0]] = kv[1];
    }
  }
  return { spans, points };
}

/** Starts the collector (OTLP over HTTP on a free 127.0.0.1 port) and waits until it accepts connections. */
export async function startTestCollector(env: NodeJS.ProcessEnv = process.env): Promise<TestCollector> {
  const bin = collectorBinary(env);
  if (!existsSync(bin)) throw new Error(`no OpenTelemetry Collector at ${bin}: build it with \`${BUILD}\` (needs Go, about 3 minutes)`);
  const port = await freeTcpPort();
  const out: string[] = [];
  const child: ChildProcess = spawn(bin, ['--config', `file:${CONFIG}`], {
    env: { PATH: env.PATH ?? '', OTLP_PORT: String(port), OTELCOL_VERBOSITY: 'detailed' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (b: Buffer) => out.push(b.toString()));
  child.stderr!.on('data', (b: Buffer) => out.push(b.toString()));
  const deadline = Date.now() + 15_000;
  while (!out.join('').includes('Everything is ready')) {
    if (child.exitCode !== null) throw new Error(`the collector exited (${child.exitCode}): ${out.join('').slice(-2000)}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the collector did not start within 15 s: ${out.join('').slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  let parsedAt = -1;
  let parsed = { spans: [] as ReceivedSpan[], points: [] as ReceivedPoint[] };
  const current = () => {
    if (parsedAt !== out.length) {
      parsed = parseDebugOutput(out.join(''));
      parsedAt = out.length;
    }
    return parsed;
  };
  return {
    endpoint: `http://127.0.0.1:${port}`,
    spans: () => current().spans,
    points: () => current().points,
    output: () => out.join(''),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}
