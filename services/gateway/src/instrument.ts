/*
 * The first import of main.ts: OpenTelemetry (when an OTLP endpoint is set, see the README) starts
 * here, before anything requires express, ioredis or kafkajs, so that its instrumentations patch
 * them. (The compiled code is CommonJS: imports are required in order.)
 */
import { startTelemetryOrExit } from '@peertracker/telemetry';

// (the context follows synchronous calls only: no async hooks on the hot path, see the README)
startTelemetryOrExit('peertracker-gateway', 'peertracker: configuration error: ', { syncContext: true });
