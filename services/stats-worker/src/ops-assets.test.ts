/*
 * The operations assets in deploy/: every metric the Grafana dashboard and the alert rules query
 * is one a PeerTracker service really exports (read from the services' own registries), and
 * promtool accepts the Prometheus config and rules and passes the rules' unit tests.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createGateway } from '@peertracker/gateway/dist/app';
import { loadConfig } from '@peertracker/gateway/dist/config';
import { ApiMetrics, WorkerMetrics } from './metrics';
import { StatsState } from './state';

const DEPLOY = resolve(__dirname, '../../../deploy');

/** metric name -> its type, from a registry's exposition text */
function exported(text: string): Map<string, string> {
  return new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1], m[2]]));
}

/** the PeerTracker metric names a PromQL expression reads (`up` included) */
function queried(expr: string): string[] {
  return [...expr.matchAll(/\b(tracker_[a-z0-9_]+|stats_[a-z0-9_]+|up)\b(?=\s*[{[)\s]|$)/g)].map((m) => m[1]);
}

async function allExported(): Promise<Map<string, string>> {
  const gw = await createGateway(
    loadConfig({ TRACKER_HOST: '127.0.0.1', TRACKER_HTTP_PORT: '0', TRACKER_UDP_PORT: '0', KAFKA_BROKERS: '127.0.0.1:1', TRACKER_CONNECTION_SECRET: 'x'.repeat(32) }),
  );
  const gateway = exported(await gw.metrics.registry.metrics());
  await gw.close();
  // (a state that never connects: the lag gauge finds no Kafka and reports nothing)
  const state = new StatsState({ url: 'redis://127.0.0.1:1' });
  const worker = exported(await new WorkerMetrics(state, () => Promise.reject(new Error('no Kafka'))).registry.metrics());
  state.client.disconnect();
  const api = exported(await new ApiMetrics().registry.metrics());
  return new Map([...gateway, ...worker, ...api, ['up', 'gauge']]);
}

function check(names: Map<string, string>, where: string, exprs: string[]): void {
  assert.ok(exprs.length > 0, `no queries found in ${where}`);
  for (const expr of exprs) {
    const found = queried(expr);
    assert.ok(found.length > 0, `${where}: ${expr} reads no PeerTracker metric`);
    for (const name of found) {
      const base = name.replace(/_(bucket|sum|count)$/, '');
      const ok = names.has(name) || (name !== base && names.get(base) === 'histogram');
      assert.ok(ok, `${where}: ${name} is not exported by any service (in ${expr})`);
    }
  }
}

test('every metric the dashboard and the alerts query is exported by a service', async () => {
  const names = await allExported();
  const dashboard = JSON.parse(readFileSync(join(DEPLOY, 'grafana/peertracker.json'), 'utf8')) as { panels: { title: string; targets: { expr: string }[] }[] };
  check(
    names,
    'deploy/grafana/peertracker.json',
    dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr)),
  );
  const rules = readFileSync(join(DEPLOY, 'prometheus/alerts.yml'), 'utf8');
  // (the expressions: one line after "expr:", or the indented block after "expr: |")
  const exprs = [...rules.matchAll(/expr: \|\n((?: {10}.*\n)+)|expr: (.+)\n/g)].map((m) => (m[1] ?? m[2]).trim());
  check(names, 'deploy/prometheus/alerts.yml', exprs);
  // (and the check itself sees a wrong name)
  assert.throws(() => check(names, 'x', ['rate(tracker_annouces_total[5m])']), /tracker_annouces_total is not exported/);
});

test('promtool accepts the Prometheus config and the alert rules, and the rules pass their unit tests', (t) => {
  if (spawnSync('promtool', ['--version']).error) {
    if (process.env.CI === 'true') assert.fail('promtool is not installed (.ci/run installs Debian\'s prometheus package)');
    t.skip('promtool is not installed (Debian: apt-get install prometheus)');
    return;
  }
  const dir = join(DEPLOY, 'prometheus');
  for (const args of [['check', 'config', 'prometheus.yml'], ['check', 'rules', 'alerts.yml'], ['test', 'rules', 'alerts.test.yml']]) {
    const r = spawnSync('promtool', args, { cwd: dir, encoding: 'utf8' });
    assert.equal(r.status, 0, `promtool ${args.join(' ')}:\n${r.stdout}${r.stderr}`);
  }
});
