/*
 * kafkajs computes each record batch's CRC-32C in JavaScript: 175 µs per 75 kB batch (about a
 * thousand events) on the test machine, 1.2 % of the publishing gateway's CPU in a profile. The
 * native one of @node-rs/crc32 takes 18 µs for the same bytes. kafkajs (pinned at 2.2.4, no longer
 * maintained) has no hook for it, so its checksum module is replaced in the require cache before
 * kafkajs loads; if the native package cannot load on a platform, kafkajs keeps its own.
 * Import this before kafkajs (kafka-producer.ts does).
 */
import { createRequire } from 'node:module';

const req = createRequire(__filename);

/** true when kafkajs will use the native CRC-32C */
export let nativeCrc32c = false;

try {
  const { crc32c } = req('@node-rs/crc32') as { crc32c(input: Buffer, initial?: number): number };
  const path = req.resolve('kafkajs/src/protocol/recordBatch/crc32C/index.js');
  if (req.cache[path] === undefined) {
    // (the same contract as kafkajs's module: the checksum of a buffer as an unsigned 32-bit number)
    req.cache[path] = { id: path, filename: path, loaded: true, exports: (buffer: Buffer) => crc32c(buffer) } as unknown as NodeJS.Module;
    nativeCrc32c = true;
  }
} catch {
  nativeCrc32c = false;
}
