/*
 * A real Kafka broker for tests (DESIGN.md, "Real infrastructure in tests"), from the provider
 * selectKafkaProvider() picks:
 *   - env: KAFKA_BROKERS=host:port,…, a running cluster, used as it is and never stopped;
 *   - local: deploy/kafka.sh runs a one-node KRaft broker from Maven Central's jars on this
 *     machine's Java, on free 127.0.0.1 ports, in a temporary directory (what CI runs);
 *   - testcontainers: a broker in Docker (kafka-testcontainers.ts), when Java or Maven is missing
 *     and a Docker engine answers, or when KAFKA_TEST_PROVIDER=testcontainers.
 * KAFKA_TEST_PROVIDER=local|testcontainers forces the choice. Under CI=true a missing Java or
 * Maven fails the test that asks for a broker; elsewhere kafkaSkipReason() says why the tests are
 * skipped. Only the local provider can kill and pause its broker (outage).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { decodeRecord, type DecodedRecord } from '@peertracker/events';
import { dockerEngineReachableSync, freePort, type TestCertificates } from '@peertracker/redis-store/dist/testing';

const SCRIPT = resolve(__dirname, '../../../../deploy/kafka.sh');
const START_TIMEOUT_MS = 90_000;

export interface KafkaTestBroker {
  brokers: string[];
  /** Stops what this started (nothing for KAFKA_BROKERS). */
  stop(): Promise<void>;
  /**
   * Local brokers only (outage tests): SIGKILL, and start again on the same port and data;
   * SIGSTOP and SIGCONT (a broker that hangs).
   */
  outage?: { kill(): Promise<void>; start(): Promise<void>; pause(): void; resume(): void };
}

function installed(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

export type KafkaProvider = 'env' | 'local' | 'testcontainers';

export function selectKafkaProvider(env: NodeJS.ProcessEnv = process.env): KafkaProvider {
  if (env.KAFKA_BROKERS?.trim()) return 'env';
  const forced = env.KAFKA_TEST_PROVIDER?.trim();
  if (forced === 'testcontainers' || forced === 'local') return forced;
  if (forced) throw new Error(`KAFKA_TEST_PROVIDER: "${forced}" is neither "testcontainers" nor "local"`);
  if (missingTools().length > 0 && dockerEngineReachableSync(env).reachable) return 'testcontainers';
  return 'local';
}

function missingTools(): string[] {
  return ['java', 'mvn'].filter((c) => !installed(c));
}

/** Why Kafka tests cannot run here, or undefined when they can (always undefined under CI=true). */
export function kafkaSkipReason(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.CI === 'true' || selectKafkaProvider(env) !== 'local') return undefined;
  const missing = missingTools();
  return missing.length > 0 ? `Kafka tests need ${missing.join(' and ')}, a Docker engine, or KAFKA_BROKERS: install Java 17 and Maven` : undefined;
}

/** true when something accepts TCP connections on 127.0.0.1:port */
export function listening(port: number): Promise<boolean> {
  return new Promise((done) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      done(true);
    });
    s.once('error', () => done(false));
  });
}

export async function startKafkaTestBroker(env: NodeJS.ProcessEnv = process.env): Promise<KafkaTestBroker> {
  const provider = selectKafkaProvider(env);
  if (provider === 'env') return { brokers: env.KAFKA_BROKERS!.split(',').map((b) => b.trim()), stop: async () => {} };
  if (provider === 'testcontainers') return (await import('./kafka-testcontainers')).startKafkaContainer(env);
  const [node] = await startNodes(1);
  return { brokers: [`127.0.0.1:${node.port}`], stop: node.stop, outage: node };
}

/** A local broker whose second listener takes TLS (with client certificates) and SASL. */
export interface SecuredKafkaBroker extends KafkaTestBroker {
  /** the TLS and SASL listener (PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 for every user) */
  secureBrokers: string[];
}

/**
 * One local broker with a plaintext listener (for the tests' own reading) and a SASL_SSL one: its
 * certificate from certs (keystore serverBundle), clients' certificates required from certs.ca,
 * and `users` (name → password; letters, digits, . _ -) accepted by every mechanism. Always local.
 */
export async function startSecuredKafkaBroker(certs: TestCertificates, users: Record<string, string>): Promise<SecuredKafkaBroker> {
  const [node] = await startNodes(1, async () => {
    const secure = await freePort();
    return {
      KAFKA_SECURE_PORT: String(secure),
      KAFKA_TLS_KEYSTORE: certs.serverBundle,
      KAFKA_TLS_CLIENT_CA: certs.ca,
      KAFKA_SASL_USERS: Object.entries(users).map(([u, p]) => `${u}:${p}`).join(','),
    };
  });
  return { brokers: [`127.0.0.1:${node.port}`], secureBrokers: [`127.0.0.1:${node.env.KAFKA_SECURE_PORT}`], stop: node.stop, outage: node };
}

/** A cluster of local Kafka nodes (each broker and controller), with its nodes' outages. */
export interface KafkaTestCluster {
  brokers: string[];
  nodes: KafkaTestNode[];
  stop(): Promise<void>;
}

export interface KafkaTestNode {
  port: number;
  /** what the node was started with beside its ports */
  env: Record<string, string>;
  /** SIGKILL; start again on the same port and data; SIGSTOP and SIGCONT */
  kill(): Promise<void>;
  start(): Promise<void>;
  pause(): void;
  resume(): void;
  stop(): Promise<void>;
}

/**
 * `count` local nodes forming one KRaft cluster (for the broker-failure test), new topics with
 * `count` replicas and min.insync.replicas one less. Always local: KAFKA_BROKERS is not used.
 */
export async function startKafkaTestCluster(count: number): Promise<KafkaTestCluster> {
  const nodes = await startNodes(count);
  return { brokers: nodes.map((n) => `127.0.0.1:${n.port}`), nodes, stop: async () => void (await Promise.all(nodes.map((n) => n.stop()))) };
}

/** extra: more of deploy/kafka.sh's variables for each node (asked again on each attempt: new ports) */
async function startNodes(count: number, extra: () => Promise<Record<string, string>> = async () => ({})): Promise<KafkaTestNode[]> {
  for (const cmd of ['java', 'mvn']) {
    if (!installed(cmd)) throw new Error(`Kafka tests need ${cmd} on PATH (.ci/run installs it), or KAFKA_BROKERS`);
  }
  // (a port found free can still be bound by another test process before the broker binds it:
  // rare, since freePort picks at random below the ephemeral range; then again on new ports)
  for (let attempt = 1; ; attempt++) {
    try {
      return await startNodesOnce(count, extra);
    } catch (e) {
      if (attempt >= 3 || !/Address already in use/.test(String(e))) throw e;
    }
  }
}

async function startNodesOnce(count: number, extra: () => Promise<Record<string, string>>): Promise<KafkaTestNode[]> {
  const ports: { port: number; controller: number }[] = [];
  for (let i = 0; i < count; i++) ports.push({ port: await freePort(), controller: await freePort() });
  const voters = ports.map((p, i) => `${i + 1}@127.0.0.1:${p.controller}`).join(',');
  // (Kafka's cluster ids are 16 bytes in URL-safe base64; like Kafka's own, never one that
  // starts with '-', which its command line would take for an option)
  let clusterId = randomBytes(16).toString('base64url');
  while (clusterId.startsWith('-')) clusterId = randomBytes(16).toString('base64url');
  const extras: Record<string, string>[] = [];
  for (let i = 0; i < count; i++) extras.push(await extra());
  const nodes = ports.map((p, i) => node(i + 1, p.port, p.controller, { ...extras[i], KAFKA_VOTERS: voters, KAFKA_CLUSTER_ID: clusterId, KAFKA_REPLICATION: String(count) }));
  // (together: the controllers need a quorum before any of them answers; if one fails, all stop)
  const started = await Promise.allSettled(nodes.map((n) => n.start()));
  const failed = started.find((r) => r.status === 'rejected');
  if (failed) {
    await Promise.all(nodes.map((n) => n.stop()));
    throw (failed as PromiseRejectedResult).reason;
  }
  return nodes;
}

function node(id: number, port: number, controller: number, extraEnv: Record<string, string>): KafkaTestNode {
  const dir = mkdtempSync(join(tmpdir(), 'pt-kafka-'));
  const childEnv = { ...process.env, KAFKA_PORT: String(port), KAFKA_CONTROLLER_PORT: String(controller), KAFKA_DIR: dir, KAFKA_PARTITIONS: '4', KAFKA_NODE_ID: String(id), ...extraEnv };
  let child: ChildProcess | undefined;
  let log = '';
  const start = async () => {
    child = spawn('bash', [SCRIPT, 'run'], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (b: Buffer) => {
      log = (log + b.toString()).slice(-4000);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    const deadline = Date.now() + START_TIMEOUT_MS;
    const secure = extraEnv.KAFKA_SECURE_PORT === undefined ? undefined : Number(extraEnv.KAFKA_SECURE_PORT);
    while (!(await listening(port)) || (secure !== undefined && !(await listening(secure)))) {
      if (child.exitCode !== null) throw new Error(`the Kafka broker exited (${child.exitCode}): ${log}`);
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`the Kafka broker did not answer on 127.0.0.1:${port} in ${START_TIMEOUT_MS} ms: ${log}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const kill = async () => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await exited;
  };
  return {
    port,
    env: extraEnv,
    kill,
    start,
    pause: () => child?.kill('SIGSTOP'),
    resume: () => child?.kill('SIGCONT'),
    stop: async () => {
      child?.kill('SIGCONT');
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Every record of the topic from its start, decoded, until `count` events are in (or timeoutMs). */
export async function readTopic(brokers: string[], topic: string, count: number, timeoutMs = 30_000): Promise<DecodedRecord[]> {
  const kafka = new Kafka({ brokers, clientId: 'test-reader', logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: `reader-${randomBytes(6).toString('hex')}` });
  const records: DecodedRecord[] = [];
  let events = 0;
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, timeoutMs);
      consumer
        .run({
          eachMessage: async ({ message }) => {
            const r = decodeRecord(message.value!);
            records.push(r);
            events += r.events.length;
            if (events >= count) {
              clearTimeout(timer);
              // (a little longer: anything beyond count would show up as a duplicate)
              setTimeout(resolve, 500);
            }
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return records;
}

