// (first: OpenTelemetry patches express, ioredis and kafkajs before they are required)
import './instrument';
import { telemetry } from '@peertracker/telemetry';
import { createGateway } from './app';
import { ConfigError, loadConfig } from './config';
import { createLogger } from './log';
import { openStore } from './store';

/** Entry point of the embedded tracker: `npm start`. */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`peertracker: configuration error: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger(config.logLevel);
  if (config.connectionSecretGenerated) {
    log.warn(
      'TRACKER_CONNECTION_SECRET is unset: generated a random one. UDP connection IDs will not survive a restart ' +
        'and other replicas will reject them; set the same secret on every replica.',
    );
  }
  const store = await openStore(config, log);
  // main.ts owns the store: the gateway does not close a store it was given
  const gateway = await createGateway(config, { log, store }).catch(async (err: unknown) => {
    await store.close().catch(() => {});
    throw err;
  });
  telemetry().exportRegistry(gateway.metrics.registry);
  log.info('peertracker listening', {
    host: config.host,
    http: `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${gateway.httpPort}/announce`,
    udpPort: gateway.udpPort,
    ...(gateway.metricsPort !== undefined ? { metricsPort: gateway.metricsPort } : {}),
    store: config.store,
    ...(config.store === 'redis'
      ? { redis: config.redisUrl !== undefined ? 'single' : 'cluster', keyPrefix: config.redisKeyPrefix }
      : {}),
  });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      // (a second signal: stop now)
      log.warn('stopping at once', { signal });
      process.exit(1);
    }
    stopping = true;
    const { shutdownDelayMs: delayMs, shutdownTimeoutMs: timeoutMs } = config;
    const deadline = Date.now() + timeoutMs;
    log.info('shutting down: /health answers 503, then the listeners close', { signal, delayMs, timeoutMs });
    // (whatever hangs, the process is gone by the deadline)
    setTimeout(() => {
      log.error('shutdown took longer than TRACKER_SHUTDOWN_TIMEOUT_MS; exiting');
      process.exit(1);
    }, timeoutMs + 1000).unref();
    gateway
      .shutdown({ delayMs, timeoutMs })
      .then(async (clean) => {
        await store.close();
        if (!clean) log.warn('shutdown timed out: requests or events were left', { timeoutMs });
        // (the last spans and a last metrics export, within what is left of the deadline)
        await telemetry().shutdown(Math.max(0, deadline - Date.now()));
        process.exit(clean ? 0 : 1);
      })
      .catch((err: unknown) => {
        log.error('shutdown failed', { err });
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`peertracker: failed to start: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
