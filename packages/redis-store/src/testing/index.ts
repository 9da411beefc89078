export { freePort } from './ports';
export { redisSkipReason, selectRedisProvider, startPasswordCluster, startRedisTestServer } from './redis-server';
export type { RedisNodeAddress, RedisProvider, RedisTestServer } from './redis-server';
export { dockerEngineReachable, dockerEngineReachableSync } from './docker';
export { startedTogether } from './together';
