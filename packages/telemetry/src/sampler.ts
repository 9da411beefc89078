/*
 * The trace sampler of every service, and the gate in front of it on the announce path.
 *
 * Announces are too many to trace, and even deciding not to trace one through the SDK costs
 * (a trace id, a sampler call, a non-recording span, a context): the frontends therefore draw
 * first, with the root ratio (`rootSampled()`), and start a span only for the announces drawn.
 * Those spans carry `sampling.priority: 1` (the OpenTracing convention for "keep this one"), and
 * the sampler samples them without drawing again, so an announce is traced with probability
 * `ratio`, as a trace-id ratio sampler would give. Every other root span (the admin routes, event
 * publishing, the worker's batches and jobs) is sampled by trace id at the same ratio, and a span
 * with a parent follows its parent when the sampler is parent-based.
 */
import type { Attributes, Context, Link, SpanKind } from '@opentelemetry/api';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  ParentBasedSampler,
  SamplingDecision,
  TraceIdRatioBasedSampler,
  type Sampler,
  type SamplingResult,
} from '@opentelemetry/sdk-trace';
import type { SamplerName } from './config';
import { SAMPLING_PRIORITY } from './priority';

/** Samples spans marked with SAMPLING_PRIORITY > 0; the others as `inner` decides. */
export class PrioritySampler implements Sampler {
  constructor(private readonly inner: Sampler) {}

  shouldSample(context: Context, traceId: string, spanName: string, spanKind: SpanKind, attributes: Attributes, links: Link[]): SamplingResult {
    const priority = attributes[SAMPLING_PRIORITY];
    if (typeof priority === 'number' && priority > 0) return { decision: SamplingDecision.RECORD_AND_SAMPLED };
    return this.inner.shouldSample(context, traceId, spanName, spanKind, attributes, links);
  }

  toString(): string {
    return `Priority{${this.inner.toString()}}`;
  }
}

/** The sampler OTEL_TRACES_SAMPLER names, with `ratio` for the trace-id ratio ones, behind the priority rule. */
export function createSampler(name: SamplerName, ratio: number): Sampler {
  const root = name.endsWith('always_on') ? new AlwaysOnSampler() : name.endsWith('always_off') ? new AlwaysOffSampler() : new TraceIdRatioBasedSampler(ratio);
  return new PrioritySampler(name.startsWith('parentbased_') ? new ParentBasedSampler({ root }) : root);
}
