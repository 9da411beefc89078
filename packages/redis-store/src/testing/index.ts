export { redisSkipReason, startRedisTestServer } from './redis-server';
export type { RedisNodeAddress, RedisTestServer } from './redis-server';
