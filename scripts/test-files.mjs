// Which test files scripts/run-tests.mjs runs: the compiled tests (dist/**/*.test.js) of every
// workspace whose TypeScript source (src/**/*.test.ts) still exists, and these scripts' own tests
// (scripts/*.test.mjs), and the Helm chart's (helm/*.test.mjs). A compiled test whose source was deleted or renamed stays in dist/ until a
// clean build; running it would test code that no longer exists, so it is listed as stale instead.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path, out);
    else if (name.endsWith('.test.js') && path.includes('/dist/')) out.push(path);
  }
  return out;
}

/** The source a compiled test was built from: <workspace>/dist/x.test.js ← <workspace>/src/x.test.ts. */
export function sourceOf(compiled) {
  const at = compiled.indexOf('/dist/');
  return `${compiled.slice(0, at)}/src/${compiled.slice(at + '/dist/'.length).replace(/\.js$/, '.ts')}`;
}

/** Test files under root (paths relative to it, sorted): those to run, and stale compiled ones. */
export function testFiles(root) {
  const run = [];
  const stale = [];
  for (const top of ['packages', 'services']) {
    if (!existsSync(join(root, top))) continue;
    for (const f of walk(join(root, top), [])) (existsSync(sourceOf(f)) ? run : stale).push(relative(root, f));
  }
  for (const top of ['scripts', 'helm']) {
    if (!existsSync(join(root, top))) continue;
    for (const name of readdirSync(join(root, top))) if (name.endsWith('.test.mjs')) run.push(join(top, name));
  }
  return { run: run.sort(), stale: stale.sort() };
}
