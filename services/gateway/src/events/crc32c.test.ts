import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { nativeCrc32c } from './crc32c';
import './kafka-producer';

test('kafkajs checksums record batches with the native CRC-32C, which equals the RFC 3720 one', () => {
  assert.equal(nativeCrc32c, true, '@node-rs/crc32 did not load');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const crc = require('kafkajs/src/protocol/recordBatch/crc32C/index.js') as (b: Buffer) => number;
  // the check value of CRC-32C (Castagnoli) for "123456789"
  assert.equal(crc(Buffer.from('123456789')), 0xe3069283);
  assert.equal(crc(Buffer.alloc(0)), 0);
  // and kafkajs's own JavaScript one, on random buffers of many lengths
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const js = require('kafkajs/src/protocol/recordBatch/crc32C/crc32C.js') as (b: Buffer) => number;
  for (let n = 1; n < 3000; n += 97) {
    const b = randomBytes(n);
    assert.equal(crc(b), js(b) >>> 0, `length ${n}`);
  }
});
