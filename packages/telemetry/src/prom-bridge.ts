/*
 * The services count with prom-client (their /metrics); this exports the same registries over
 * OTLP at each export, instead of counting everything twice on the hot path. Counters become
 * cumulative monotonic sums, gauges gauges, histograms explicit-bucket histograms; names and
 * labels stay as in /metrics. (prom-client summaries: none in this project, and not converted.)
 */
import { ValueType, type Attributes, type HrTime } from '@opentelemetry/api';
import { emptyResource } from '@opentelemetry/resources';
import {
  AggregationTemporality,
  DataPointType,
  type CollectionResult,
  type MetricData,
  type MetricProducer,
} from '@opentelemetry/sdk-metrics';

/** What the bridge needs of a prom-client Registry. */
export interface PromRegistry {
  getMetricsAsJSON(): Promise<PromMetric[]>;
}

export interface PromMetric {
  name: string;
  help: string;
  /** 'counter', 'gauge', 'histogram' or 'summary' (prom-client's typings declare a numeric enum; the value is the name) */
  type: unknown;
  values: { value: number; labels: Record<string, string | number | undefined>; metricName?: string }[];
}

const SCOPE = { name: '@peertracker/telemetry/prom-client' };

function hrTimeOf(ms: number): HrTime {
  const s = Math.floor(ms / 1000);
  return [s, Math.round((ms - s * 1000) * 1e6)];
}

function attributesOf(labels: Record<string, string | number | undefined>, without?: string): Attributes {
  const out: Attributes = {};
  for (const [k, v] of Object.entries(labels)) if (k !== without && v !== undefined) out[k] = v;
  return out;
}

/** One OTLP metric from one prom-client metric, or undefined for a type that is not converted. */
export function convertPromMetric(m: PromMetric, startTime: HrTime, endTime: HrTime): MetricData | undefined {
  const descriptor = { name: m.name, description: m.help, unit: '', valueType: ValueType.DOUBLE };
  const points = () => m.values.map((v) => ({ startTime, endTime, attributes: attributesOf(v.labels), value: v.value }));
  const type = String(m.type);
  if (type === 'counter') {
    return { descriptor, aggregationTemporality: AggregationTemporality.CUMULATIVE, dataPointType: DataPointType.SUM, isMonotonic: true, dataPoints: points() };
  }
  if (type === 'gauge') {
    return { descriptor, aggregationTemporality: AggregationTemporality.CUMULATIVE, dataPointType: DataPointType.GAUGE, dataPoints: points() };
  }
  if (type !== 'histogram') return undefined;
  // one series per label set without `le`: cumulative buckets in ascending order, then _sum and _count
  const series = new Map<string, { attributes: Attributes; bounds: number[]; cumulative: number[]; sum: number; count: number }>();
  for (const v of m.values) {
    const attributes = attributesOf(v.labels, 'le');
    const key = JSON.stringify(Object.entries(attributes).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    let s = series.get(key);
    if (s === undefined) series.set(key, (s = { attributes, bounds: [], cumulative: [], sum: 0, count: 0 }));
    if (v.metricName?.endsWith('_bucket')) {
      const le = String(v.labels.le);
      if (le !== '+Inf') {
        s.bounds.push(Number(le));
        s.cumulative.push(v.value);
      }
    } else if (v.metricName?.endsWith('_sum')) s.sum = v.value;
    else if (v.metricName?.endsWith('_count')) s.count = v.value;
  }
  return {
    descriptor,
    aggregationTemporality: AggregationTemporality.CUMULATIVE,
    dataPointType: DataPointType.HISTOGRAM,
    dataPoints: [...series.values()].map((s) => {
      const counts = s.cumulative.map((c, i) => c - (i === 0 ? 0 : s.cumulative[i - 1]));
      counts.push(s.count - (s.cumulative.at(-1) ?? 0));
      return { startTime, endTime, attributes: s.attributes, value: { buckets: { boundaries: s.bounds, counts }, sum: s.sum, count: s.count } };
    }),
  };
}

/** A MetricProducer over prom-client registries added at any time (a service makes its metrics after telemetry starts). */
export class PromBridge implements MetricProducer {
  private readonly registries: PromRegistry[] = [];
  /** the series' start: prom-client counts from the process's start */
  private readonly startTime = hrTimeOf(performance.timeOrigin);

  add(registry: PromRegistry): void {
    this.registries.push(registry);
  }

  async collect(): Promise<CollectionResult> {
    const errors: unknown[] = [];
    const metrics: MetricData[] = [];
    const endTime = hrTimeOf(Date.now());
    for (const registry of this.registries) {
      try {
        for (const m of await registry.getMetricsAsJSON()) {
          const data = convertPromMetric(m, this.startTime, endTime);
          if (data !== undefined) metrics.push(data);
        }
      } catch (err) {
        errors.push(err);
      }
    }
    return { resourceMetrics: { resource: emptyResource(), scopeMetrics: metrics.length > 0 ? [{ scope: SCOPE, metrics }] : [] }, errors };
  }
}
