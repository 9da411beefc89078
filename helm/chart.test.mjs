// The Helm chart's checks, strongest first: installed, upgraded and uninstalled on a real
// kube-apiserver (with etcd) with the default and the large values file, every rendered object
// validated server-side in strict mode; then helm lint --strict, kubeconform in strict mode
// against the same release's schemas, the chart's helm-unittest tests, and its values table and
// schema checked against values.yaml. The tools come from scripts/k8s/tools.sh; without them the
// tests skip, except under CI=true, where they fail.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { startApiServer } from './k8s-testing.mjs';
import { documentedValues, renderReadme } from './values-doc.mjs';

const root = new URL('..', import.meta.url).pathname;
const chart = join(root, 'helm/peertracker');
const K8S_VERSION = '1.37.2';
const valueSets = {
  default: [],
  large: ['-f', join(chart, 'ci/large-values.yaml')],
};

const found = spawnSync('bash', [join(root, 'scripts/k8s/tools.sh'), 'path'], { encoding: 'utf8' });
const tools = found.status === 0 ? found.stdout.trim() : undefined;
const missing = tools === undefined ? 'the Kubernetes tools are not built (bash scripts/k8s/tools.sh build)' : undefined;
const skip = missing !== undefined && process.env.CI !== 'true' ? missing : false;

const home = mkdtempSync(join(tmpdir(), 'peertracker-helm-'));
after(() => rmSync(home, { recursive: true, force: true }));
const env = {
  ...process.env,
  PATH: `${tools}/bin:${process.env.PATH}`,
  HELM_PLUGINS: `${tools}/helm-plugins`,
  // helm's caches and settings in a folder of the test's own, not the user's
  HELM_CACHE_HOME: join(home, 'cache'),
  HELM_CONFIG_HOME: join(home, 'config'),
  HELM_DATA_HOME: join(home, 'data'),
};

function run(cmd, args, input) {
  const r = spawnSync(join(tools, 'bin', cmd), args, { env, input, encoding: 'utf8', maxBuffer: 64 << 20 });
  // (helm notes each symlinked file in files/ on stderr: noise, not a warning)
  r.stderr = r.stderr.replace(/^.*found symbolic link in path.*\n/gm, '');
  return r;
}
function ok(cmd, args, input) {
  const r = run(cmd, args, input);
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')}:\n${r.stderr}${r.stdout}`);
  return r.stdout;
}
const render = (set, extra = []) => ok('helm', ['template', 't', chart, '--kube-version', K8S_VERSION, ...valueSets[set], ...extra]);
const objects = (text) => parseAllDocuments(text).map((d) => d.toJSON()).filter(Boolean);

describe('the Helm chart', { skip }, () => {
  before(() => assert.equal(missing, undefined, `${missing}: under CI=true this fails instead of skipping`));

  it('installs, upgrades and uninstalls on a real API server, with both values files', { timeout: 300_000 }, async () => {
    const k8s = await startApiServer(join(home, 'k8s'));
    try {
      const kubectl = (args, input) => {
        const r = k8s.kubectl(args, { input });
        assert.equal(r.status, 0, `kubectl ${args.join(' ')}:\n${r.stderr}${r.stdout}`);
        return r.stdout;
      };
      const get = (ns, what) => JSON.parse(kubectl(['-n', ns, 'get', ...what, '-o', 'json']));
      const helm = (args) => ok('helm', ['--kubeconfig', k8s.kubeconfig, ...args]);
      // the Prometheus Operator's CRDs, so that ServiceMonitor and PrometheusRule are validated too
      for (const kind of ['servicemonitors', 'prometheusrules']) kubectl(['apply', '-f', join(tools, 'crds', `${kind}.yaml`)]);
      kubectl(['wait', '--for', 'condition=Established', '--timeout=60s', 'crd/servicemonitors.monitoring.coreos.com', 'crd/prometheusrules.monitoring.coreos.com']);

      for (const set of Object.keys(valueSets)) {
        const ns = `pt-${set}`;
        kubectl(['create', 'namespace', ns]);
        // strict server-side validation of every object (unknown and duplicate fields included);
        // `helm install --dry-run=server` would not validate them
        const rendered = render(set, ['--namespace', ns]);
        kubectl(['apply', '--dry-run=server', '--validate=strict', '-n', ns, '-f', '-'], rendered);

        helm(['install', 't', chart, '-n', ns, ...valueSets[set]]);
        const secret = get(ns, ['secret', 't-peertracker-connection']);
        const value = Buffer.from(secret.data['connection-secret'], 'base64').toString();
        assert.match(value, /^[A-Za-z0-9]{64}$/);

        const services = Object.fromEntries(get(ns, ['services']).items.map((s) => [s.metadata.name, s.spec]));
        const announce = set === 'default' ? [['t-peertracker-gateway', ['TCP', 'UDP']]] : [['t-peertracker-gateway-http', ['TCP']], ['t-peertracker-gateway-udp', ['UDP']]];
        for (const [name, protocols] of announce) {
          const s = services[name];
          assert.ok(s, `Service ${name}: have ${Object.keys(services)}`);
          assert.equal(s.type, 'LoadBalancer');
          assert.equal(s.externalTrafficPolicy, 'Local');
          // the server gives a Local LoadBalancer a health-check node port, which cloud balancers
          // use to send traffic only to nodes with a gateway
          assert.ok(s.healthCheckNodePort > 0, `${name} has no healthCheckNodePort`);
          assert.deepEqual(s.ports.map((p) => [p.protocol, p.port]), protocols.map((p) => [p, 6969]));
        }
        assert.equal(services['t-peertracker-gateway-metrics'].clusterIP, 'None');

        const gateway = get(ns, ['deployment', 't-peertracker-gateway']).spec;
        const pod = gateway.template.spec;
        assert.equal(pod.terminationGracePeriodSeconds, set === 'default' ? 27 : 32);
        assert.equal(pod.containers[0].securityContext.readOnlyRootFilesystem, true);
        if (set === 'default') {
          assert.equal(gateway.replicas, 1);
          assert.equal(get(ns, ['hpa']).items.length, 0);
          assert.equal(get(ns, ['pdb']).items.length, 0);
        } else {
          const hpa = get(ns, ['hpa', 't-peertracker-gateway']).spec;
          assert.deepEqual([hpa.minReplicas, hpa.maxReplicas, hpa.metrics.map((m) => m.type)], [6, 60, ['Resource', 'Pods']]);
          const pdbs = Object.fromEntries(get(ns, ['pdb']).items.map((p) => [p.metadata.name, p.spec.maxUnavailable]));
          assert.deepEqual(pdbs, { 't-peertracker-gateway': '10%', 't-peertracker-stats-worker': 1, 't-peertracker-stats-api': 1 });
          assert.equal(get(ns, ['deployment', 't-peertracker-stats-worker']).spec.replicas, 6);
          const password = pod.containers[0].env.find((e) => e.name === 'REDIS_PASSWORD');
          assert.deepEqual(password?.valueFrom, { secretKeyRef: { name: 'redis-cluster', key: 'redis-password' } });
          assert.equal(get(ns, ['networkpolicies']).items.length, 3);
          assert.equal(get(ns, ['ingress', 't-peertracker-stats-api']).spec.rules[0].host, 'stats.tracker.example.org');
          assert.equal(get(ns, ['servicemonitor', 't-peertracker']).spec.jobLabel, 'app.kubernetes.io/component');
          assert.ok(get(ns, ['prometheusrule', 't-peertracker']).spec.groups.length >= 3);
          assert.ok(JSON.parse(get(ns, ['configmap', 't-peertracker-dashboard']).data['peertracker.json']).panels.length > 10);
        }

        // an upgrade that changes the pods keeps the generated secret
        helm(['upgrade', 't', chart, '-n', ns, ...valueSets[set], '--set', 'gateway.env.TRACKER_ANNOUNCE_INTERVAL=900']);
        const kept = Buffer.from(get(ns, ['secret', 't-peertracker-connection']).data['connection-secret'], 'base64').toString();
        assert.equal(kept, value, 'the connection secret changed on upgrade');
        const gatewayEnv = get(ns, ['deployment', 't-peertracker-gateway']).spec.template.spec.containers[0].env;
        assert.deepEqual(gatewayEnv.find((e) => e.name === 'TRACKER_ANNOUNCE_INTERVAL'), { name: 'TRACKER_ANNOUNCE_INTERVAL', value: '900' });
        assert.match(helm(['status', 't', '-n', ns]), /REVISION: 2/);

        helm(['uninstall', 't', '-n', ns]);
        const left = kubectl(['-n', ns, 'get', 'deployments,services,secrets,configmaps,hpa,pdb,networkpolicies,ingresses,serviceaccounts,servicemonitors,prometheusrules', '-l', 'app.kubernetes.io/instance=t', '-o', 'name']);
        assert.equal(left.trim(), '', `left after uninstall:\n${left}`);
      }

      // what only a real server refuses: a node port outside the cluster's range passes the
      // schema (ranges differ between clusters) but not the API server
      kubectl(['create', 'namespace', 'pt-bad']);
      const bad = run('helm', ['--kubeconfig', k8s.kubeconfig, 'install', 't', chart, '-n', 'pt-bad', '--set', 'gateway.service.httpNodePort=40000']);
      assert.notEqual(bad.status, 0);
      assert.match(bad.stderr, /nodePort.*40000.*not in the valid range|provided port is not in the valid range/s);
    } finally {
      k8s.stop();
    }
  });

  it('lints strictly with each values file', () => {
    for (const set of Object.keys(valueSets)) ok('helm', ['lint', '--strict', chart, ...valueSets[set]]);
  });

  it(`renders objects that kubeconform accepts in strict mode against Kubernetes ${K8S_VERSION}'s schemas`, () => {
    const kinds = {};
    for (const set of Object.keys(valueSets)) {
      const rendered = render(set);
      kinds[set] = objects(rendered).map((o) => o.kind).sort();
      ok('kubeconform', [
        '-strict', '-summary', '-kubernetes-version', K8S_VERSION,
        '-schema-location', `${tools}/schemas/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json`,
        // (the Prometheus Operator's kinds are validated by the API server test, with their CRDs)
        '-skip', 'ServiceMonitor,PrometheusRule',
      ], rendered);
    }
    assert.deepEqual(kinds.default, ['Deployment', 'Secret', 'Service', 'Service', 'ServiceAccount']);
    assert.deepEqual(kinds.large, ['ConfigMap', 'Deployment', 'Deployment', 'Deployment', 'HorizontalPodAutoscaler', 'Ingress', 'NetworkPolicy', 'NetworkPolicy', 'NetworkPolicy',
      'PodDisruptionBudget', 'PodDisruptionBudget', 'PodDisruptionBudget', 'PrometheusRule', 'Secret', 'Service', 'Service', 'Service', 'Service', 'Service', 'ServiceAccount', 'ServiceMonitor']);
    // and kubeconform is not blind: an unknown field is refused
    const broken = render('default').replace('revisionHistoryLimit: 5', 'revisionHistoryLimit: 5\n  replicaz: 2');
    const r = run('kubeconform', ['-strict', '-kubernetes-version', K8S_VERSION, '-schema-location', `${tools}/schemas/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json`], broken);
    assert.notEqual(r.status, 0);
    assert.match(r.stdout, /replicaz/);
  });

  it('passes its helm-unittest tests of the templates', () => {
    const out = ok('helm', ['unittest', chart]);
    const m = /Tests:\s+(\d+) passed, (\d+) total/.exec(out);
    assert.ok(m && m[1] === m[2] && Number(m[1]) >= 30, out);
  });

  it('refuses values of the wrong type and unknown keys, naming them', () => {
    for (const [set, named] of [
      ['gateway.replicas=two', /gateway\/replicas.*want integer/],
      ['gateway.replica=2', /additional properties 'replica' not allowed/],
      ['gateway.service.externalTrafficPolicy=local', /externalTrafficPolicy/],
      ['redis.clusterNodes={redis-0}', /clusterNodes\/0/],
    ]) {
      const r = run('helm', ['template', 't', chart, '--set', set]);
      assert.notEqual(r.status, 0, set);
      assert.match(r.stderr, named, set);
    }
  });
});

describe('the chart values', () => {
  const text = readFileSync(join(chart, 'values.yaml'), 'utf8');
  it('are each documented, and the README table is current (node helm/values-doc.mjs)', () => {
    const { rows, undocumented } = documentedValues(text);
    assert.deepEqual(undocumented, []);
    const readme = readFileSync(join(chart, 'README.md'), 'utf8');
    assert.ok(renderReadme(readme, rows) === readme, 'the values table is stale: run node helm/values-doc.mjs');
  });

  it('are exactly what values.schema.json knows, and it refuses unknown keys at every level', () => {
    const schema = JSON.parse(readFileSync(join(chart, 'values.schema.json'), 'utf8'));
    const resolve = (s) => (s.$ref ? schema.definitions[s.$ref.split('/').pop()] : s);
    const schemaKeys = [];
    const walk = (s, prefix) => {
      s = resolve(s);
      if (!s.properties) return;
      assert.equal(s.additionalProperties, false, `${prefix || 'the top level'} takes unknown keys`);
      for (const [k, v] of Object.entries(s.properties)) {
        schemaKeys.push(prefix + k);
        walk(v, `${prefix}${k}.`);
      }
    };
    walk(schema, '');
    const valueKeys = [];
    const walkValues = (v, prefix, s) => {
      for (const [k, x] of Object.entries(v)) {
        valueKeys.push(prefix + k);
        const sub = s && resolve(s).properties?.[k];
        if (x && typeof x === 'object' && !Array.isArray(x) && sub && resolve(sub).properties) walkValues(x, `${prefix}${k}.`, sub);
      }
    };
    walkValues(parseAllDocuments(text)[0].toJSON(), '', schema);
    assert.deepEqual(valueKeys.sort(), schemaKeys.sort());
  });
});
