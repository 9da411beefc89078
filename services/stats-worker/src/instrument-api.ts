/*
 * The first import of api-main.ts (the stats API): as instrument.ts, for the API's process.
 */
import { startTelemetryOrExit } from '@peertracker/telemetry';

startTelemetryOrExit('peertracker-stats-api', 'stats-api: ');
