export { freePort, redisSkipReason, selectRedisProvider, startRedisTestServer } from './redis-server';
export type { RedisNodeAddress, RedisProvider, RedisTestServer } from './redis-server';
export { dockerEngineReachable, dockerEngineReachableSync } from './docker';
