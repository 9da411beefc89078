export { AnnounceLateError, RedisStore, createRedisStore } from './redis-store';
export type { RedisStoreOptions, RedisTarget } from './redis-store';
