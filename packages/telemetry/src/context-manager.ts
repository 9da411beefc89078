/*
 * Context managers. The SDK's default keeps the active context in an AsyncLocalStorage, which on
 * Node 20 turns on async hooks for the whole process: every promise, tick, timer and socket write
 * then runs a hook, traced or not. For the gateway that alone costs more than the 3 % of
 * throughput telemetry may take (README, "OpenTelemetry"), so the gateway uses SyncContextManager.
 */
import { EventEmitter } from 'node:events';
import { ROOT_CONTEXT, trace, type Context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';

/**
 * The active context follows synchronous calls only: `with` sets it for the call and restores it
 * after; nothing carries it across an await, a timer or a callback, except listeners of an
 * EventEmitter bound to a context with a span (the HTTP instrumentation binds a traced request's
 * `req` and `res`, and ends and names its span in their listeners). That covers what the gateway
 * traces, whose spans begin in the synchronous part of a request (the HTTP server span, the store
 * call inside it, the send inside the publish span); a span begun after an await of a traced
 * request is a root of its own. No async hooks: the AsyncLocalStorage of the class it extends (for
 * its emitter binding) is never entered, so never enabled.
 */
export class SyncContextManager extends AsyncLocalStorageContextManager {
  private current: Context = ROOT_CONTEXT;

  override active(): Context {
    return this.current;
  }

  override with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(context: Context, fn: F, thisArg?: ThisParameterType<F>, ...args: A): ReturnType<F> {
    const previous = this.current;
    this.current = context;
    try {
      return fn.call(thisArg, ...args);
    } finally {
      this.current = previous;
    }
  }

  /** Functions run in `context` when called; emitters are bound only to a context with a span. */
  override bind<T>(context: Context, target: T): T {
    if (target instanceof EventEmitter && trace.getSpan(context) === undefined) return target;
    return super.bind(context, target);
  }

  override enable(): this {
    return this;
  }

  override disable(): this {
    this.current = ROOT_CONTEXT;
    return this;
  }
}

/**
 * The SDK's AsyncLocalStorage manager (the worker and the stats API: context across awaits), less
 * one cost: binding an EventEmitter to a context that holds no span. The HTTP instrumentation binds
 * every request's `req` and `res`, also for requests it does not trace, and binding patches eight
 * methods of each emitter and wraps every listener added later; without a span there is nothing
 * for those listeners to carry.
 */
export class SpanContextManager extends AsyncLocalStorageContextManager {
  override bind<T>(context: Context, target: T): T {
    if (target instanceof EventEmitter && trace.getSpan(context) === undefined) return target;
    return super.bind(context, target);
  }
}
