/*
 * The first import of main.ts (the worker): OpenTelemetry (when an OTLP endpoint is set, see the
 * README) starts before anything requires ioredis, kafkajs or express, so that its
 * instrumentations patch them. (The compiled code is CommonJS: imports are required in order.)
 */
import { startTelemetryOrExit } from '@peertracker/telemetry';

startTelemetryOrExit('peertracker-stats-worker', 'stats-worker: ');
