import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import fc from 'fast-check';
import { compactAddress, decodeCompactPeers, ipToBytes, ipv6Text } from './compact';

test('BEP 23: 10.10.10.5:128 is 0a0a0a050080', () => {
  const ip = ipToBytes('10.10.10.5');
  assert.ok(ip);
  assert.equal(compactAddress(ip, 128).toString('hex'), '0a0a0a050080');
  assert.deepEqual(decodeCompactPeers(Buffer.from('0a0a0a050080', 'hex'), 4), [{ ip: '10.10.10.5', port: 128 }]);
});

test('BEP 7: IPv6 compact peers are 18 bytes', () => {
  const ip = ipToBytes('2001:db8::1');
  assert.ok(ip);
  const c = compactAddress(ip, 6881);
  assert.equal(c.toString('hex'), '20010db8000000000000000000000001' + '1ae1');
  const two = Buffer.concat([c, compactAddress(ipToBytes('::1')!, 65535), Buffer.from([1, 2, 3])]);
  assert.deepEqual(decodeCompactPeers(two, 6), [
    { ip: '2001:db8::1', port: 6881 },
    { ip: '::1', port: 65535 },
  ]);
  assert.deepEqual(decodeCompactPeers(Buffer.from('0102030400500a', 'hex'), 4), [{ ip: '1.2.3.4', port: 80 }]);
  assert.deepEqual(decodeCompactPeers(Buffer.alloc(0), 4), []);
});

test('ipToBytes', () => {
  assert.equal(ipToBytes('1.2.3.4')?.toString('hex'), '01020304');
  assert.equal(ipToBytes('255.255.255.255')?.toString('hex'), 'ffffffff');
  assert.equal(ipToBytes('0.0.0.0')?.toString('hex'), '00000000');
  assert.equal(ipToBytes('::ffff:1.2.3.4')?.toString('hex'), '01020304');
  assert.equal(ipToBytes('::FFFF:102:304')?.toString('hex'), '01020304');
  assert.equal(ipToBytes('::1')?.toString('hex'), '0'.repeat(31) + '1');
  assert.equal(ipToBytes('::')?.toString('hex'), '0'.repeat(32));
  assert.equal(ipToBytes('1::')?.toString('hex'), '0001' + '0'.repeat(28));
  assert.equal(ipToBytes('fe80::1%eth0')?.toString('hex'), 'fe80' + '0'.repeat(27) + '1');
  assert.equal(ipToBytes('1:2:3:4:5:6:7:8')?.toString('hex'), '00010002000300040005000600070008');
  assert.equal(ipToBytes('1:2:3:4:5:6:1.2.3.4')?.toString('hex'), '000100020003000400050006' + '01020304');
  for (const bad of [
    '', 'abc', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1.2.3.4 ', '1..2.3', '1.2.3.4:80', ':', ':::', '1::2::3',
    '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', '12345::', 'g::1', '::ffff:1.2.3.256', ':1::', '1:', '1::2:', '::1%',
    '1:2:3:4:5:6:7:1.2.3.4', '::1.2.3', '[::1]',
  ]) {
    assert.equal(ipToBytes(bad), null, bad);
  }
});

/** Full, uncompressed IPv6 text: net normalises it, so it is an independent reference. */
const fullV6 = (u: Uint8Array) => Array.from({ length: 8 }, (_, i) => ((u[2 * i] << 8) | u[2 * i + 1]).toString(16)).join(':');

// Bytes with many zero words so the '::' and dotted-IPv4 cases come up often.
const v6bytes = fc
  .array(fc.oneof(fc.constant(0), fc.constant(0xffff), fc.integer({ min: 0, max: 0xffff })), { minLength: 8, maxLength: 8 })
  .map((words) => {
    const b = Buffer.alloc(16);
    words.forEach((w, i) => b.writeUInt16BE(w, 2 * i));
    return b;
  });

test('property: IPv6 text is what Node prints, and parses back to the same bytes', () => {
  fc.assert(
    fc.property(v6bytes, fc.integer({ min: 0, max: 65535 }), (ip, port) => {
      const text = ipv6Text(ip);
      assert.equal(text, new net.SocketAddress({ address: fullV6(ip), family: 'ipv6' }).address);
      const [peer] = decodeCompactPeers(compactAddress(ip, port), 6);
      assert.deepEqual(peer, { ip: text, port });
      const back = ipToBytes(text);
      const mapped = ip.subarray(0, 12).equals(Buffer.from('00000000000000000000ffff', 'hex'));
      assert.deepEqual(back, mapped ? ip.subarray(12) : ip);
      assert.deepEqual(ipToBytes(fullV6(ip)), back);
    }),
    { numRuns: 2000 },
  );
});

test('property: ipToBytes accepts exactly what net.isIP accepts', () => {
  fc.assert(
    fc.property(fc.array(fc.constantFrom(...'0123456789abcdefABg:.%'), { maxLength: 24 }), (chars) => {
      const s = chars.join('');
      assert.equal(ipToBytes(s) !== null, net.isIP(s) !== 0, s);
    }),
    { numRuns: 20000 },
  );
  fc.assert(
    fc.property(fc.ipV4(), (s) => assert.equal(ipToBytes(s)?.join('.'), s)),
  );
  fc.assert(
    fc.property(fc.ipV6(), (s) => {
      const b = ipToBytes(s);
      assert.ok(b !== null, s);
      assert.equal(b.length === 4 ? `::ffff:${b.join('.')}` : ipv6Text(b), new net.SocketAddress({ address: s, family: 'ipv6' }).address);
    }),
    { numRuns: 1000 },
  );
});
