// A real Kubernetes API server for the chart's node:test tests, through scripts/k8s/apiserver.sh
// (etcd plus kube-apiserver on loopback; objects are validated and stored, no pod runs).
//
//   const k8s = await startApiServer();
//   after(() => k8s.stop());
//   const r = k8s.kubectl(['apply', '--dry-run=server', '-f', '-'], { input });
//   assert.equal(r.status, 0, r.stderr);
//
// The script is told this process's pid (K8S_OWNER_PID): if the test process dies before its
// `after` hook runs, a watchdog stops the server anyway.
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const script = join(root, 'scripts/k8s/apiserver.sh');

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', cwd: root, maxBuffer: 64 << 20, ...opts });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The folder of the tools scripts/k8s/tools.sh builds (bin/helm, bin/kubectl, ...), or null. */
export function k8sTools() {
  const r = run('bash', [join(root, 'scripts/k8s/tools.sh'), 'path']);
  return r.status === 0 ? r.stdout.trim() : null;
}

/**
 * Starts etcd and kube-apiserver with their files in `dir` (a new temporary folder by default;
 * stop() removes it). Throws, with the script's message and the logs' tails, if they do not come
 * up (it then has stopped what it started).
 */
export async function startApiServer(dir = mkdtempSync(join(tmpdir(), 'peertracker-k8s-'))) {
  const tools = k8sTools();
  if (!tools) throw new Error('k8s tools not built: run scripts/k8s/tools.sh build');
  // a pipe on stdout that the servers kept open would keep spawnSync waiting: the script gives
  // them files instead
  const started = run('bash', [script, 'start', dir], {
    env: { ...process.env, K8S_OWNER_PID: String(process.pid) },
    timeout: 120_000,
  });
  const kubeconfig = /^KUBECONFIG=(.*)$/m.exec(started.stdout)?.[1];
  if (started.status !== 0 || !kubeconfig) {
    throw new Error(`apiserver.sh start failed (${started.status}):\n${started.stderr}`);
  }
  const kubectlBin = join(tools, 'bin/kubectl');
  let stopped = false;
  return {
    kubeconfig,
    tools,
    /** kubectl against this server; opts go to spawnSync (input: for `-f -`). */
    kubectl(args, opts = {}) {
      return run(kubectlBin, ['--kubeconfig', kubeconfig, ...args], { timeout: 60_000, ...opts });
    },
    /** Stops both processes and removes the folder; calling it again does nothing. */
    stop() {
      if (stopped) return;
      const r = run('bash', [script, 'stop', dir], { timeout: 60_000 });
      if (r.status !== 0) throw new Error(`apiserver.sh stop failed (${r.status}):\n${r.stderr}`);
      stopped = true;
    },
  };
}
