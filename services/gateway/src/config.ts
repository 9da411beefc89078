import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import type { ConnectionOptions } from 'node:tls';
import { z } from 'zod';
import {
  DEFAULT_MAX_PEERS_PER_ADDRESS,
  DEFAULT_MAX_PEERS_PER_SWARM,
  DEFAULT_MEMORY_MAX_PEERS,
  DEFAULT_MEMORY_MAX_SWARMS,
} from '@peertracker/tracker';
import { CONNECTION_VARIABLES, kafkaSecurityFromEnv, redisTlsFromEnv, SettingError, type KafkaSecurity } from '@peertracker/events';

/**
 * Gateway configuration, read from environment variables once at start-up.
 * Every variable is documented in the README's configuration table; keep the two in step.
 */
export interface GatewayConfig {
  host: string;
  httpPort: number;
  udpPort: number;
  /** HMAC key for stateless UDP connection IDs; every replica must share it */
  connectionSecret: Buffer;
  /** true when the secret was generated because TRACKER_CONNECTION_SECRET was unset */
  connectionSecretGenerated: boolean;
  /** a second secret whose connection IDs are accepted but never issued (rotation) */
  connectionSecretAccepted?: Buffer;
  announceIntervalSec: number;
  minIntervalSec: number;
  intervalJitterSec: number;
  peerLifetimeSec: number;
  defaultNumwant: number;
  maxNumwant: number;
  /** addresses or CIDR ranges whose X-Forwarded-For is believed */
  trustedProxies: string[];
  store: 'memory' | 'redis';
  /** TRACKER_STORE=redis: a single server (redis:// or rediss:// URL); exactly one of this and redisClusterNodes */
  redisUrl: string | undefined;
  /** TRACKER_STORE=redis: seed nodes of a Redis Cluster */
  redisClusterNodes: { host: string; port: number }[] | undefined;
  /** the Redis Cluster's ACL user and password (REDIS_USERNAME, REDIS_PASSWORD) */
  redisUsername?: string;
  redisPassword?: string;
  /** TLS to Redis (REDIS_TLS*, or a rediss:// REDIS_URL), or undefined */
  redisTls?: ConnectionOptions;
  /** put before every Redis key; never contains '{' or '}' */
  redisKeyPrefix: string;
  /** ms after which a Redis command (and a store call on the request path) fails instead of waiting */
  redisTimeoutMs: number;
  /** TRACKER_REDIS_BATCH_MAX: announces sent to one Redis master in one script call, at most; 1: each alone */
  redisBatchMax: number;
  /** start even if a Redis master may evict keys (maxmemory-policy other than noeviction), with a warning */
  redisAllowEviction: boolean;
  /** seconds a swarm without live peers (and its completed count) is kept after its last announce */
  swarmRetentionSec: number;
  fullScrape: boolean;
  maxUrlLength: number;
  maxScrapeHashes: number;
  /** bytes asked for the UDP socket's receive buffer (the kernel caps it at net.core.rmem_max) */
  udpRecvBuffer: number;
  /** most peers one swarm holds; 0: no limit */
  maxPeersPerSwarm: number;
  /** most peers one address (IPv6: one /64) holds in one swarm; 0: no limit */
  maxPeersPerAddress: number;
  /** TRACKER_STORE=memory: most peers held in all swarms; 0: no limit */
  memoryMaxPeers: number;
  /** TRACKER_STORE=memory: most swarms held, retained ones included; 0: no limit */
  memoryMaxSwarms: number;
  /** HTTP connections open at once; more are refused at accept (bounded below the fd limit at start) */
  httpMaxConnections: number;
  /** most HTTP connections one source address holds open (trusted proxies exempt); 0: no limit */
  httpMaxConnectionsPerIp: number;
  /** ms a connection may take to send a request's headers (slowloris), then it gets a 408 and is closed */
  httpHeadersTimeoutMs: number;
  /** ms a connection may take to send a whole request; at least httpHeadersTimeoutMs */
  httpRequestTimeoutMs: number;
  /** ms an idle keep-alive connection is kept after a response */
  httpKeepAliveTimeoutMs: number;
  /** on SIGTERM: ms /health answers 503 before the listeners close (for load balancers) */
  shutdownDelayMs: number;
  /** on SIGTERM: ms from the signal within which the process exits, answered or not */
  shutdownTimeoutMs: number;
  /** ms without a byte read or written after which a connection is closed (stalled readers) */
  httpIdleTimeoutMs: number;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  /**
   * TRACKER_METRICS_PORT: /metrics (and /health) on a port of their own, kept off the public
   * one; undefined: /metrics on the HTTP port
   */
  metricsPort: number | undefined;
  /** announce events to Kafka, or undefined (KAFKA_BROKERS unset: no events) */
  events: EventsConfig | undefined;
}

export interface EventsConfig {
  brokers: string[];
  /** TLS and SASL (KAFKA_TLS*, KAFKA_SASL_*) */
  security: KafkaSecurity;
  topic: string;
  /** names this gateway in its events (and as the Kafka client id) */
  gatewayId: string;
  flushMs: number;
  maxBufferedEvents: number;
  sendTimeoutMs: number;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

const int = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, `must be a whole number from ${min} to ${max}`)
    .transform(Number)
    .refine((n) => n >= min && n <= max, `must be a whole number from ${min} to ${max}`);

const bool = z
  .string()
  .trim()
  .toLowerCase()
  .refine((s) => ['true', 'false', '1', '0', 'yes', 'no'].includes(s), 'must be true or false')
  .transform((s) => s === 'true' || s === '1' || s === 'yes');

function isAddressOrCidr(entry: string): boolean {
  const [addr, bits, extra] = entry.split('/');
  if (extra !== undefined || !isIP(addr)) return false;
  if (bits === undefined) return true;
  if (!/^\d+$/.test(bits)) return false;
  return Number(bits) <= (isIP(addr) === 4 ? 32 : 128);
}

/** host:port, host being a name, an IPv4 address or a bracketed IPv6 address ([::1]:7000) */
function parseHostPort(entry: string): { host: string; port: number } | undefined {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):(\d{1,5})$/.exec(entry);
  if (m === null) return undefined;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return undefined;
  const host = m[1].startsWith('[') ? m[1].slice(1, -1) : m[1];
  if (m[1].startsWith('[') && isIP(host) !== 6) return undefined;
  return { host, port };
}

/** A comma-separated list of host:port (blank entries ignored), as strings. */
function hostPortList(example: string) {
  return z
    .string()
    .transform((s) =>
      s
        .split(',')
        .map((e) => e.trim())
        .filter(Boolean),
    )
    .refine((list) => list.length > 0 && list.every((e) => parseHostPort(e) !== undefined), `must be a comma-separated list of host:port, e.g. ${example}`);
}

const schema = z.object({
  TRACKER_HOST: z
    .string()
    .trim()
    .refine((s) => isIP(s) !== 0, 'must be an IP address to bind, e.g. :: or 0.0.0.0')
    .default('::'),
  TRACKER_HTTP_PORT: int(0, 65535).default('6969'),
  TRACKER_UDP_PORT: int(0, 65535).default('6969'),
  TRACKER_CONNECTION_SECRET: z
    .string()
    .min(32, 'must be at least 32 characters (e.g. 64 hex characters from `openssl rand -hex 32`)')
    .optional(),
  TRACKER_CONNECTION_SECRET_ACCEPTED: z
    .string()
    .min(32, 'must be at least 32 characters, like TRACKER_CONNECTION_SECRET')
    .optional(),
  TRACKER_ANNOUNCE_INTERVAL: int(1, 86400).default('1800'),
  TRACKER_MIN_INTERVAL: int(1, 86400).default('60'),
  TRACKER_INTERVAL_JITTER: int(0, 86400).default('180'),
  TRACKER_PEER_LIFETIME: int(1, 172800).optional(),
  TRACKER_DEFAULT_NUMWANT: int(0, 1000).default('50'),
  TRACKER_MAX_NUMWANT: int(0, 1000).default('100'),
  TRACKER_TRUSTED_PROXIES: z
    .string()
    .default('')
    .transform((s) =>
      s
        .split(',')
        .map((e) => e.trim())
        .filter(Boolean),
    )
    .refine((list) => list.every(isAddressOrCidr), 'must be a comma-separated list of IP addresses or CIDR ranges'),
  TRACKER_STORE: z
    .enum(['memory', 'redis'], { errorMap: () => ({ message: 'must be "memory" or "redis"' }) })
    .default('memory'),
  REDIS_URL: z
    .string()
    .trim()
    .refine((s) => {
      try {
        const u = new URL(s);
        return (u.protocol === 'redis:' || u.protocol === 'rediss:') && u.hostname !== '';
      } catch {
        return false;
      }
    }, 'must be a redis:// or rediss:// URL, e.g. redis://redis:6379')
    .optional(),
  REDIS_CLUSTER_NODES: hostPortList('redis-1:6379,redis-2:6379')
    .transform((list) => list.map((e) => parseHostPort(e)!))
    .optional(),
  REDIS_USERNAME: z.string().min(1).max(256).optional(),
  REDIS_PASSWORD: z.string().min(1).optional(),
  TRACKER_REDIS_KEY_PREFIX: z
    .string()
    .max(64, 'must be at most 64 characters')
    .refine((s) => !/[{}\s]/.test(s), 'must not contain {, } or whitespace')
    .default('pt:'),
  TRACKER_REDIS_TIMEOUT_MS: int(1, 60_000).default('1000'),
  TRACKER_REDIS_BATCH_MAX: int(1, 1024).default('64'),
  TRACKER_REDIS_ALLOW_EVICTION: bool.default('false'),
  TRACKER_SWARM_RETENTION: int(0, 365 * 86400).default('86400'),
  TRACKER_FULL_SCRAPE: bool.default('false'),
  TRACKER_MAX_URL_LENGTH: int(256, 65536).default('8192'),
  TRACKER_MAX_SCRAPE_HASHES: int(1, 1000).default('74'),
  TRACKER_UDP_RECV_BUFFER: int(65536, 1 << 30).default(String(8 << 20)),
  TRACKER_HTTP_MAX_CONNECTIONS: int(1, 1_000_000).default('10000'),
  TRACKER_HTTP_MAX_CONNECTIONS_PER_IP: int(0, 1_000_000).default('256'),
  // at most 10^7: a Redis pool keeps 38 bytes a peer in one string, and Redis strings end at 512 MB
  TRACKER_MAX_PEERS_PER_SWARM: int(0, 10_000_000).default(String(DEFAULT_MAX_PEERS_PER_SWARM)),
  TRACKER_MAX_PEERS_PER_ADDRESS: int(0, 100_000_000).default(String(DEFAULT_MAX_PEERS_PER_ADDRESS)),
  TRACKER_MEMORY_MAX_PEERS: int(0, 1_000_000_000).default(String(DEFAULT_MEMORY_MAX_PEERS)),
  TRACKER_MEMORY_MAX_SWARMS: int(0, 1_000_000_000).default(String(DEFAULT_MEMORY_MAX_SWARMS)),
  TRACKER_HTTP_HEADERS_TIMEOUT_MS: int(100, 600_000).default('10000'),
  TRACKER_HTTP_REQUEST_TIMEOUT_MS: int(100, 600_000).default('15000'),
  TRACKER_HTTP_KEEP_ALIVE_TIMEOUT_MS: int(100, 600_000).default('5000'),
  TRACKER_SHUTDOWN_DELAY_MS: int(0, 600_000).default('0'),
  TRACKER_SHUTDOWN_TIMEOUT_MS: int(100, 600_000).default('10000'),
  TRACKER_HTTP_IDLE_TIMEOUT_MS: int(100, 600_000).default('30000'),
  TRACKER_LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
  TRACKER_METRICS_PORT: int(0, 65535).optional(),
  KAFKA_BROKERS: hostPortList('kafka-1:9092,kafka-2:9092').optional(),
  KAFKA_TOPIC: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9._-]{1,249}$/, 'must be a Kafka topic name: 1-249 of A-Z a-z 0-9 . _ -')
    .default('announces'),
  TRACKER_GATEWAY_ID: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9._:-]{1,64}$/, 'must be 1-64 of A-Z a-z 0-9 . _ : -')
    .optional(),
  TRACKER_EVENTS_FLUSH_MS: int(1, 60_000).default('100'),
  TRACKER_EVENTS_BUFFER: int(1000, 100_000_000).default('200000'),
  TRACKER_EVENTS_SEND_TIMEOUT_MS: int(100, 600_000).default('10000'),
  // (checked by @peertracker/events, as in the stats worker)
  ...Object.fromEntries(CONNECTION_VARIABLES.map((name) => [name, z.string().optional()])),
});

/** variables whose values are secrets (a Redis URL may carry a password) */
const SECRETS = new Set(['TRACKER_CONNECTION_SECRET', 'TRACKER_CONNECTION_SECRET_ACCEPTED', 'REDIS_URL', 'REDIS_PASSWORD', 'KAFKA_SASL_PASSWORD']);

/**
 * Parses and validates the environment. Throws ConfigError naming the first bad variable.
 * Empty strings count as unset, so `TRACKER_X=` in a compose file means "use the default".
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const input: Record<string, string> = {};
  for (const key of Object.keys(schema.shape)) {
    const value = env[key];
    if (value !== undefined && value !== '') input[key] = value;
  }
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const name = String(issue.path[0]);
    // a secret's value never goes to the log, even a wrong one
    const got = SECRETS.has(name) ? `${(input[name] ?? '').length} characters` : JSON.stringify(input[name] ?? '');
    throw new ConfigError(`${name} ${issue.message} (got ${got})`);
  }
  const e = parsed.data;
  const check = (ok: boolean, message: string) => {
    if (!ok) throw new ConfigError(message);
  };
  check(
    e.TRACKER_MIN_INTERVAL <= e.TRACKER_ANNOUNCE_INTERVAL,
    `TRACKER_MIN_INTERVAL (${e.TRACKER_MIN_INTERVAL}) must not exceed TRACKER_ANNOUNCE_INTERVAL (${e.TRACKER_ANNOUNCE_INTERVAL})`,
  );
  check(
    e.TRACKER_INTERVAL_JITTER <= e.TRACKER_ANNOUNCE_INTERVAL,
    `TRACKER_INTERVAL_JITTER (${e.TRACKER_INTERVAL_JITTER}) must not exceed TRACKER_ANNOUNCE_INTERVAL (${e.TRACKER_ANNOUNCE_INTERVAL})`,
  );
  // A peer must outlive its own announce interval, or well-behaved clients drop out between announces.
  const longestInterval = e.TRACKER_ANNOUNCE_INTERVAL + e.TRACKER_INTERVAL_JITTER;
  const peerLifetimeSec = e.TRACKER_PEER_LIFETIME ?? Math.ceil(longestInterval * 1.5);
  check(
    peerLifetimeSec > longestInterval,
    `TRACKER_PEER_LIFETIME (${peerLifetimeSec}) must exceed TRACKER_ANNOUNCE_INTERVAL + TRACKER_INTERVAL_JITTER (${longestInterval})`,
  );
  check(
    e.TRACKER_DEFAULT_NUMWANT <= e.TRACKER_MAX_NUMWANT,
    `TRACKER_DEFAULT_NUMWANT (${e.TRACKER_DEFAULT_NUMWANT}) must not exceed TRACKER_MAX_NUMWANT (${e.TRACKER_MAX_NUMWANT})`,
  );
  check(
    e.TRACKER_HTTP_HEADERS_TIMEOUT_MS <= e.TRACKER_HTTP_REQUEST_TIMEOUT_MS,
    `TRACKER_HTTP_HEADERS_TIMEOUT_MS (${e.TRACKER_HTTP_HEADERS_TIMEOUT_MS}) must not exceed TRACKER_HTTP_REQUEST_TIMEOUT_MS (${e.TRACKER_HTTP_REQUEST_TIMEOUT_MS})`,
  );
  // the drain needs time after the readiness delay
  check(
    e.TRACKER_SHUTDOWN_DELAY_MS < e.TRACKER_SHUTDOWN_TIMEOUT_MS,
    `TRACKER_SHUTDOWN_DELAY_MS (${e.TRACKER_SHUTDOWN_DELAY_MS}) must be less than TRACKER_SHUTDOWN_TIMEOUT_MS (${e.TRACKER_SHUTDOWN_TIMEOUT_MS})`,
  );
  // the inactivity timeout would otherwise cut announces still waiting for Redis
  check(
    e.TRACKER_HTTP_IDLE_TIMEOUT_MS > e.TRACKER_REDIS_TIMEOUT_MS,
    `TRACKER_HTTP_IDLE_TIMEOUT_MS (${e.TRACKER_HTTP_IDLE_TIMEOUT_MS}) must exceed TRACKER_REDIS_TIMEOUT_MS (${e.TRACKER_REDIS_TIMEOUT_MS})`,
  );
  if (e.TRACKER_STORE === 'redis') {
    check(
      (e.REDIS_URL === undefined) !== (e.REDIS_CLUSTER_NODES === undefined),
      e.REDIS_URL === undefined
        ? 'TRACKER_STORE=redis needs REDIS_URL (one server) or REDIS_CLUSTER_NODES (a Redis Cluster); neither is set'
        : 'TRACKER_STORE=redis takes REDIS_URL (one server) or REDIS_CLUSTER_NODES (a Redis Cluster), not both',
    );
  }
  check(
    e.TRACKER_METRICS_PORT === undefined || e.TRACKER_METRICS_PORT === 0 || e.TRACKER_METRICS_PORT !== e.TRACKER_HTTP_PORT,
    `TRACKER_METRICS_PORT (${e.TRACKER_METRICS_PORT}) must differ from TRACKER_HTTP_PORT; leave it unset to serve /metrics on the HTTP port`,
  );
  const redis = e.TRACKER_STORE === 'redis';
  for (const name of ['REDIS_USERNAME', 'REDIS_PASSWORD'] as const) {
    if (e[name] !== undefined && e.REDIS_CLUSTER_NODES === undefined) {
      throw new ConfigError(`${name} applies to REDIS_CLUSTER_NODES; a single server's credentials go in REDIS_URL (redis://user:password@host:6379)`);
    }
  }
  const shared = <T>(read: () => T): T => {
    try {
      return read();
    } catch (err) {
      throw err instanceof SettingError ? new ConfigError(err.message) : err;
    }
  };
  const redisTls = redis ? shared(() => redisTlsFromEnv(input, e.REDIS_URL)) : undefined;
  const kafkaSecurity = e.KAFKA_BROKERS === undefined ? undefined : shared(() => kafkaSecurityFromEnv(input));
  const secret = e.TRACKER_CONNECTION_SECRET;
  return {
    host: e.TRACKER_HOST,
    httpPort: e.TRACKER_HTTP_PORT,
    udpPort: e.TRACKER_UDP_PORT,
    connectionSecret: secret !== undefined ? Buffer.from(secret, 'utf8') : randomBytes(32),
    connectionSecretGenerated: secret === undefined,
    connectionSecretAccepted: e.TRACKER_CONNECTION_SECRET_ACCEPTED === undefined ? undefined : Buffer.from(e.TRACKER_CONNECTION_SECRET_ACCEPTED, 'utf8'),
    announceIntervalSec: e.TRACKER_ANNOUNCE_INTERVAL,
    minIntervalSec: e.TRACKER_MIN_INTERVAL,
    intervalJitterSec: e.TRACKER_INTERVAL_JITTER,
    peerLifetimeSec,
    defaultNumwant: e.TRACKER_DEFAULT_NUMWANT,
    maxNumwant: e.TRACKER_MAX_NUMWANT,
    trustedProxies: e.TRACKER_TRUSTED_PROXIES,
    store: e.TRACKER_STORE,
    redisUrl: redis ? e.REDIS_URL : undefined,
    redisClusterNodes: redis ? e.REDIS_CLUSTER_NODES : undefined,
    redisUsername: redis ? e.REDIS_USERNAME : undefined,
    redisPassword: redis ? e.REDIS_PASSWORD : undefined,
    redisTls,
    redisKeyPrefix: e.TRACKER_REDIS_KEY_PREFIX,
    redisTimeoutMs: e.TRACKER_REDIS_TIMEOUT_MS,
    redisBatchMax: e.TRACKER_REDIS_BATCH_MAX,
    redisAllowEviction: e.TRACKER_REDIS_ALLOW_EVICTION,
    swarmRetentionSec: e.TRACKER_SWARM_RETENTION,
    fullScrape: e.TRACKER_FULL_SCRAPE,
    maxUrlLength: e.TRACKER_MAX_URL_LENGTH,
    maxScrapeHashes: e.TRACKER_MAX_SCRAPE_HASHES,
    udpRecvBuffer: e.TRACKER_UDP_RECV_BUFFER,
    httpMaxConnections: e.TRACKER_HTTP_MAX_CONNECTIONS,
    httpMaxConnectionsPerIp: e.TRACKER_HTTP_MAX_CONNECTIONS_PER_IP,
    maxPeersPerSwarm: e.TRACKER_MAX_PEERS_PER_SWARM,
    maxPeersPerAddress: e.TRACKER_MAX_PEERS_PER_ADDRESS,
    memoryMaxPeers: e.TRACKER_MEMORY_MAX_PEERS,
    memoryMaxSwarms: e.TRACKER_MEMORY_MAX_SWARMS,
    httpHeadersTimeoutMs: e.TRACKER_HTTP_HEADERS_TIMEOUT_MS,
    httpRequestTimeoutMs: e.TRACKER_HTTP_REQUEST_TIMEOUT_MS,
    httpKeepAliveTimeoutMs: e.TRACKER_HTTP_KEEP_ALIVE_TIMEOUT_MS,
    shutdownDelayMs: e.TRACKER_SHUTDOWN_DELAY_MS,
    shutdownTimeoutMs: e.TRACKER_SHUTDOWN_TIMEOUT_MS,
    httpIdleTimeoutMs: e.TRACKER_HTTP_IDLE_TIMEOUT_MS,
    logLevel: e.TRACKER_LOG_LEVEL,
    metricsPort: e.TRACKER_METRICS_PORT,
    events:
      e.KAFKA_BROKERS === undefined
        ? undefined
        : {
            brokers: e.KAFKA_BROKERS,
            security: kafkaSecurity!,
            topic: e.KAFKA_TOPIC,
            gatewayId: e.TRACKER_GATEWAY_ID ?? defaultGatewayId(),
            flushMs: e.TRACKER_EVENTS_FLUSH_MS,
            maxBufferedEvents: e.TRACKER_EVENTS_BUFFER,
            sendTimeoutMs: e.TRACKER_EVENTS_SEND_TIMEOUT_MS,
          },
  };
}

/** The host name (a pod's name on Kubernetes), cut to what a gateway id may hold. */
function defaultGatewayId(): string {
  const id = hostname().replace(/[^A-Za-z0-9._:-]/g, '-').slice(0, 64);
  return id === '' ? 'gateway' : id;
}
