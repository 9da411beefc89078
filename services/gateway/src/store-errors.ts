/*
 * Why a swarm-store call failed, as the gateway sees it (store.ts wraps every remote store in
 * these): clients get the same failure reason either way, operators a metric by kind.
 */

/** A store call that took longer than TRACKER_REDIS_TIMEOUT_MS (it may still complete later). */
export class StoreTimeoutError extends Error {
  override readonly name = 'StoreTimeoutError';
}

/** A store call that failed: Redis unreachable, an error reply, a cluster still re-forming. */
export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError';
}
