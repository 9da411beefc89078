import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { sourceOf, testFiles } from './test-files.mjs';

describe('test-files', () => {
  const root = mkdtempSync(join(tmpdir(), 'peertracker-test-files-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  const touch = (path) => {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), '');
  };

  it('runs compiled tests whose source exists, and lists those whose source is gone as stale', () => {
    for (const f of [
      'packages/p/src/a.test.ts',
      'packages/p/dist/a.test.js',
      'packages/p/dist/gone.test.js',
      'services/s/src/e2e/b.int.test.ts',
      'services/s/dist/e2e/b.int.test.js',
      'services/s/dist/e2e/renamed.int.test.js',
      'services/s/dist/helper.js',
      'services/s/dist/.mutants/m0/a.test.js',
      'packages/p/node_modules/x/dist/c.test.js',
      'scripts/own.test.mjs',
      'scripts/tool.mjs',
      'helm/chart.test.mjs',
      'helm/values-doc.mjs',
    ]) touch(f);
    assert.deepEqual(testFiles(root), {
      run: ['helm/chart.test.mjs', 'packages/p/dist/a.test.js', 'scripts/own.test.mjs', 'services/s/dist/e2e/b.int.test.js'],
      stale: ['packages/p/dist/gone.test.js', 'services/s/dist/e2e/renamed.int.test.js'],
    });
  });

  it('maps a compiled file to its source', () => {
    assert.equal(sourceOf('/r/services/gateway/dist/e2e/x.int.test.js'), '/r/services/gateway/src/e2e/x.int.test.ts');
  });
});
