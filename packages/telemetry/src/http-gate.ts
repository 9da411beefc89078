/*
 * The draw in front of the HTTP instrumentation, for the gateway's announce and scrape paths.
 *
 * The instrumentation wraps every http.Server's emit: even for a request it is told to ignore it
 * copies the arguments, makes a "tracing suppressed" context, enters it and binds the request and
 * the response to it, which measured about 10 % of the HTTP gateway's CPU per announce in
 * `npm run bench` (README, "OpenTelemetry"). So on a gated server, a request for a gated path that
 * is not drawn at the trace ratio goes to the listeners by the plain EventEmitter emit, and the
 * instrumentation never sees it, whatever `traceparent` it carries; one that is drawn goes through
 * the instrumented emit and is marked (GATED) for the span hooks in sdk.ts.
 */
import { EventEmitter } from 'node:events';
import type { IncomingMessage, Server } from 'node:http';

/** On a request of a gated path passed on to the instrumentation (so, drawn): its path. */
export const GATED = Symbol('peertracker.gated');

export interface GatedRequest extends IncomingMessage {
  [GATED]?: { path: string };
}

const plainEmit = EventEmitter.prototype.emit;

/**
 * Installs the draw on one server (draw: true at the trace ratio). The server's emit becomes its
 * own: 'request' events of gated paths are drawn, everything else goes to the instrumented emit.
 */
export function gateServer(server: Server, paths: readonly string[], draw: () => boolean): void {
  const instrumented = server.emit as (this: Server, event: string | symbol, ...args: unknown[]) => boolean;
  server.emit = function (this: Server, event: string | symbol, ...rest: unknown[]): boolean {
    if (event === 'request') {
      const req = rest[0] as GatedRequest;
      const url = req.url ?? '';
      const q = url.indexOf('?');
      const path = q === -1 ? url : url.slice(0, q);
      if (paths.includes(path)) {
        // (a client's traceparent does not exempt it from the draw: else any client could make
        // every one of its announces traced, at ~100 µs of CPU each, by sending the header)
        if (!draw()) return plainEmit.call(this, event, req, rest[1]);
        req[GATED] = { path };
      }
    }
    return instrumented.call(this, event, ...rest);
  } as Server['emit'];
}
