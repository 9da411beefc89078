/*
 * TLS and SASL settings of the connections to Redis and Kafka, read from the environment in the
 * same way by the gateway, the stats worker and the stats API (this package is the one all three
 * load at run time). Files are read once, at start: a renewed certificate takes a restart (on
 * Kubernetes, a rolling one), which the deployment guide says.
 *
 *   REDIS_TLS / KAFKA_TLS               true: connect with TLS (a rediss:// REDIS_URL implies it)
 *   <P>_TLS_CA_FILE                     PEM bundle of the CAs to trust (default: Node's own roots)
 *   <P>_TLS_CERT_FILE, <P>_TLS_KEY_FILE a client certificate and its key, for servers that ask for
 *                                       one (mutual TLS); both or neither
 *   <P>_TLS_SERVERNAME                  the name the servers' certificates must carry (and SNI);
 *                                       default each server's own address, which for a Redis
 *                                       Cluster is the IP its nodes announce
 *   KAFKA_SASL_MECHANISM                plain, scram-sha-256 or scram-sha-512
 *   KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD
 *
 * There is deliberately no setting that turns certificate checks off: give the CA instead.
 */
import { readFileSync } from 'node:fs';
import { connect as connectTcp, isIP, type Socket } from 'node:net';
import { connect as connectTls, createSecureContext, type ConnectionOptions } from 'node:tls';

/** A setting that cannot be used; the message names the variable and never shows a secret. */
export class SettingError extends Error {
  override readonly name = 'SettingError';
}

type Env = Record<string, string | undefined>;

function get(env: Env, name: string): string | undefined {
  const v = env[name]?.trim();
  return v ? v : undefined;
}

function flag(env: Env, name: string): boolean | undefined {
  const v = get(env, name)?.toLowerCase();
  if (v === undefined) return undefined;
  if (['true', '1', 'yes'].includes(v)) return true;
  if (['false', '0', 'no'].includes(v)) return false;
  throw new SettingError(`${name} must be true or false (got ${JSON.stringify(v)})`);
}

function pemFile(env: Env, name: string, what: RegExp): Buffer | undefined {
  const path = get(env, name);
  if (path === undefined) return undefined;
  let text: Buffer;
  try {
    text = readFileSync(path);
  } catch (err) {
    throw new SettingError(`${name}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  // (only the PEM header is looked at: a key's body is a secret and never goes into a message)
  if (!what.test(text.toString('latin1'))) throw new SettingError(`${name}: ${path} holds no PEM ${what === CERT ? 'certificate' : 'private key'}`);
  return text;
}

const CERT = /-----BEGIN CERTIFICATE-----/;
const KEY = /-----BEGIN (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----/;

export type TlsPrefix = 'REDIS' | 'KAFKA';

/**
 * The TLS options of <prefix>_TLS*, or undefined when TLS is off. `impliedBy` names what else
 * turned TLS on (a rediss:// URL), so that <prefix>_TLS may stay unset. Files given while TLS is
 * off are an error, not ignored: the operator meant something by them.
 */
export function tlsFromEnv(env: Env, prefix: TlsPrefix, impliedBy?: string): ConnectionOptions | undefined {
  const on = flag(env, `${prefix}_TLS`);
  const names = ['CA_FILE', 'CERT_FILE', 'KEY_FILE', 'SERVERNAME'].map((n) => `${prefix}_TLS_${n}`);
  if (on === false && impliedBy !== undefined) throw new SettingError(`${prefix}_TLS=false contradicts ${impliedBy}`);
  if (on !== true && impliedBy === undefined) {
    const stray = names.find((n) => get(env, n) !== undefined);
    if (stray !== undefined) throw new SettingError(`${stray} is set but TLS is off: set ${prefix}_TLS=true`);
    return undefined;
  }
  const [caName, certName, keyName, serverName] = names;
  const ca = pemFile(env, caName, CERT);
  const cert = pemFile(env, certName, CERT);
  const key = pemFile(env, keyName, KEY);
  if ((cert === undefined) !== (key === undefined)) {
    throw new SettingError(`${cert === undefined ? certName : keyName} is missing: a client certificate needs both ${certName} and ${keyName}`);
  }
  const options: ConnectionOptions = {};
  if (ca !== undefined) options.ca = ca;
  if (cert !== undefined) Object.assign(options, { cert, key });
  const servername = get(env, serverName);
  if (servername !== undefined) {
    if (!/^[A-Za-z0-9*]([A-Za-z0-9.*-]{0,251}[A-Za-z0-9])?$/.test(servername)) throw new SettingError(`${serverName} must be a host name (got ${JSON.stringify(servername)})`);
    options.servername = servername;
  }
  try {
    // (here rather than at the first connection: a key that does not match its certificate, or
    // a file that is not what it says, then stops the start with the variables' names)
    createSecureContext(options);
  } catch (err) {
    throw new SettingError(`${[caName, certName, keyName].filter((n) => get(env, n) !== undefined).join(', ')}: not usable for TLS (${(err as Error).message})`);
  }
  return options;
}

/**
 * REDIS_TLS* for REDIS_URL (`url`, when one server is named) or a cluster: a rediss:// URL turns
 * TLS on, and REDIS_TLS=true with a redis:// URL is refused (ioredis would connect in plaintext).
 */
export function redisTlsFromEnv(env: Env, url: string | undefined): ConnectionOptions | undefined {
  const tls = tlsFromEnv(env, 'REDIS', url?.startsWith('rediss://') ? 'a rediss:// REDIS_URL' : undefined);
  if (tls !== undefined && url?.startsWith('redis://')) throw new SettingError('REDIS_TLS=true with a redis:// REDIS_URL: write rediss:// for TLS');
  return tls;
}

const MECHANISMS = ['plain', 'scram-sha-256', 'scram-sha-512'] as const;
type Mechanism = (typeof MECHANISMS)[number];

/** (one type per mechanism, as kafkajs declares them) */
export type KafkaSasl = { [M in Mechanism]: { mechanism: M; username: string; password: string } }[Mechanism];

/** What kafkajs takes beside the brokers to reach a secured Kafka (its `ssl` and `sasl`). */
export interface KafkaSecurity {
  ssl?: ConnectionOptions;
  sasl?: KafkaSasl;
}

/** KAFKA_TLS* and KAFKA_SASL_*; an empty object for a plaintext Kafka without authentication. */
export function kafkaSecurityFromEnv(env: Env): KafkaSecurity {
  const ssl = tlsFromEnv(env, 'KAFKA');
  const mechanism = get(env, 'KAFKA_SASL_MECHANISM')?.toLowerCase();
  const username = get(env, 'KAFKA_SASL_USERNAME');
  // (a password's spaces are its own)
  const password = env.KAFKA_SASL_PASSWORD || undefined;
  if (mechanism === undefined) {
    const stray = username !== undefined ? 'KAFKA_SASL_USERNAME' : password !== undefined ? 'KAFKA_SASL_PASSWORD' : undefined;
    if (stray !== undefined) throw new SettingError(`${stray} is set without KAFKA_SASL_MECHANISM (${MECHANISMS.join(', ')})`);
    return ssl === undefined ? {} : { ssl };
  }
  if (!(MECHANISMS as readonly string[]).includes(mechanism)) throw new SettingError(`KAFKA_SASL_MECHANISM must be one of ${MECHANISMS.join(', ')} (got ${JSON.stringify(mechanism)})`);
  if (username === undefined) throw new SettingError(`KAFKA_SASL_MECHANISM=${mechanism} needs KAFKA_SASL_USERNAME`);
  if (password === undefined) throw new SettingError(`KAFKA_SASL_MECHANISM=${mechanism} needs KAFKA_SASL_PASSWORD`);
  const sasl = { mechanism: mechanism as Mechanism, username, password } as KafkaSasl;
  return ssl === undefined ? { sasl } : { ssl, sasl };
}

/** The variables these functions read (for a config schema that rejects unknown ones). */
export const CONNECTION_VARIABLES = [
  ...(['REDIS', 'KAFKA'] as const).flatMap((p) => [`${p}_TLS`, `${p}_TLS_CA_FILE`, `${p}_TLS_CERT_FILE`, `${p}_TLS_KEY_FILE`, `${p}_TLS_SERVERNAME`]),
  'KAFKA_SASL_MECHANISM',
  'KAFKA_SASL_USERNAME',
  'KAFKA_SASL_PASSWORD',
];

/** What connectRedis needs of an ioredis client (this package does not load ioredis). */
export interface ConnectableRedis {
  connect(): Promise<unknown>;
  disconnect(): void;
  on(event: 'error', listener: (e: Error & { lastNodeError?: Error }) => void): unknown;
  off(event: 'error', listener: (e: Error & { lastNodeError?: Error }) => void): unknown;
}

/**
 * Connects the client, or rejects with the node's own reason: ioredis's cluster client says only
 * "None of startup nodes is available" (the reason comes with an error event, and for a TLS
 * failure only as "Connection is closed.", which redisNodeProblem then explains). firstNode: a
 * cluster's first seed node, undefined for one server.
 */
export async function connectRedis(client: ConnectableRedis, firstNode: { host: string; port: number } | undefined, tls: ConnectionOptions | undefined): Promise<void> {
  let nodeError: string | undefined;
  const onError = (e: Error & { lastNodeError?: Error }) => {
    nodeError = (e.lastNodeError ?? e).message;
  };
  client.on('error', onError);
  try {
    await client.connect();
  } catch (e) {
    client.disconnect();
    if (nodeError === 'Connection is closed.' && firstNode !== undefined) nodeError = (await redisNodeProblem(firstNode, tls)) ?? nodeError;
    const reason = nodeError !== undefined && nodeError !== (e as Error).message ? `: ${nodeError}` : '';
    throw new Error(`cannot connect to Redis (${(e as Error).message}${reason})`, { cause: e });
  } finally {
    client.off('error', onError);
  }
}

/**
 * Why a Redis node refuses a connection at the socket or TLS level, or undefined when it answers
 * (whatever it answers: a password refused is Redis's own reply, which the client reports). The
 * cluster client learns the slot map over connections whose errors it drops, so an untrusted or
 * misnamed certificate, or a node that wants TLS or a client certificate, reaches it only as
 * "Connection is closed."; this looks again with a connection of its own.
 */
export function redisNodeProblem(node: { host: string; port: number }, tls: ConnectionOptions | undefined, timeoutMs = 3000): Promise<string | undefined> {
  return new Promise((resolve) => {
    // (a PING: a node that wants TLS closes a plaintext connection at its first bytes, and one
    // that wants a client certificate says so only after the handshake, when it is read)
    const ping = () => socket.write('PING\r\n');
    const socket: Socket =
      tls === undefined
        ? connectTcp(node.port, node.host, ping)
        : connectTls({ host: node.host, port: node.port, ...tls, servername: tls.servername ?? (isIP(node.host) ? undefined : node.host) }, ping);
    const done = (problem: string | undefined) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(problem);
    };
    const timer = setTimeout(() => done(`no answer within ${timeoutMs} ms`), timeoutMs);
    socket.once('data', () => done(undefined));
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code === 'ECONNRESET' ? closedHint(tls) : err.message));
    socket.once('close', () => done(closedHint(tls)));
  });
}

function closedHint(tls: ConnectionOptions | undefined): string {
  return tls === undefined
    ? 'the node closed the connection unanswered: does it ask for TLS (REDIS_TLS=true)?'
    : 'the node closed the TLS connection unanswered: does it ask for a client certificate (REDIS_TLS_CERT_FILE, REDIS_TLS_KEY_FILE)?';
}
