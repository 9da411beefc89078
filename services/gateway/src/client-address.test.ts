import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ClientAddressResolver, endpointOf, unmapIPv4 } from './client-address';

describe('client address', () => {
  it('unmaps IPv4-mapped IPv6 addresses', () => {
    assert.equal(unmapIPv4('::ffff:198.51.100.4'), '198.51.100.4');
    assert.equal(unmapIPv4('2001:db8::1'), '2001:db8::1');
    assert.equal(unmapIPv4('::ffff:zzz'), '::ffff:zzz');
  });

  it('turns addresses into endpoints of the right family', () => {
    assert.deepEqual(endpointOf('198.51.100.4'), { family: 4, ip: Buffer.from([198, 51, 100, 4]) });
    const v6 = endpointOf('2001:db8::1');
    assert.equal(v6?.family, 6);
    assert.equal(v6?.ip.toString('hex'), '20010db8000000000000000000000001');
    assert.equal(endpointOf('not an ip'), null);
  });

  it('ignores X-Forwarded-For from untrusted sockets', () => {
    const r = new ClientAddressResolver([]);
    assert.equal(r.resolve('203.0.113.9', '198.51.100.4'), '203.0.113.9');
  });

  it('takes the first untrusted hop from the right behind trusted proxies', () => {
    const r = new ClientAddressResolver(['10.0.0.0/8', '::1']);
    assert.equal(r.resolve('::ffff:10.1.2.3', '1.1.1.1, 198.51.100.4, 10.9.9.9'), '198.51.100.4');
    assert.equal(r.resolve('::1', '2001:db8::5'), '2001:db8::5');
    assert.equal(r.resolve('10.1.2.3', ['198.51.100.4', '10.0.0.2']), '198.51.100.4');
  });

  it('reads X-Forwarded-For entries that carry ports or brackets', () => {
    const r = new ClientAddressResolver(['10.0.0.0/8']);
    assert.equal(r.resolve('10.1.2.3', '198.51.100.4:5678'), '198.51.100.4');
    assert.equal(r.resolve('10.1.2.3', '[2001:db8::7]:443'), '2001:db8::7');
    assert.equal(r.resolve('10.1.2.3', '[2001:db8::8]'), '2001:db8::8');
  });

  it('falls back to the socket when the header is all proxies or garbage', () => {
    const r = new ClientAddressResolver(['10.0.0.0/8']);
    assert.equal(r.resolve('10.1.2.3', '10.0.0.1'), '10.1.2.3');
    assert.equal(r.resolve('10.1.2.3', 'bogus'), '10.1.2.3');
    assert.equal(r.resolve('10.1.2.3', undefined), '10.1.2.3');
    assert.equal(r.resolve(undefined, '1.2.3.4'), undefined);
  });
});
