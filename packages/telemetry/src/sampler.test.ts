import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ROOT_CONTEXT, SpanKind, TraceFlags, createContextKey, trace } from '@opentelemetry/api';
import { SamplingDecision } from '@opentelemetry/sdk-trace';
import { SyncContextManager } from './context-manager';
import { SAMPLING_PRIORITY } from './priority';
import { createSampler } from './sampler';

const traceId = '0af7651916cd43dd8448eb211c80319c';
const sampled = (s: ReturnType<typeof createSampler>, attributes = {}, ctx = ROOT_CONTEXT) =>
  s.shouldSample(ctx, traceId, 'x', SpanKind.SERVER, attributes, []).decision === SamplingDecision.RECORD_AND_SAMPLED;

test('spans drawn by their starter (sampling.priority 1) are sampled whatever the ratio; others by trace id', () => {
  const none = createSampler('parentbased_traceidratio', 0);
  assert.equal(sampled(none), false);
  assert.equal(sampled(none, { [SAMPLING_PRIORITY]: 1 }), true);
  assert.equal(sampled(none, { [SAMPLING_PRIORITY]: 0 }), false);
  assert.equal(sampled(createSampler('parentbased_traceidratio', 1)), true);
  assert.equal(sampled(createSampler('always_off', 1)), false);
});

test('parent-based samplers follow the parent', () => {
  const s = createSampler('parentbased_traceidratio', 0);
  const parent = (flags: number) => trace.setSpanContext(ROOT_CONTEXT, { traceId, spanId: 'b7ad6b7169203331', traceFlags: flags, isRemote: true });
  assert.equal(sampled(s, {}, parent(TraceFlags.SAMPLED)), true);
  assert.equal(sampled(createSampler('parentbased_traceidratio', 1), {}, parent(TraceFlags.NONE)), false);
  // (a plain ratio sampler does not look at the parent)
  assert.equal(sampled(createSampler('traceidratio', 0), {}, parent(TraceFlags.SAMPLED)), false);
});

test('the synchronous context manager: active within with(), restored after, bound functions run in their context', () => {
  const m = new SyncContextManager();
  const key = createContextKey('k');
  const ctx = ROOT_CONTEXT.setValue(key, 1);
  assert.equal(m.with(ctx, () => m.active().getValue(key)), 1);
  assert.equal(m.active(), ROOT_CONTEXT);
  assert.throws(() => m.with(ctx, () => {
    throw new Error('x');
  }));
  assert.equal(m.active(), ROOT_CONTEXT);
  const bound = m.bind(ctx, (a: number) => [a, m.active().getValue(key)]);
  assert.deepEqual(bound(5), [5, 1]);
  const emitter = new EventEmitter();
  const on = emitter.on;
  assert.equal(m.bind(ctx, emitter), emitter);
  assert.equal(emitter.on, on, 'an emitter is not patched for a context without a span');
});
