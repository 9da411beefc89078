/*
 * Which OpenTelemetry a service runs, from the standard OTEL_* variables, checked once at start:
 * a bad value stops the service with a message naming the variable, as the services' own
 * configuration does (the SDK itself would log a warning and carry on with a default).
 */

export class TelemetryConfigError extends Error {
  override readonly name = 'TelemetryConfigError';
}

/**
 * The default trace ratio (OTEL_TRACES_SAMPLER unset): one request in 10,000. Measured in
 * `npm run bench` (README, "OpenTelemetry"): a traced announce costs the gateway tens to hundreds
 * of µs of CPU (the span code runs cold at a low rate, and the exports), so the ratio, not the
 * untraced path, sets the cost; one in 1,000 cost 4–7 % of the gateway's throughput, one in
 * 10,000 stays within the 3 % allowed.
 */
export const DEFAULT_TRACE_RATIO = 0.0001;

export type SamplerName =
  | 'always_on'
  | 'always_off'
  | 'traceidratio'
  | 'parentbased_always_on'
  | 'parentbased_always_off'
  | 'parentbased_traceidratio';

const SAMPLERS: readonly SamplerName[] = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
];

export type OtlpProtocol = 'grpc' | 'http/protobuf' | 'http/json';

export interface TelemetryConfig {
  /** service.name: OTEL_SERVICE_NAME, else service.name in OTEL_RESOURCE_ATTRIBUTES, else the service's default */
  serviceName: string;
  /** whether service.name comes from the environment (then the SDK's env detector sets it) */
  serviceNameFromEnv: boolean;
  traces:
    | {
        sampler: SamplerName;
        /** probability that a root span (a request with no parent) is sampled */
        ratio: number;
      }
    | undefined;
  metrics:
    | {
        exporters: ('otlp' | 'console')[];
        protocol: OtlpProtocol;
        intervalMs: number;
        timeoutMs: number;
      }
    | undefined;
}

type Env = NodeJS.ProcessEnv;

function get(env: Env, name: string): string | undefined {
  const v = env[name]?.trim();
  return v ? v : undefined;
}

function bad(name: string, what: string, value: string): never {
  throw new TelemetryConfigError(`${name} ${what} (got ${JSON.stringify(value)})`);
}

function bool(env: Env, name: string): boolean {
  const v = get(env, name);
  if (v === undefined) return false;
  const s = v.toLowerCase();
  if (s !== 'true' && s !== 'false') bad(name, 'must be true or false', v);
  return s === 'true';
}

function url(env: Env, name: string): string | undefined {
  const v = get(env, name);
  if (v === undefined) return undefined;
  let ok = false;
  try {
    const u = new URL(v);
    ok = (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
  } catch {
    ok = false;
  }
  if (!ok) bad(name, 'must be an http:// or https:// URL, e.g. http://otel-collector:4318', v);
  return v;
}

function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[]): T | undefined {
  const v = get(env, name);
  if (v === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(v)) bad(name, `must be one of ${allowed.join(', ')}`, v);
  return v as T;
}

function listOf<T extends string>(env: Env, name: string, allowed: readonly T[], hint = ''): T[] | undefined {
  const v = get(env, name);
  if (v === undefined) return undefined;
  const items = v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (items.length === 0 || !items.every((s) => (allowed as readonly string[]).includes(s))) {
    bad(name, `must be a comma-separated list of ${allowed.join(', ')}${hint}`, v);
  }
  return items as T[];
}

function wholeNumber(env: Env, name: string, min: number, max: number): number | undefined {
  const v = get(env, name);
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) bad(name, `must be a whole number from ${min} to ${max}`, v);
  return Number(v);
}

/** key=value pairs separated by commas, values percent-encoded (OTEL_RESOURCE_ATTRIBUTES, OTEL_EXPORTER_OTLP_HEADERS) */
function keyValues(env: Env, name: string): Map<string, string> {
  const out = new Map<string, string>();
  const v = get(env, name);
  if (v === undefined) return out;
  for (const entry of v.split(',')) {
    if (entry.trim() === '') continue;
    const eq = entry.indexOf('=');
    const key = eq === -1 ? '' : entry.slice(0, eq).trim();
    let value: string | undefined;
    try {
      value = eq === -1 ? undefined : decodeURIComponent(entry.slice(eq + 1).trim());
    } catch {
      value = undefined;
    }
    if (key === '' || value === undefined) bad(name, 'must be comma-separated key=value pairs, values percent-encoded', v);
    out.set(key, value);
  }
  return out;
}

/**
 * Reads the OTEL_* variables. Telemetry runs only where an OTLP endpoint is set
 * (OTEL_EXPORTER_OTLP_ENDPOINT for both signals, or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT /
 * OTEL_EXPORTER_OTLP_METRICS_ENDPOINT for one) and OTEL_SDK_DISABLED is not true; without, both
 * signals are undefined and the SDK is never loaded. Throws TelemetryConfigError naming the first
 * bad variable.
 */
export function readTelemetryConfig(env: Env, defaultServiceName: string): TelemetryConfig {
  const disabled = bool(env, 'OTEL_SDK_DISABLED');
  const endpoint = url(env, 'OTEL_EXPORTER_OTLP_ENDPOINT');
  const tracesEndpoint = url(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
  const metricsEndpoint = url(env, 'OTEL_EXPORTER_OTLP_METRICS_ENDPOINT');
  const protocols: readonly OtlpProtocol[] = ['grpc', 'http/protobuf', 'http/json'];
  const protocol = oneOf(env, 'OTEL_EXPORTER_OTLP_PROTOCOL', protocols);
  oneOf(env, 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', protocols);
  const metricsProtocol = oneOf(env, 'OTEL_EXPORTER_OTLP_METRICS_PROTOCOL', protocols);
  for (const name of ['OTEL_EXPORTER_OTLP_COMPRESSION', 'OTEL_EXPORTER_OTLP_TRACES_COMPRESSION', 'OTEL_EXPORTER_OTLP_METRICS_COMPRESSION']) {
    oneOf(env, name, ['gzip', 'none']);
  }
  for (const name of ['OTEL_EXPORTER_OTLP_TIMEOUT', 'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT', 'OTEL_EXPORTER_OTLP_METRICS_TIMEOUT']) {
    wholeNumber(env, name, 1, 600_000);
  }
  for (const name of ['OTEL_EXPORTER_OTLP_HEADERS', 'OTEL_EXPORTER_OTLP_TRACES_HEADERS', 'OTEL_EXPORTER_OTLP_METRICS_HEADERS']) {
    keyValues(env, name);
  }
  const tracesExporters = listOf(env, 'OTEL_TRACES_EXPORTER', ['otlp', 'console', 'none'] as const);
  const metricsExporters = listOf(
    env,
    'OTEL_METRICS_EXPORTER',
    ['otlp', 'console', 'none'] as const,
    ' (Prometheus: every service serves /metrics itself)',
  );
  oneOf(env, 'OTEL_PROPAGATORS', ['tracecontext', 'baggage', 'tracecontext,baggage', 'baggage,tracecontext', 'b3', 'b3multi', 'jaeger', 'none']);
  const logLevel = get(env, 'OTEL_LOG_LEVEL');
  if (logLevel !== undefined && !['none', 'error', 'warn', 'info', 'debug', 'verbose', 'all'].includes(logLevel.toLowerCase())) {
    bad('OTEL_LOG_LEVEL', 'must be one of none, error, warn, info, debug, verbose, all', logLevel);
  }
  for (const name of ['OTEL_BSP_SCHEDULE_DELAY', 'OTEL_BSP_EXPORT_TIMEOUT']) wholeNumber(env, name, 0, 600_000);
  const maxQueue = wholeNumber(env, 'OTEL_BSP_MAX_QUEUE_SIZE', 1, 10_000_000) ?? 2048;
  const maxBatch = wholeNumber(env, 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE', 1, 10_000_000) ?? 512;
  if (maxBatch > maxQueue) {
    throw new TelemetryConfigError(`OTEL_BSP_MAX_EXPORT_BATCH_SIZE (${maxBatch}) must not exceed OTEL_BSP_MAX_QUEUE_SIZE (${maxQueue})`);
  }

  const resource = keyValues(env, 'OTEL_RESOURCE_ATTRIBUTES');
  const envName = get(env, 'OTEL_SERVICE_NAME') ?? resource.get('service.name');

  const sampler = oneOf(env, 'OTEL_TRACES_SAMPLER', SAMPLERS) ?? 'parentbased_traceidratio';
  let ratio: number;
  if (sampler.endsWith('traceidratio')) {
    const arg = get(env, 'OTEL_TRACES_SAMPLER_ARG');
    ratio = DEFAULT_TRACE_RATIO;
    if (arg !== undefined) {
      ratio = Number(arg);
      if (!/^[\d.eE+-]+$/.test(arg) || !(ratio >= 0 && ratio <= 1)) bad('OTEL_TRACES_SAMPLER_ARG', 'must be a number from 0 to 1 (the share of traces sampled)', arg);
    }
  } else {
    ratio = sampler.endsWith('always_on') ? 1 : 0;
  }

  const intervalMs = wholeNumber(env, 'OTEL_METRIC_EXPORT_INTERVAL', 1, 86_400_000) ?? 60_000;
  // (the SDK's default timeout is 30 s; it may not exceed the interval)
  const timeoutMs = Math.min(wholeNumber(env, 'OTEL_METRIC_EXPORT_TIMEOUT', 1, 600_000) ?? 30_000, intervalMs);

  const tracesOn = !disabled && (tracesEndpoint ?? endpoint) !== undefined && !(tracesExporters ?? []).includes('none');
  const metricsOn = !disabled && (metricsEndpoint ?? endpoint) !== undefined && !(metricsExporters ?? []).includes('none');
  return {
    serviceName: envName ?? defaultServiceName,
    serviceNameFromEnv: envName !== undefined,
    traces: tracesOn ? { sampler, ratio } : undefined,
    metrics: metricsOn
      ? {
          exporters: (metricsExporters ?? ['otlp']).filter((e): e is 'otlp' | 'console' => e !== 'none'),
          protocol: metricsProtocol ?? protocol ?? 'http/protobuf',
          intervalMs,
          timeoutMs,
        }
      : undefined,
  };
}
