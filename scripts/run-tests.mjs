// Runs every compiled test file (dist/**/*.test.js) of every workspace whose source still exists,
// and the scripts' own tests, with node's test runner (test-files.mjs says which).
// Node 20's `node --test` takes no globs, so the files are listed here.
// Usage: node scripts/run-tests.mjs [substring filter ...]
import { spawnSync } from 'node:child_process';
import { testFiles } from './test-files.mjs';

const root = new URL('..', import.meta.url).pathname;
const filters = process.argv.slice(2);
const selected = (f) => filters.length === 0 || filters.some((s) => f.includes(s));

const { run, stale } = testFiles(root);
for (const f of stale.filter(selected)) console.error(`not run: ${f} (its source is gone; a clean build removes it)`);
const files = run.filter(selected);
if (files.length === 0) {
  console.error('no test files found (did the build run?)');
  process.exit(1);
}
const result = spawnSync(process.execPath, ['--test', '--test-reporter=spec', ...files], {
  cwd: root,
  stdio: 'inherit',
});
process.exit(result.status ?? 1);
