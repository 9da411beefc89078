// What the memory benchmarks share: loading the compiled tracker package and reading the heap
// after a full garbage collection (run them with `node --expose-gc`).
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** @peertracker/tracker from its build output; exits with a message when it is missing. */
export async function loadTracker(script) {
  if (typeof globalThis.gc !== 'function') fail(`run with \`node --expose-gc ${script}\``);
  const modulePath = join(root, 'packages/tracker/dist/index.js');
  if (!existsSync(modulePath)) fail(`${modulePath} not found: run \`npm run build\` first`);
  return import(pathToFileURL(modulePath).href);
}

/** Collects garbage until what is left is live (several passes: weak and finalized objects). */
export async function fullGc() {
  for (let i = 0; i < 4; i++) {
    globalThis.gc();
    await new Promise((r) => setImmediate(r));
  }
}

/** V8 heap in use plus array buffers (where the stores keep their typed arrays). */
export function memory() {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

function fail(message) {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}
