import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger, throttled } from './log';

describe('throttled', () => {
  it('logs once per interval and counts what it held back', () => {
    const lines: Array<Record<string, unknown>> = [];
    const log = createLogger('info', (l) => lines.push(JSON.parse(l)));
    let now = 1_000;
    const report = throttled(log, 'error', 'store failed', 10_000, () => now);
    report({ n: 1 });
    for (let i = 0; i < 5; i++) {
      now += 1_000;
      report({ n: 2 + i });
    }
    now = 11_000;
    report({ n: 7 });
    assert.deepEqual(
      lines.map((l) => [l.level, l.msg, l.n, l.suppressedSinceLast]),
      [
        ['error', 'store failed', 1, 0],
        ['error', 'store failed', 7, 5],
      ],
    );
  });
});
