/*
 * The gateway image, built unchanged from services/gateway/Dockerfile on a real Docker engine
 * (docker build --network host, on local stand-ins of its base image) and run the way the README
 * says: non-root, read-only root filesystem, all capabilities dropped. Announces are answered over
 * HTTP and UDP on the published ports, the image's own HEALTHCHECK turns healthy, and SIGTERM (docker
 * stop) ends it cleanly within TRACKER_SHUTDOWN_TIMEOUT_MS even with a client connection open.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { announcePath, httpGet, udpAnnouncePacket, udpConnect, udpExchange } from './testing/clients';
import { dockerSkipReason, imageSize, publishedPort, startTestEngine, waitHealth, type TestEngine } from './testing/docker';

const skip = dockerSkipReason() ?? false;
const IMAGE = 'peertracker/gateway:test';
const SHUTDOWN_TIMEOUT_MS = 3000;

describe('gateway image', { skip, timeout: 20 * 60_000 }, () => {
  let engine: TestEngine;
  const name = `pt-gateway-test-${process.pid}`;

  before(() => {
    engine = startTestEngine();
    engine.build('services/gateway/Dockerfile', IMAGE);
  });
  after(() => {
    engine?.tryDocker(['rm', '-f', name]);
    engine?.tryDocker(['network', 'rm', name]);
    engine?.stop();
  });

  it('holds the gateway and its packages only, runs as a numeric non-root user, has a HEALTHCHECK', () => {
    const config = JSON.parse(engine.docker(['image', 'inspect', '--format', '{{json .Config}}', IMAGE]));
    assert.equal(config.User, '1000:1000');
    assert.ok(config.Healthcheck?.Test?.length > 0, 'HEALTHCHECK set');
    assert.deepEqual(config.Cmd, ['node', '--disable-warning=TimeoutNegativeWarning', 'services/gateway/dist/main.js']);
    const files = engine.docker(['run', '--rm', '--network', 'none', '--entrypoint', 'sh', IMAGE, '-c',
      'ls services packages; ls node_modules; find services packages -name "*.ts" -o -name "*.test.js" -o -name src | head']);
    assert.doesNotMatch(files, /stats-worker/, 'no other service');
    assert.doesNotMatch(files, /^(typescript|turbo|eslint|@testcontainers)$/m, 'no development dependencies');
    assert.doesNotMatch(files, /\.ts$|\.test\.js$|\/src$/m, 'no sources or tests');
    const size = imageSize(engine, IMAGE);
    const base = imageSize(engine, 'node:24.22.3-bookworm-slim');
    console.log(`# gateway image: ${(size / 1e6).toFixed(1)} MB, of which ${((size - base) / 1e6).toFixed(1)} MB above the Node base`);
  });

  it('answers announces over HTTP and UDP with a read-only root, turns healthy, stops on SIGTERM in time', async () => {
    // the engine has no default bridge: the container gets a network of the test's own
    engine.docker(['network', 'create', name]);
    engine.docker(['run', '-d', '--name', name, '--network', name, '--read-only', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges',
      '-e', `TRACKER_CONNECTION_SECRET=${randomBytes(32).toString('hex')}`, '-e', `TRACKER_SHUTDOWN_TIMEOUT_MS=${SHUTDOWN_TIMEOUT_MS}`,
      '-p', '127.0.0.1::6969/tcp', '-p', '127.0.0.1::6969/udp', IMAGE]);
    const httpPort = publishedPort(engine, name, '6969/tcp');
    const udpPort = publishedPort(engine, name, '6969/udp');
    assert.equal(await waitHealth(engine, name, 'healthy', 40_000), 'healthy', engine.docker(['logs', name], { stdio: 'pipe' }));

    // the image writes nowhere: its root is read-only and it is not root
    assert.equal(engine.docker(['exec', name, 'id', '-u']).trim(), '1000');
    assert.equal(engine.tryDocker(['exec', name, 'sh', '-c', 'echo x > /app/probe']).status !== 0, true, 'root filesystem is writable');

    const infoHash = randomBytes(20);
    const http = await httpGet(httpPort, announcePath({ infoHash, peerId: randomBytes(20), port: 6881, event: 'started', compact: 1 }));
    assert.equal(http.status, 200);
    assert.match(http.body.toString('latin1'), /^d8:completei0e10:incompletei1e8:intervali\d+e/);

    const connectionId = await udpConnect(udpPort);
    const reply = await udpExchange(udpPort, udpAnnouncePacket({ connectionId, transactionId: 7, infoHash, peerId: randomBytes(20), port: 6882, event: 2, left: 0n }));
    assert.ok(reply !== null, 'UDP announce answered');
    assert.equal(reply.readUInt32BE(0), 1, 'announce action');
    assert.equal(reply.readUInt32BE(12), 1, 'leechers: the HTTP peer');
    assert.equal(reply.readUInt32BE(16), 1, 'seeders: this UDP peer');
    assert.equal(reply.length, 20 + 6, 'the HTTP peer in the peer list');
    assert.equal(reply.readUInt16BE(24), 6881);

    // an idle keep-alive client must not hold the shutdown past its timeout
    const idle = connect(httpPort, '127.0.0.1');
    await new Promise((r) => idle.once('connect', r));
    const started = Date.now();
    engine.docker(['stop', '-t', '30', name]);
    const took = Date.now() - started;
    idle.destroy();
    const state = JSON.parse(engine.docker(['inspect', '--format', '{{json .State}}', name]));
    assert.equal(state.ExitCode, 0, `exited by itself, cleanly (137 would mean killed); exit ${state.ExitCode}, log:\n${engine.tryDocker(['logs', name]).stdout}${engine.tryDocker(['logs', name]).stderr}`);
    assert.ok(took < SHUTDOWN_TIMEOUT_MS + 2000, `stopped in ${took} ms`);
    assert.match(engine.docker(['logs', name], { stdio: 'pipe' }) + engine.tryDocker(['logs', name]).stderr, /shutting down/);
  });

  it('refuses a bad setting with an error that names the variable', () => {
    const r = engine.tryDocker(['run', '--rm', '--network', 'none', '-e', 'TRACKER_HTTP_PORT=http', IMAGE]);
    assert.equal(r.status, 2, r.stdout + r.stderr);
    assert.match(r.stderr + r.stdout, /TRACKER_HTTP_PORT/);
  });
});
