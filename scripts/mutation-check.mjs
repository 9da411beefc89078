// Mutation check of the UDP anti-spoofing guards (issue 7): each guard is removed in turn from a
// copy of the compiled gateway, and the tests that claim to protect it must then fail. A guard
// whose removal no test notices is unprotected, whatever the tests say.
//
// The source and dist/ are never touched: every mutant is a copy of services/gateway/dist under
// dist/.mutants/ (skipped by run-tests.mjs, like every dot directory), deleted however this ends.
// Needs a build first (npm test does one). Usage: node scripts/mutation-check.mjs
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const dist = join(root, 'services/gateway/dist');
const work = join(dist, '.mutants');

const NO_ID_TEST = 'answers a source without a connection ID only with connect replies, byte for byte';
const OTHER_IP_TEST = 'accepts its own IDs and rejects other IPs and other secrets';
const TESTS = ['gateway.fuzz.test.js', 'connection-id.test.js'];

/** find: a regular expression matching the guard exactly once in the compiled file. */
const mutants = [
  {
    name: 'udp-frontend answers malformed requests without checking the connection ID',
    file: 'udp-frontend.js',
    find: /if \(!this\.o\.connectionIds\.isValid\(parsed\.connectionId, from\.ip\)\) \{\s*return this\.o\.metrics\.udpDroppedBadConnectionId\.inc\(\);\s*\}/,
    replace: '',
    mustFail: [NO_ID_TEST],
  },
  {
    name: 'udp-frontend serves announces and scrapes without checking the connection ID',
    file: 'udp-frontend.js',
    find: /if \(!this\.o\.connectionIds\.isValid\(request\.connectionId, from\.ip\)\) \{\s*return this\.o\.metrics\.udpDroppedBadConnectionId\.inc\(\);\s*\}/,
    replace: '',
    mustFail: [NO_ID_TEST],
  },
  {
    name: 'ConnectionIds.isValid accepts every 8-byte ID',
    file: 'connection-id.js',
    find: /isValid\(id, ip\) \{\s*if \(id\.length !== 8\)\s*return false;/,
    replace: 'isValid(id, ip) {\n        if (id.length === 8) return true;',
    mustFail: [NO_ID_TEST, OTHER_IP_TEST],
  },
  {
    name: 'ConnectionIds ignores the IP (an ID issued to one address is valid from any)',
    file: 'connection-id.js',
    find: /ip\.copy\(m, 4\);\s*\(0, siphash24_1\.sipHash24\)\(key, m, 0, 4 \+ ip\.length\);/,
    replace: '(0, siphash24_1.sipHash24)(key, m, 0, 4);',
    mustFail: [NO_ID_TEST, OTHER_IP_TEST],
  },
];

/** Runs the tests in `dir`; returns the names of the tests that failed (TAP "not ok"). */
function failedTests(dir) {
  const r = spawnSync(process.execPath, ['--test', '--test-reporter=tap', ...TESTS.map((t) => join(dir, t))], {
    cwd: root,
    encoding: 'utf8',
    // fewer HTTP cases: the HTTP fuzz guards nothing checked here
    env: { ...process.env, FUZZ_HTTP_CASES: '50' },
    maxBuffer: 64 << 20,
  });
  if (r.error) throw r.error;
  return new Set([...r.stdout.matchAll(/^\s*not ok \d+ - (.*?)(?: # .*)?$/gm)].map((m) => m[1].trim()));
}

function prepare(name) {
  const dir = join(work, name);
  rmSync(dir, { recursive: true, force: true });
  for (const entry of readdirSync(dist)) {
    if (join(dist, entry) !== work) cpSync(join(dist, entry), join(dir, entry), { recursive: true });
  }
  return dir;
}

const cleanup = () => rmSync(work, { recursive: true, force: true });
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    cleanup();
    process.exit(130);
  });
}

let problems = 0;
try {
  if (!TESTS.every((t) => existsSync(join(dist, t)))) throw new Error('services/gateway/dist has no compiled tests: build first');
  const baseline = failedTests(prepare('baseline'));
  if (baseline.size > 0) throw new Error(`the unmutated tests fail, so mutants prove nothing: ${[...baseline].join('; ')}`);
  console.log('ok   unmutated: the tests pass');
  for (const [i, m] of mutants.entries()) {
    const dir = prepare(`m${i}`);
    const path = join(dir, m.file);
    const source = readFileSync(path, 'utf8');
    const matches = source.match(new RegExp(m.find.source, 'g')) ?? [];
    if (matches.length !== 1) {
      problems++;
      console.log(`FAIL ${m.name}: the guard was found ${matches.length} times in ${m.file} (the code changed: update this check)`);
      continue;
    }
    writeFileSync(path, source.replace(m.find, m.replace));
    const failed = failedTests(dir);
    const missed = m.mustFail.filter((t) => !failed.has(t));
    if (missed.length > 0) {
      problems++;
      console.log(`FAIL ${m.name}: survived; these did not fail: ${missed.join('; ')}`);
    } else {
      console.log(`ok   ${m.name}: killed by ${m.mustFail.join('; ')}`);
    }
  }
} catch (e) {
  problems++;
  console.log(`FAIL ${e.message}`);
} finally {
  cleanup();
}
process.exit(problems === 0 ? 0 : 1);
