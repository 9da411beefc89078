/*
 * The worker's own spans: a batch's write (aggregates and offsets in one script) and each run of a
 * scheduled job. Root spans are sampled at the trace ratio (a batch's span is a child of
 * kafkajs's receive span); with telemetry off the API's tracer is a no-op.
 */
import { SpanStatusCode, trace, type Attributes, type Span } from '@peertracker/telemetry';

const tracer = trace.getTracer('@peertracker/stats-worker');

/** Runs work in an active span `name`, ended when work settles (describe adds what its result says). */
export function traced<T>(name: string, attributes: Attributes, work: () => Promise<T>, describe?: (span: Span, value: T) => void): Promise<T> {
  return tracer.startActiveSpan(name, { attributes }, async (span) => {
    try {
      const value = await work();
      describe?.(span, value);
      return value;
    } catch (err) {
      span.recordException(err instanceof Error ? err : String(err));
      span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
      throw err;
    } finally {
      span.end();
    }
  });
}
