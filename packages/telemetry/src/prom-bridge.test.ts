import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { DataPointType, type HistogramMetricData, type SumMetricData } from '@opentelemetry/sdk-metrics';
import { PromBridge } from './prom-bridge';

test('prom-client counters, gauges and histograms become OTLP sums, gauges and histograms', async () => {
  const registry = new Registry();
  new Counter({ name: 'x_total', help: 'xs', labelNames: ['kind'], registers: [registry] }).inc({ kind: 'a' }, 3);
  new Gauge({ name: 'g', help: 'a gauge', registers: [registry] }).set(7);
  const h = new Histogram({ name: 'h_seconds', help: 'h', labelNames: ['job'], buckets: [0.1, 1], registers: [registry] });
  h.observe({ job: 'j' }, 0.05);
  h.observe({ job: 'j' }, 0.5);
  h.observe({ job: 'j' }, 5);
  const bridge = new PromBridge();
  bridge.add(registry);
  const { resourceMetrics, errors } = await bridge.collect();
  assert.deepEqual(errors, []);
  const metrics = resourceMetrics.scopeMetrics[0].metrics;
  const byName = new Map(metrics.map((m) => [m.descriptor.name, m]));
  const x = byName.get('x_total') as SumMetricData;
  assert.equal(x.dataPointType, DataPointType.SUM);
  assert.equal(x.isMonotonic, true);
  assert.deepEqual(
    x.dataPoints.map((p) => [p.attributes, p.value]),
    [[{ kind: 'a' }, 3]],
  );
  assert.equal(byName.get('g')?.dataPointType, DataPointType.GAUGE);
  const hist = byName.get('h_seconds') as HistogramMetricData;
  assert.equal(hist.dataPoints.length, 1);
  const p = hist.dataPoints[0];
  assert.deepEqual(p.attributes, { job: 'j' });
  assert.deepEqual(p.value.buckets, { boundaries: [0.1, 1], counts: [1, 1, 1] });
  assert.equal(p.value.count, 3);
  assert.equal(p.value.sum, 5.55);
});
