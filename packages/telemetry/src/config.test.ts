import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_TRACE_RATIO, TelemetryConfigError, readTelemetryConfig } from './config';

const endpoint = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' };

test('without an OTLP endpoint, or with OTEL_SDK_DISABLED=true, telemetry stays off', () => {
  for (const env of [{}, { OTEL_SERVICE_NAME: 'x', OTEL_TRACES_SAMPLER: 'always_on' }, { ...endpoint, OTEL_SDK_DISABLED: 'true' }, { ...endpoint, OTEL_SDK_DISABLED: 'TRUE' }]) {
    const c = readTelemetryConfig(env, 'svc');
    assert.equal(c.traces, undefined, JSON.stringify(env));
    assert.equal(c.metrics, undefined, JSON.stringify(env));
  }
});

test('an endpoint turns both signals on, with the default sampler and the standard defaults', () => {
  const c = readTelemetryConfig(endpoint, 'peertracker-gateway');
  assert.deepEqual(c.traces, { sampler: 'parentbased_traceidratio', ratio: DEFAULT_TRACE_RATIO });
  assert.deepEqual(c.metrics, { exporters: ['otlp'], protocol: 'http/protobuf', intervalMs: 60_000, timeoutMs: 30_000 });
  assert.equal(c.serviceName, 'peertracker-gateway');
  assert.equal(c.serviceNameFromEnv, false);
});

test('signal endpoints, exporters and samplers', () => {
  assert.equal(readTelemetryConfig({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://c/v1/traces' }, 's').metrics, undefined);
  assert.equal(readTelemetryConfig({ OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'https://c/v1/metrics' }, 's').traces, undefined);
  assert.equal(readTelemetryConfig({ ...endpoint, OTEL_TRACES_EXPORTER: 'none' }, 's').traces, undefined);
  assert.equal(readTelemetryConfig({ ...endpoint, OTEL_METRICS_EXPORTER: 'none' }, 's').metrics, undefined);
  assert.deepEqual(readTelemetryConfig({ ...endpoint, OTEL_TRACES_SAMPLER_ARG: '0.25' }, 's').traces, { sampler: 'parentbased_traceidratio', ratio: 0.25 });
  assert.deepEqual(readTelemetryConfig({ ...endpoint, OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '1' }, 's').traces, { sampler: 'traceidratio', ratio: 1 });
  assert.deepEqual(readTelemetryConfig({ ...endpoint, OTEL_TRACES_SAMPLER: 'always_on', OTEL_TRACES_SAMPLER_ARG: 'ignored' }, 's').traces, { sampler: 'always_on', ratio: 1 });
  assert.deepEqual(readTelemetryConfig({ ...endpoint, OTEL_TRACES_SAMPLER: 'parentbased_always_off' }, 's').traces, { sampler: 'parentbased_always_off', ratio: 0 });
  const m = readTelemetryConfig({ ...endpoint, OTEL_METRIC_EXPORT_INTERVAL: '500', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }, 's').metrics;
  assert.deepEqual(m, { exporters: ['otlp'], protocol: 'http/json', intervalMs: 500, timeoutMs: 500 });
});

test('service.name: OTEL_SERVICE_NAME, then OTEL_RESOURCE_ATTRIBUTES, then the default', () => {
  assert.equal(readTelemetryConfig({ ...endpoint, OTEL_SERVICE_NAME: 'gw-1', OTEL_RESOURCE_ATTRIBUTES: 'service.name=other' }, 's').serviceName, 'gw-1');
  const c = readTelemetryConfig({ ...endpoint, OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=prod,service.name=gw%202' }, 's');
  assert.equal(c.serviceName, 'gw 2');
  assert.equal(c.serviceNameFromEnv, true);
});

test('each bad value is named', () => {
  for (const [env, name] of [
    [{ OTEL_SDK_DISABLED: 'maybe' }, /^OTEL_SDK_DISABLED must be true or false/],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' }, /^OTEL_EXPORTER_OTLP_ENDPOINT must be an http/],
    [{ OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'ftp://c' }, /^OTEL_EXPORTER_OTLP_METRICS_ENDPOINT/],
    [{ OTEL_EXPORTER_OTLP_PROTOCOL: 'http' }, /^OTEL_EXPORTER_OTLP_PROTOCOL must be one of grpc, http\/protobuf, http\/json/],
    [{ OTEL_TRACES_SAMPLER: 'sometimes' }, /^OTEL_TRACES_SAMPLER must be one of/],
    [{ OTEL_TRACES_SAMPLER_ARG: '2' }, /^OTEL_TRACES_SAMPLER_ARG must be a number from 0 to 1/],
    [{ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: 'half' }, /^OTEL_TRACES_SAMPLER_ARG/],
    [{ OTEL_METRIC_EXPORT_INTERVAL: '1m' }, /^OTEL_METRIC_EXPORT_INTERVAL must be a whole number/],
    [{ OTEL_METRIC_EXPORT_TIMEOUT: '0' }, /^OTEL_METRIC_EXPORT_TIMEOUT/],
    [{ OTEL_METRICS_EXPORTER: 'prometheus' }, /^OTEL_METRICS_EXPORTER .*\/metrics/],
    [{ OTEL_TRACES_EXPORTER: 'jaeger' }, /^OTEL_TRACES_EXPORTER/],
    [{ OTEL_RESOURCE_ATTRIBUTES: 'team' }, /^OTEL_RESOURCE_ATTRIBUTES must be comma-separated key=value pairs/],
    [{ OTEL_RESOURCE_ATTRIBUTES: 'a=%zz' }, /^OTEL_RESOURCE_ATTRIBUTES/],
    [{ OTEL_EXPORTER_OTLP_HEADERS: '=x' }, /^OTEL_EXPORTER_OTLP_HEADERS/],
    [{ OTEL_EXPORTER_OTLP_COMPRESSION: 'zstd' }, /^OTEL_EXPORTER_OTLP_COMPRESSION/],
    [{ OTEL_LOG_LEVEL: 'loud' }, /^OTEL_LOG_LEVEL/],
    [{ OTEL_BSP_MAX_QUEUE_SIZE: '10', OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '20' }, /^OTEL_BSP_MAX_EXPORT_BATCH_SIZE \(20\) must not exceed OTEL_BSP_MAX_QUEUE_SIZE/],
  ] as const) {
    assert.throws(() => readTelemetryConfig({ ...endpoint, ...env }, 's'), (e: Error) => e instanceof TelemetryConfigError && name.test(e.message), JSON.stringify(env));
  }
});
