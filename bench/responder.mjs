// The benchmark's reference: a trivial Node server that answers like a tracker without doing any
// tracker work, so it is the ceiling for any Node tracker on the same core (DESIGN.md,
// "Performance, and how it is measured").
//
//   UDP (BEP 15): connect -> a valid 16-byte connect reply; announce -> a fixed 20 + 50·6-byte
//                 reply (action 1, the request's transaction id); anything else is ignored.
//   HTTP: any GET -> 200 with a fixed bencoded body the size of a compact 50-peer announce reply,
//         keep-alive.
//
// Usage: node bench/responder.mjs [--host 127.0.0.1] [--http-port N] [--udp-port N]
//        (or RESPONDER_HOST / RESPONDER_HTTP_PORT / RESPONDER_UDP_PORT; port 0 = any free port).
// Prints one line `{"ready":true,"http":N,"udp":N}` on stdout once both are listening.

import dgram from 'node:dgram';
import http from 'node:http';
import { isIPv6 } from 'node:net';

function arg(name, envName, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i !== -1 && process.argv[i + 1] !== undefined) return process.argv[i + 1];
  return process.env[envName] ?? fallback;
}

const host = arg('host', 'RESPONDER_HOST', '127.0.0.1');
const httpPort = Number(arg('http-port', 'RESPONDER_HTTP_PORT', '6969'));
const udpPort = Number(arg('udp-port', 'RESPONDER_UDP_PORT', '6969'));
for (const [name, p] of [['http-port', httpPort], ['udp-port', udpPort]]) {
  if (!Number.isInteger(p) || p < 0 || p > 65535) {
    process.stderr.write(`responder: bad --${name}\n`);
    process.exit(2);
  }
}

const PEERS = 50;

// ---- UDP -------------------------------------------------------------------------------------

const PROTOCOL_ID_HI = 0x417;
const PROTOCOL_ID_LO = 0x27101980;
const CONNECTION_ID = Buffer.from('b0e1c2d3a4f5e6d7', 'hex');

const announceTemplate = Buffer.alloc(20 + PEERS * 6);
announceTemplate.writeUInt32BE(1, 0); // action announce
announceTemplate.writeUInt32BE(1800, 8); // interval
announceTemplate.writeUInt32BE(33, 12); // leechers
announceTemplate.writeUInt32BE(17, 16); // seeders
for (let i = 0; i < PEERS; i++) {
  announceTemplate.writeUInt32BE(0x0a000001 + i, 20 + i * 6);
  announceTemplate.writeUInt16BE(10000 + i, 24 + i * 6);
}

const udp = dgram.createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4' });
udp.on('message', (msg, rinfo) => {
  if (msg.length < 16) return;
  const action = msg.readUInt32BE(8);
  if (action === 0) {
    if (msg.readUInt32BE(0) !== PROTOCOL_ID_HI || msg.readUInt32BE(4) !== PROTOCOL_ID_LO) return;
    const reply = Buffer.allocUnsafe(16);
    reply.writeUInt32BE(0, 0);
    msg.copy(reply, 4, 12, 16);
    CONNECTION_ID.copy(reply, 8);
    udp.send(reply, rinfo.port, rinfo.address);
  } else if (action === 1) {
    if (msg.length < 98) return;
    // a fresh buffer per reply: the send may complete asynchronously
    const reply = Buffer.allocUnsafe(announceTemplate.length);
    announceTemplate.copy(reply);
    msg.copy(reply, 4, 12, 16);
    udp.send(reply, rinfo.port, rinfo.address);
  }
});

// ---- HTTP ------------------------------------------------------------------------------------

const peers = Buffer.alloc(PEERS * 6);
for (let i = 0; i < PEERS; i++) {
  peers.writeUInt32BE(0x0a000001 + i, i * 6);
  peers.writeUInt16BE(10000 + i, 4 + i * 6);
}
const body = Buffer.concat([
  Buffer.from(`d8:completei17e10:incompletei33e8:intervali1800e12:min intervali60e5:peers${peers.length}:`),
  peers,
  Buffer.from('e'),
]);
const headers = { 'Content-Type': 'text/plain', 'Content-Length': String(body.length) };

const server = http.createServer((req, res) => {
  res.writeHead(200, headers);
  res.end(body);
});
server.keepAliveTimeout = 60_000;

// ---- start / stop ----------------------------------------------------------------------------

let ready = 0;
const onReady = () => {
  if (++ready < 2) return;
  process.stdout.write(`${JSON.stringify({ ready: true, http: server.address().port, udp: udp.address().port, httpBodyBytes: body.length, udpReplyBytes: announceTemplate.length })}\n`);
};
const fail = (err) => {
  process.stderr.write(`responder: ${err.message}\n`);
  process.exit(1);
};
udp.on('error', fail);
server.on('error', fail);
udp.bind(udpPort, host, onReady);
server.listen(httpPort, host, onReady);

const stop = () => {
  udp.close();
  server.closeAllConnections?.();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
