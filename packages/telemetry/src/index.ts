/*
 * OpenTelemetry for every PeerTracker service. A service's entry point imports its `instrument`
 * module first, which calls startTelemetry: the SDK must patch express, ioredis and kafkajs before
 * anything requires them, and the compiled CommonJS requires in import order.
 *
 * Without an OTLP endpoint (or with OTEL_SDK_DISABLED=true) nothing but this module and the
 * OpenTelemetry API is loaded: no SDK, no instrumentation, rootSampled() is false at the cost of
 * one comparison, and the API's tracer is a no-op.
 */
import { ROOT_CONTEXT, trace, type Span } from '@opentelemetry/api';
import type { Server } from 'node:http';
import { gateServer } from './http-gate';
import type { PromRegistry } from './prom-bridge';
import { TelemetryConfigError, readTelemetryConfig, type TelemetryConfig } from './config';
import type { StartedSdk } from './sdk';

export { SpanKind, SpanStatusCode, context, trace, type Attributes, type Span, type SpanContext, type Tracer } from '@opentelemetry/api';
export { DEFAULT_TRACE_RATIO, TelemetryConfigError, readTelemetryConfig, type TelemetryConfig } from './config';
export { SAMPLING_PRIORITY } from './priority';
export type { PromRegistry } from './prom-bridge';

export interface Telemetry {
  /** traces are exported */
  readonly tracing: boolean;
  /** metrics are exported over OTLP */
  readonly metrics: boolean;
  /** the share of root requests traced (0 without traces) */
  readonly ratio: number;
  readonly config: TelemetryConfig | undefined;
  /** Exports a prom-client registry over OTLP beside /metrics (nothing without OTLP metrics). */
  exportRegistry(registry: PromRegistry): void;
  /** Sends what is held (spans, a last metrics export) and stops; gives up after ms. */
  shutdown(ms?: number): Promise<void>;
}

const OFF: Telemetry = {
  tracing: false,
  metrics: false,
  ratio: 0,
  config: undefined,
  exportRegistry: () => {},
  shutdown: async () => {},
};

let current: Telemetry = OFF;
let sdkStarted = false;
/** the root ratio while traces are on, else 0 (read on every announce: a module variable) */
let ratio = 0;
/** the context manager's active(), called directly (the API's context.active() costs more per call) */
let active = () => ROOT_CONTEXT;

/** This process's telemetry (off until startTelemetry turned it on). */
export function telemetry(): Telemetry {
  return current;
}

/**
 * True for the share of root requests to trace (the configured ratio), false always while traces
 * are off. A frontend draws with this before it makes a span, and marks the span it makes with
 * SAMPLING_PRIORITY so the sampler keeps it (sampler.ts).
 */
export function rootSampled(): boolean {
  return ratio > 0 && Math.random() < ratio;
}

/**
 * The span of the active context when it is recording (a traced request), else undefined: the
 * check a span around a call makes before anything else, a property read while nothing is traced.
 */
export function recordingSpan(): Span | undefined {
  const ctx = active();
  if (ctx === ROOT_CONTEXT) return undefined;
  const span = trace.getSpan(ctx);
  return span?.isRecording() ? span : undefined;
}

/**
 * Draws the requests of `paths` on this server at the trace ratio before the HTTP
 * instrumentation sees them: those not drawn skip it entirely (http-gate.ts). Nothing while the
 * SDK is not started.
 */
export function gateHttpServer(server: Server, paths: readonly string[]): void {
  if (sdkStarted) gateServer(server, paths, rootSampled);
}

export interface StartOptions {
  /**
   * The active context follows synchronous calls only, without async hooks (SyncContextManager:
   * the gateway, whose traced work begins synchronously in each request); default false, an
   * AsyncLocalStorage carries it across awaits.
   */
  syncContext?: boolean;
  env?: NodeJS.ProcessEnv;
}

/**
 * startTelemetry for a service's entry point: a bad OTEL_* variable is reported on stderr after
 * `prefix` (the service's own configuration errors' prefix) and the process exits with code 2.
 */
export function startTelemetryOrExit(defaultServiceName: string, prefix: string, o: StartOptions = {}): Telemetry {
  try {
    return startTelemetry(defaultServiceName, o);
  } catch (err) {
    if (!(err instanceof TelemetryConfigError)) throw err;
    process.stderr.write(`${prefix}${err.message}\n`);
    process.exit(2);
  }
}

/**
 * Reads the OTEL_* variables and, when an OTLP endpoint is set, starts the Node SDK with the
 * http, express, ioredis and kafkajs instrumentations. Call once, before the service requires
 * any of those. Throws TelemetryConfigError for a bad variable.
 */
export function startTelemetry(defaultServiceName: string, o: StartOptions = {}): Telemetry {
  if (current !== OFF) throw new Error('telemetry already started');
  const config = readTelemetryConfig(o.env ?? process.env, defaultServiceName);
  if (config.traces === undefined && config.metrics === undefined) return current;
  // (required here, not imported: without an endpoint the SDK is never loaded)
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { startSdk } = require('./sdk') as typeof import('./sdk');
  const traceRatio = config.traces?.ratio ?? 0;
  const sdk: StartedSdk = startSdk(config, { syncContext: o.syncContext ?? false });
  ratio = traceRatio;
  sdkStarted = true;
  const manager = sdk.contextManager;
  active = () => manager.active();
  let stopped: Promise<void> | undefined;
  current = {
    tracing: config.traces !== undefined,
    metrics: config.metrics !== undefined,
    ratio: traceRatio,
    config,
    exportRegistry: (registry) => {
      if (config.metrics !== undefined) sdk.bridge.add(registry);
    },
    shutdown(ms = 5000) {
      stopped ??= sdk.shutdown().catch(() => {});
      return Promise.race([stopped, new Promise<void>((resolve) => setTimeout(resolve, ms).unref())]);
    },
  };
  return current;
}
