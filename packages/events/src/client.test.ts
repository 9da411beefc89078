import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { clientName, decodeClient } from './client';

/** A 20-byte peer id: the prefix, then random bytes (as clients make them). */
function id(prefix: string | Buffer): Buffer {
  const p = typeof prefix === 'string' ? Buffer.from(prefix, 'latin1') : prefix;
  return Buffer.concat([p, randomBytes(20 - p.length)]);
}

test('names the clients of the usual peer-id conventions, with their versions', () => {
  const cases: [string | Buffer, string, string][] = [
    // Azureus style
    ['-qB4650-', 'azureus', 'qBittorrent 4.6.5'],
    ['-qB46A0-', 'azureus', 'qBittorrent 4.6.10'],
    ['-TR2940-', 'azureus', 'Transmission 2.94'],
    ['-TR4060-', 'azureus', 'Transmission 4.0.6'],
    ['-TR300Z-', 'azureus', 'Transmission 3.0.0'],
    ['-LT2090-', 'azureus', 'libtorrent (Rasterbar) 2.0.9'],
    ['-lt0D80-', 'azureus', 'rTorrent (libTorrent) 0.13.8'],
    ['-DE211s-', 'azureus', 'Deluge 2.1.1'],
    ['-UT355W-', 'azureus', 'µTorrent 3.5.5'],
    ['-BC0204-', 'azureus', 'BitComet 2.04'],
    ['-WW0105-', 'azureus', 'WebTorrent 1.5'],
    ['-BI3500-', 'azureus', 'BiglyBT 3.5.0'],
    ['-Xy1234-', 'azureus', 'Azureus-style "Xy" 1.2.3.4'],
    // Mainline style
    ['A2-1-37-0-', 'mainline', 'aria2 1.37.0'],
    ['M4-3-6--', 'mainline', 'BitTorrent (Mainline) 4.3.6'],
    ['M7-12-1-', 'mainline', 'BitTorrent (Mainline) 7.12.1'],
    // Shadow style
    ['S58B-----', 'shadow', 'Shadow 5.8.11'],
    ['T03I-----', 'shadow', 'BitTornado 0.3.18'],
    // fixed prefixes
    [Buffer.concat([Buffer.from('exbc'), Buffer.from([0, 56])]), 'other', 'BitComet 0.56'],
    ['XBT054d-', 'other', 'XBT Client 0.5.4'],
    ['OP7685', 'other', 'Opera build 7685'],
  ];
  for (const [prefix, style, name] of cases) {
    // whatever the random rest of the id holds (digits and '-' among it)
    for (let k = 0; k < 300; k++) {
      const rest = k % 2 === 0 ? randomBytes(20) : Buffer.from(Array.from({ length: 20 }, () => '0123456789-'.charCodeAt(Math.floor(Math.random() * 11))));
      const p = typeof prefix === 'string' ? Buffer.from(prefix, 'latin1') : prefix;
      const c = decodeClient(Buffer.concat([p, rest.subarray(0, 20 - p.length)]));
      assert.equal(c.style, style, String(prefix));
      assert.equal(clientName(c), name, String(prefix));
    }
  }
});

test('an id of no known convention is unknown; so is a short one', () => {
  assert.equal(clientName(decodeClient(Buffer.alloc(20))), 'unknown');
  assert.equal(clientName(decodeClient(Buffer.from('-qB4650'))), 'unknown');
  // a version character outside 0-9 A-Z a-z: the client is known, its version is not
  assert.equal(clientName(decodeClient(id('-qB4#50-'))), 'qBittorrent');
});

test('any bytes give a client of printable code and version numbers 0-255, never an exception', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 24 }), (bytes) => {
      const c = decodeClient(bytes);
      assert.ok(c.code.length <= 4 && /^[\x20-\x7e]*$/.test(c.code));
      assert.ok(c.version.length <= 4 && c.version.every((v) => Number.isInteger(v) && v >= 0 && v <= 255));
      assert.equal(typeof clientName(c), 'string');
    }),
    { numRuns: 20_000 },
  );
});
