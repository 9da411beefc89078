/*
 * The OpenTelemetry Node SDK, configured and started. Loaded only when telemetry is on (index.ts
 * requires it then), so a service without an OTLP endpoint never loads the SDK.
 */
import { IncomingMessage } from 'node:http';
import { diag, DiagLogLevel } from '@opentelemetry/api';
import { OTLPMetricExporter as OtlpGrpcMetricExporter } from '@opentelemetry/exporter-metrics-otlp-grpc';
import { OTLPMetricExporter as OtlpJsonMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPMetricExporter as OtlpProtoMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { ExpressInstrumentation } from '@opentelemetry/instrumentation-express';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { IORedisInstrumentation } from '@opentelemetry/instrumentation-ioredis';
import { KafkaJsInstrumentation } from '@opentelemetry/instrumentation-kafkajs';
import { ConsoleMetricExporter, PeriodicExportingMetricReader, type PushMetricExporter } from '@opentelemetry/sdk-metrics';
import { NodeSDK } from '@opentelemetry/sdk-node';
import type { OtlpProtocol, TelemetryConfig } from './config';
import { SpanContextManager, SyncContextManager } from './context-manager';
import { GATED, type GatedRequest } from './http-gate';
import { SAMPLING_PRIORITY } from './priority';
import { PromBridge } from './prom-bridge';
import { createSampler } from './sampler';

export interface SdkOptions {
  /** the active context follows synchronous calls only (context-manager.ts: the gateway) */
  syncContext: boolean;
}

export interface StartedSdk {
  bridge: PromBridge;
  contextManager: SyncContextManager | SpanContextManager;
  shutdown(): Promise<void>;
}

function metricExporter(kind: 'otlp' | 'console', protocol: OtlpProtocol): PushMetricExporter {
  if (kind === 'console') return new ConsoleMetricExporter();
  // (each reads its endpoint, headers, timeout and compression from the OTEL_EXPORTER_OTLP_* variables)
  if (protocol === 'grpc') return new OtlpGrpcMetricExporter();
  if (protocol === 'http/json') return new OtlpJsonMetricExporter();
  return new OtlpProtoMetricExporter();
}

export function startSdk(config: TelemetryConfig, o: SdkOptions): StartedSdk {
  if (process.env.OTEL_LOG_LEVEL === undefined || process.env.OTEL_LOG_LEVEL.trim() === '') {
    // (the SDK is silent by default: an unreachable collector would go unnoticed)
    diag.setLogger(
      {
        error: (msg, ...args) => process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level: 'error', msg: `opentelemetry: ${msg}`, detail: args.map(String) })}\n`),
        warn: () => {},
        info: () => {},
        debug: () => {},
        verbose: () => {},
      },
      DiagLogLevel.ERROR,
    );
  }
  const bridge = new PromBridge();
  const m = config.metrics;
  const metricReaders =
    m === undefined
      ? []
      : m.exporters.map(
          (kind) =>
            new PeriodicExportingMetricReader({
              exporter: metricExporter(kind, m.protocol),
              exportIntervalMillis: m.intervalMs,
              exportTimeoutMillis: m.timeoutMs,
              metricProducers: [bridge],
            }),
        );
  const t = config.traces;
  const contextManager = o.syncContext ? new SyncContextManager() : new SpanContextManager();
  const sdk = new NodeSDK({
    // (from the environment, OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES, the SDK's env detector sets it)
    serviceName: config.serviceNameFromEnv ? undefined : config.serviceName,
    // no span processor, no tracer provider: traces off (OTEL_TRACES_EXPORTER=none, or no endpoint for them);
    // otherwise the SDK makes the exporters from OTEL_TRACES_EXPORTER and OTEL_EXPORTER_OTLP_*
    ...(t === undefined ? { spanProcessors: [] } : { sampler: createSampler(t.sampler, t.ratio) }),
    contextManager,
    metricReaders,
    logRecordProcessors: [],
    instrumentations: [
      new HttpInstrumentation({
        // (the services make no HTTP requests of their own; the exporters' are not to be traced)
        disableOutgoingRequestInstrumentation: true,
        // a request of a gated server's announce path that gets here was drawn (http-gate.ts)
        startIncomingSpanHook: (req) => ((req as GatedRequest)[GATED] !== undefined ? { [SAMPLING_PRIORITY]: 1 } : {}),
        // (no router serves the gated paths: the route is the path)
        requestHook: (span, req) => {
          const gated = req instanceof IncomingMessage ? (req as GatedRequest)[GATED] : undefined;
          if (gated === undefined) return;
          span.setAttribute('http.route', gated.path);
          span.updateName(`${(req as IncomingMessage).method ?? 'GET'} ${gated.path}`);
        },
      }),
      new ExpressInstrumentation(),
      // requireParentSpan: no root spans for commands outside a traced request (metrics scrapes,
      // BullMQ's polling); the statement is the command's name only (the arguments hold peer ids
      // and addresses)
      new IORedisInstrumentation({ requireParentSpan: true, dbStatementSerializer: (command) => command }),
      new KafkaJsInstrumentation(),
    ],
  });
  sdk.start();
  return { bridge, contextManager, shutdown: () => sdk.shutdown() };
}
