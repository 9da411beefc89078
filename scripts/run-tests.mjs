// Runs every compiled test file (dist/**/*.test.js) of every workspace whose source still exists,
// and the scripts' own tests, with node's test runner (test-files.mjs says which).
// Node 20's `node --test` takes no globs, so the files are listed here.
// Usage: node scripts/run-tests.mjs [substring filter ...]
//
// A run always ends. A test file whose setup fails halfway can leave a server's child process
// running, which keeps that file's process alive after its last test, and node's runner waits for
// it forever (CI, 2026-12-07: a Kafka broker failed to start, the Redis Cluster started beside it
// was never stopped, and the run hung until CI's limit). So:
//   - --test-force-exit ends each file once its tests are done, whatever it left running;
//   - --test-timeout fails a single test that hangs, by name (TEST_TIMEOUT_S, default 600);
//   - the whole run is stopped after TEST_RUN_TIMEOUT_S (default 2400) and fails, saying so;
//   - the runner has a process group of its own, and whatever is left in it at the end (servers
//     a test did not stop) is listed and killed, so nothing outlives the run.
import { execFileSync, spawn } from 'node:child_process';
import { testFiles } from './test-files.mjs';

const root = new URL('..', import.meta.url).pathname;
const filters = process.argv.slice(2);
const selected = (f) => filters.length === 0 || filters.some((s) => f.includes(s));

function seconds(name, fallback) {
  const raw = process.env[name]?.trim();
  if (!raw) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) {
    console.error(`${name}: "${raw}" is not a whole number of seconds above 0`);
    process.exit(2);
  }
  return n;
}
const testTimeoutS = seconds('TEST_TIMEOUT_S', 600);
const runTimeoutS = seconds('TEST_RUN_TIMEOUT_S', 2400);

const { run, stale } = testFiles(root);
for (const f of stale.filter(selected)) console.error(`not run: ${f} (its source is gone; a clean build removes it)`);
const files = run.filter(selected);
if (files.length === 0) {
  console.error('no test files found (did the build run?)');
  process.exit(1);
}

const child = spawn(process.execPath, ['--test', '--test-force-exit', `--test-timeout=${testTimeoutS * 1000}`, '--test-reporter=spec', ...files], {
  cwd: root,
  stdio: 'inherit',
  detached: true,
});

/** pid and command line of every process still in the runner's group */
function groupMembers() {
  try {
    return execFileSync('ps', ['-eo', 'pid=,pgid=,args='], { encoding: 'utf8' })
      .split('\n')
      .map((l) => l.trim().match(/^(\d+)\s+(\d+)\s+(.*)$/))
      .filter((m) => m && Number(m[2]) === child.pid && !m[3].endsWith('<defunct>'))
      .map((m) => `${m[1]} ${m[3].slice(0, 160)}`);
  } catch {
    return [];
  }
}

function killGroup(signal) {
  try {
    process.kill(-child.pid, signal);
  } catch {
    // (the group is empty already)
  }
}

let timedOut = false;
const deadline = setTimeout(() => {
  timedOut = true;
  console.error(`\nrun-tests: the tests did not finish in TEST_RUN_TIMEOUT_S=${runTimeoutS} s; still running:\n  ${groupMembers().join('\n  ')}`);
  killGroup('SIGKILL');
}, runTimeoutS * 1000);

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    killGroup(signal);
    setTimeout(() => killGroup('SIGKILL'), 5000).unref();
  });
}

child.on('exit', (code, signal) => {
  clearTimeout(deadline);
  const left = groupMembers();
  if (left.length > 0) {
    console.error(`run-tests: ${left.length} process(es) a test started were still running, now killed:\n  ${left.join('\n  ')}`);
    killGroup('SIGKILL');
  }
  process.exit(timedOut ? 1 : (code ?? (signal ? 1 : 0)));
});
